"""What Lambda's pollers and EventBridge do on AWS: feed queue messages, stream
records and schedule ticks to the app's real handlers.

One daemon thread per SQS queue (so FIFO order holds), one per DynamoDB stream
and one scheduler; all stop when `stop` is set. Each pump builds its client
and resolves its queue or stream up front, so a missing resource fails the
start rather than a thread.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

from devstack import cron, events
from devstack.lambdas import Lambdas

log = logging.getLogger("devstack")

STREAM_RETRIES = 3
STREAM_IDLE_SECONDS = 0.05


class SqsPump:
    """Lambda's SQS event source mapping, with ReportBatchItemFailures semantics.

    The handler returns {"batchItemFailures": [{"itemIdentifier": messageId}]}:
    every other message is deleted. If it raises, none is deleted. Messages not
    deleted reappear after the queue's visibility timeout, and moto's redrive
    policy moves them to the DLQ after maxReceiveCount receives.
    """

    def __init__(self, lambdas: Lambdas, config: SQSEventConfig, stop: threading.Event) -> None:
        self._lambdas, self._config, self._stop = lambdas, config, stop
        self._sqs = boto3.session.Session().client("sqs")
        self.queue_url = self._queue_url()
        self.queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]

    def _queue_url(self) -> str:
        if self._config.queue:
            return self._sqs.get_queue_url(QueueName=self._config.queue)["QueueUrl"]
        assert self._config.queue_arn is not None  # Chalice requires queue or queue_arn
        _, _, _, _, account, name = self._config.queue_arn.split(":", 5)
        return self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(self._config.batch_size, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("SQS receive on %s failed", self.queue_url)
                self._stop.wait(1)
                continue
            if messages:
                self._deliver(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            result = self._lambdas.invoke(self._config, events.sqs_event(messages, self.queue_arn))
        except Exception:
            log.exception("SQS handler %s failed: the batch of %d returns after its visibility timeout",
                          self._config.name, len(messages))
            return
        failed = _failed_message_ids(result, {message["MessageId"] for message in messages})
        done = [message for message in messages if message["MessageId"] not in failed]
        if failed:
            log.info("SQS handler %s reported %d of %d messages failed", self._config.name, len(failed), len(messages))
        if done:
            response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(done)])
            for failure in response.get("Failed", []):
                log.error("SQS delete on %s failed: %s", self.queue_url, failure)


def _failed_message_ids(result: Any, batch: set[str]) -> set[str]:
    """Which messages to keep, from a handler's return value, as Lambda reads it.

    A missing or empty batchItemFailures means the whole batch succeeded; an
    itemIdentifier that is empty or not in the batch makes Lambda treat the
    whole batch as failed.
    """
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return set()
    identifiers = {failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures}
    if not identifiers <= batch:
        log.warning("batchItemFailures names messages not in the batch (%s): the whole batch failed",
                    sorted(map(str, identifiers - batch)))
        return batch
    return identifiers


class StreamPump:
    """Lambda's DynamoDB stream event source mapping.

    Reads every shard from TRIM_HORIZON (the stack is fresh, so nothing written
    before the pump started is lost), in batches of up to batch_size. A batch
    whose handler raises is retried STREAM_RETRIES times with a short backoff,
    then logged and skipped, like a bounded Lambda retry policy.
    """

    def __init__(self, lambdas: Lambdas, config: DynamoDBEventConfig, stop: threading.Event) -> None:
        self._lambdas, self._config, self._stop = lambdas, config, stop
        self._streams = boto3.session.Session().client("dynamodbstreams")
        shards = self._streams.describe_stream(StreamArn=config.stream_arn)["StreamDescription"]["Shards"]
        # Shard id -> iterator; a shard leaves this map when it is closed and drained.
        self._iterators: dict[str, str] = {
            shard["ShardId"]: self._streams.get_shard_iterator(
                StreamArn=config.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def run(self) -> None:
        while not self._stop.is_set() and self._iterators:
            delivered = False
            for shard_id, iterator in list(self._iterators.items()):
                try:
                    response = self._streams.get_records(ShardIterator=iterator, Limit=self._config.batch_size)
                except Exception:
                    if self._stop.is_set():
                        return
                    log.exception("get_records on %s failed", self._config.stream_arn)
                    self._stop.wait(1)
                    continue
                if response.get("NextShardIterator"):
                    self._iterators[shard_id] = response["NextShardIterator"]
                else:
                    del self._iterators[shard_id]
                if response["Records"]:
                    self._deliver(response["Records"])
                    delivered = True
            if not delivered:
                self._stop.wait(STREAM_IDLE_SECONDS)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        event = events.dynamodb_event(records, self._config.stream_arn)
        for attempt in range(1 + STREAM_RETRIES):
            try:
                self._lambdas.invoke(self._config, event)
                return
            except Exception:
                if attempt == STREAM_RETRIES:
                    log.exception("stream handler %s failed %d times: skipped a batch of %d records (%s..%s)",
                                  self._config.name, attempt + 1, len(records),
                                  records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"])
                    return
                log.warning("stream handler %s failed (attempt %d), retrying", self._config.name, attempt + 1,
                            exc_info=True)
                if self._stop.wait(0.1 * 2 ** attempt):
                    return


@dataclass
class ScheduledHandler:
    config: ScheduledEventConfig
    schedule: cron.Schedule
    rule_arn: str
    next_run: datetime
    last_run: datetime | None = None

    @property
    def expression(self) -> str:
        return self.schedule.expression


class Scheduler:
    """EventBridge schedule rules: fire each scheduled handler at its time (moto never does).

    Handlers run on the Lambdas pool, so a slow one does not delay the others.
    A tick missed by more than one period (a laptop asleep) is skipped, not
    replayed, as EventBridge does not backfill either.
    """

    def __init__(self, lambdas: Lambdas, configs: list[ScheduledEventConfig], region: str, account: str,
                 stop: threading.Event) -> None:
        self._lambdas, self._stop = lambdas, stop
        self._lock = threading.Lock()
        now = datetime.now(timezone.utc)
        self.handlers: dict[str, ScheduledHandler] = {}
        for config in configs:
            expression = config.schedule_expression
            schedule = cron.parse(expression if isinstance(expression, str) else expression.to_string())
            # Chalice names the rule {app}-{stage}-{handler}.
            rule_arn = f"arn:aws:events:{region}:{account}:rule/{lambdas.app.app_name}-local-{config.name}"
            self.handlers[config.name] = ScheduledHandler(config, schedule, rule_arn, schedule.next_after(now))

    def run(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(timezone.utc)
            with self._lock:
                for handler in self.handlers.values():
                    if handler.next_run <= now:
                        self._lambdas.pool.submit(self._fire, handler, handler.next_run)
                        following = handler.schedule.next_after(handler.next_run)
                        handler.next_run = following if following > now else handler.schedule.next_after(now)
                wake = min((handler.next_run for handler in self.handlers.values()), default=None)
            if wake is None:
                return
            self._stop.wait(max(0.0, min((wake - datetime.now(timezone.utc)).total_seconds(), 60.0)))

    def run_now(self, name: str) -> Any:
        """Run one scheduled handler at once, in the calling thread; its exceptions propagate."""
        return self._call(self.handlers[name], datetime.now(timezone.utc))

    def _fire(self, handler: ScheduledHandler, fired_at: datetime) -> None:
        try:
            self._call(handler, fired_at)
        except Exception:
            log.exception("scheduled handler %s failed", handler.config.name)

    def _call(self, handler: ScheduledHandler, fired_at: datetime) -> Any:
        with self._lock:
            handler.last_run = fired_at
        return self._lambdas.invoke(handler.config, events.scheduled_event(handler.rule_arn, fired_at))

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "name": name,
                    "expression": handler.expression,
                    "nextFireAt": handler.next_run.isoformat(timespec="seconds").replace("+00:00", "Z"),
                }
                for name, handler in self.handlers.items()
            ]


def start_pumps(lambdas: Lambdas, region: str, account: str,
                stop: threading.Event) -> tuple[list[threading.Thread], Scheduler]:
    """A thread per SQS queue and DynamoDB stream event source, and one for the scheduler; all started."""
    threads: list[threading.Thread] = []
    schedules: list[ScheduledEventConfig] = []
    for source in lambdas.app.event_sources:
        if isinstance(source, SQSEventConfig):
            pump: SqsPump | StreamPump = SqsPump(lambdas, source, stop)
        elif isinstance(source, DynamoDBEventConfig):
            pump = StreamPump(lambdas, source, stop)
        elif isinstance(source, ScheduledEventConfig):
            schedules.append(source)
            continue
        else:
            log.warning("event source %s (%s) is not run by the local stack", source.name, type(source).__name__)
            continue
        threads.append(threading.Thread(target=pump.run, name=f"pump-{source.name}", daemon=True))
    scheduler = Scheduler(lambdas, schedules, region, account, stop)
    threads.append(threading.Thread(target=scheduler.run, name="scheduler", daemon=True))
    for thread in threads:
        thread.start()
    return threads, scheduler
