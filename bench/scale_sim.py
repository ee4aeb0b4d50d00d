"""A scaled fleet driven through the real handlers on moto; every DynamoDB request's partition keys recorded.

Run: .venv/bin/python bench/scale_sim.py [--agents 200] [--minutes 1] [--sockets 1000] [--batched] [--stream-batch N]

The fleet of docs/SCALE.md ("Assumptions"), compressed: each agent gets one
job a minute (created by an operator key, claimed by the agent's poll, one
empty poll, progress every 10 s, completed), and its instance pushes its log
lines every 10 s (10 lines a push: the same entry writes as 1 line a second,
a tenth of the pushes and log events). The clock is moved forward instead of
waited for. At the end the outbox's events go through the real fan-out
handler in batches of the trigger's batch size (as the stream delivers them
under load: full batches), so its connection reads are counted too.
`--sockets` console sockets (operator keys; `--batched`: opened with
`?batch=1`, docs/API.md "WebSocket batching") are connected through the real
$connect handler before the minute starts; every management-API post the
fan-out makes is counted per socket (the post itself is a counting stand-in:
no HTTP), so API Gateway's callback rate is measured, not multiplied out.

A botocore before-call hook reads each request's Key / Item / TransactItems
/ RequestItems / KeyConditionExpression and books base-table writes (per
started KB of the item: DynamoDB's item size, attribute names and values;
x2 in a transaction; an Update is booked at the size of the item's last Put)
and the index writes they cause (1 per started KB of the entry: indexes are
ALL-projected): the index keys each item carries (from its Puts,
and from Updates that set, copy or remove `GSInPK`). Ids are replaced by
their kind (`{org}`, `{agent}`, ...) to name a key's shape; a key that holds
no id of an agent, job or instance is org-wide, and its rate grows with the
fleet, so it is scaled to 100,000 agents; a per-entity key keeps its rate.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import threading
import time

from common import moto_stack, table

PAPER_FLEET = 100_000
INDEX_KEY = re.compile(r"^GSI(\d)PK$")


class KeyRecorder:
    """Books every DynamoDB request against the partition keys it touches (base table and indexes)."""

    def __init__(self):
        self.writes: collections.Counter[tuple[str, str]] = collections.Counter()  # (where, key) -> WRU
        self.reads: collections.Counter[tuple[str, str]] = collections.Counter()   # (where, key) -> requests
        self.index_keys: dict[tuple[str, str], dict[str, str]] = {}               # (PK, SK) -> {GSIn: key}
        self.calls: collections.Counter[str] = collections.Counter()
        self.attributes: dict[tuple[str, str], dict[str, str]] = {}              # (PK, SK) -> string attributes
        self.sizes: dict[tuple[str, str], int] = {}                              # (PK, SK) -> item bytes

    def seed(self, items: list[dict]) -> None:
        """Index keys of the items written before recording started (agents, instances, keys)."""
        for item in items:
            if "PK" in item:
                ident = (_value(item["PK"]), _value(item["SK"]) if "SK" in item else "")
                self.sizes[ident] = item_size(item)
                self.index_keys[ident] = {f"GSI{m.group(1)}": _value(v) for k, v in item.items()
                                          if (m := INDEX_KEY.match(k))}

    def __call__(self, model, params, **kwargs):
        if model.service_model.service_name != "dynamodb":
            return
        op = model.name
        self.calls[op] += 1
        params = json.loads(params["body"])  # before-call carries the serialized request: what is sent
        if op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                self._write(kind, body, units=2)
        elif op == "BatchWriteItem":
            for table_name, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        self._write("Put", {"TableName": table_name, **request["PutRequest"]}, units=1)
                    else:
                        self._write("Delete", {"TableName": table_name, **request["DeleteRequest"]}, units=1)
        elif op in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(op.removesuffix("Item"), params, units=1)
        elif op == "GetItem":
            self.reads[(_table(params["TableName"]), _pk(params["Key"]))] += 1
        elif op == "BatchGetItem":
            for table_name, request in params["RequestItems"].items():
                for key in request["Keys"]:
                    self.reads[(_table(table_name), _pk(key))] += 1
        elif op == "Query":
            values = params.get("ExpressionAttributeValues", {})
            first = params["KeyConditionExpression"].split(" AND ")[0]
            placeholder = first.split("=")[1].strip()
            where = _table(params["TableName"]) + (f"/{params['IndexName']}" if "IndexName" in params else "")
            self.reads[(where, _value(values[placeholder]))] += 1

    def _write(self, kind: str, body: dict, units: int) -> None:
        if kind == "ConditionCheck":
            self.reads[(_table(body["TableName"]), _pk(body["Key"]))] += 1
            return
        where = _table(body["TableName"])
        item = body.get("Item") or body["Key"]
        pk = _pk(item)
        ident = (pk, _value(item["SK"]) if "SK" in item else "")
        if kind == "Put":
            self.sizes[ident] = item_size(item)
        kb = -(-self.sizes.get(ident, 1) // 1024)  # a Delete is billed at the deleted item's size too
        self.writes[(where, pk)] += units * kb
        before = self.index_keys.get(ident, {})
        after = dict(before)
        if kind == "Put":
            self.attributes[ident] = {k: v["S"] for k, v in item.items() if "S" in v}
            after = {f"GSI{m.group(1)}": _value(v) for k, v in item.items() if (m := INDEX_KEY.match(k))}
        elif kind == "Delete":
            after = {}
        elif kind == "Update":
            for index, value in _update_sets(body).items():
                copied = value.removeprefix("(copy of ").removesuffix(")")
                after[index] = self.attributes.get(ident, {}).get(copied, value) if value != copied else value
            for name in _update_removes(body):
                after.pop(name, None)
        for index in before.keys() | after.keys():
            old, new = before.get(index), after.get(index)
            if old is not None:
                self.writes[(f"{where}/{index}", old)] += kb  # the entry rewritten (ALL projection) or deleted
            if new is not None and new != old:
                self.writes[(f"{where}/{index}", new)] += kb
        self.index_keys[ident] = after
        if kind == "Delete":
            self.sizes.pop(ident, None)


def item_size(item: dict) -> int:
    """DynamoDB's size of a typed item: each attribute's name plus its value (docs: "Item sizes and formats")."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(typed: dict) -> int:
    (kind, value), = typed.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return (len(value.strip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(value) * 3 // 4  # base64 on the wire
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in value.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in value)
    return sum(len(str(v)) for v in value)  # SS / NS / BS


class PostCounter:
    """Stands in for the management API's post: counts posts and bytes per connection, always delivered."""

    def __init__(self):
        self.per_connection: collections.Counter[str] = collections.Counter()
        self.bytes = 0
        self.total = 0
        self._lock = threading.Lock()

    def post(self, endpoint: str, connection_id: str, data: bytes) -> bool:
        with self._lock:
            self.per_connection[connection_id] += 1
            self.bytes += len(data)
            self.total += 1
        return True


def _ws_connect_event(connection_id: str, query: dict[str, str]) -> dict:
    return {"requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": connection_id,
                               "apiId": "sim", "stage": "ws", "domainName": "sim.execute-api.us-east-1.amazonaws.com",
                               "requestId": connection_id},
            "queryStringParameters": query, "headers": {}, "isBase64Encoded": False, "body": None}


def _scan_all(client, table_name: str) -> list[dict]:
    items, page = [], {}
    while True:
        answer = client.scan(TableName=table_name, **page)
        items += answer["Items"]
        if "LastEvaluatedKey" not in answer:
            return items
        page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def _table(name: str) -> str:
    return name.removeprefix("cp-bench-")


def _value(typed: dict) -> str:
    (kind, value), = typed.items()
    return str(value)


def _pk(key: dict) -> str:
    return _value(key["PK"] if "PK" in key else key["id"])


def _resolve(body: dict, token: str) -> str:
    return body.get("ExpressionAttributeNames", {}).get(token, token)


def _update_sets(body: dict) -> dict[str, str]:
    """GSInPK = :value assignments of an UpdateExpression's SET clause."""
    values = body.get("ExpressionAttributeValues", {})
    sets = {}
    for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", body.get("UpdateExpression", "")):
        match = INDEX_KEY.match(_resolve(body, name))
        if match and placeholder in values:
            sets[f"GSI{match.group(1)}"] = _value(values[placeholder])
    for name, source in re.findall(r"([#\w]+)\s*=\s*([#\w]+)(?=\s*(?:,|$|REMOVE|ADD|DELETE))",
                                   body.get("UpdateExpression", "")):
        match = INDEX_KEY.match(_resolve(body, name))
        if match and not source.startswith(":"):
            sets[f"GSI{match.group(1)}"] = f"(copy of {_resolve(body, source)})"
    return sets


def _update_removes(body: dict) -> list[str]:
    expression = body.get("UpdateExpression", "")
    if "REMOVE" not in expression:
        return []
    names = expression.split("REMOVE", 1)[1].split(" SET ")[0].split(" ADD ")[0]
    return [f"GSI{m.group(1)}" for token in names.split(",") if (m := INDEX_KEY.match(_resolve(body, token.strip())))]


class Shapes:
    """Ids -> their kind, so a key says what it is; org-wide keys are those with no entity id left."""

    def __init__(self):
        self.ids: dict[str, str] = {}

    def add(self, value: str, kind: str) -> None:
        self.ids[value] = kind

    def shape(self, key: str) -> str:
        for value, kind in self.ids.items():
            if value in key:
                key = key.replace(value, "{" + kind + "}")
        return re.sub(r"[0-9A-HJKMNP-TV-Z]{26}", "{id}", key)

    @staticmethod
    def org_wide(shape: str) -> bool:
        return not any(part in shape for part in ("{agent}", "{job}", "{instance}", "{id}", "{key}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=1)
    parser.add_argument("--sockets", type=int, default=1000, help="console sockets (operator keys) of the org")
    parser.add_argument("--batched", action="store_true", help="open them with ?batch=1 (system:batch messages)")
    parser.add_argument("--stream-batch", type=int, default=0,
                        help="events per fan-out invocation (default: the outbox trigger's batch_size in app.py)")
    args = parser.parse_args()

    from chalice.test import Client

    with moto_stack() as (app_module, counter, root):
        from chalicelib.aws import clients
        from chalicelib.core import clock
        from devstack import fast_moto

        fast_moto.patch_transactions()
        fast_moto.patch_index_queries()
        fast_moto.patch_item_responses()
        offset = {"s": 0.0}
        clock.now = lambda: time.time() + offset["s"]
        shapes = Shapes()

        with Client(app_module.app) as client:
            def call(method, path, key, body=None):
                response = getattr(client.http, method)(
                    path, headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
                    body=json.dumps(body) if body is not None else b"")
                assert response.status_code in (200, 201, 202, 204), (path, response.status_code, response.body)
                return json.loads(response.body) if response.body else None

            org = call("post", "/orgs", root["adminApiKey"], {"name": "fleet"})
            shapes.add(org["orgId"], "org")
            ops = call("post", "/keys", org["adminKey"], {"name": "ci", "scope": "operator"})["apiKey"]
            agents = []
            for i in range(args.agents):
                agent = call("post", "/agents", ops, {"name": f"a{i}"})
                instance = call("post", "/instances", ops, {"agentId": agent["agentId"], "name": f"i{i}"})
                shapes.add(agent["agentId"], "agent")
                shapes.add(instance["instanceId"], "instance")
                agents.append((agent["agentId"], agent["apiKey"], instance["instanceId"]))

            # The console sockets, through the real $connect (their system:connected events are left out below).
            viewer = call("post", "/keys", org["adminKey"], {"name": "console", "scope": "operator"})["apiKey"]
            for n in range(args.sockets):
                query = {"token": viewer, **({"batch": "1"} if args.batched else {})}
                status = app_module.ws_connect(_ws_connect_event(f"console-{n}", query), None)["statusCode"]
                assert status == 200, status
            before_minute = {_value(i["id"]) for i in _scan_all(clients.session().client("dynamodb"), "cp-bench-outbox")}

            recorder = KeyRecorder()
            from chalicelib.aws import dynamo

            recorder.seed(_scan_all(clients.session().client("dynamodb"), "cp-bench-main"))
            # Clients made so far copied the session's handlers when they were made: register on them too.
            clients.session().events.register("before-call.dynamodb.*", recorder)
            for made in {id(c): c for c in clients._clients.values()}.values():
                made.meta.events.register("before-call.dynamodb.*", recorder)
            started = time.perf_counter()
            requests = 0
            for minute in range(args.minutes):
                runs = []
                for agent_id, key, _ in agents:
                    job = call("post", "/jobs", ops, {"agentId": agent_id, "type": "t", "payload": {}})
                    shapes.add(job["jobId"], "job")
                    run = call("get", f"/jobs/poll?agentId={agent_id}&max=1", key)["jobs"][0]
                    call("get", f"/jobs/poll?agentId={agent_id}&max=1", key)  # the empty poll
                    runs.append((agent_id, key, run))
                    requests += 3
                for tick in range(6):  # every 10 s of the minute
                    offset["s"] += 10
                    for (agent_id, key, run), (_, _, instance_id) in zip(runs, agents, strict=True):
                        call("post", "/jobs/progress", key, {"jobId": run["jobId"], "runId": run["runId"],
                                                             "agentId": agent_id, "percent": tick * 15})
                        call("post", f"/instances/{instance_id}/logs", key, {"entries": [
                            {"level": "INFO", "message": f"line {minute}:{tick}:{n}"} for n in range(10)]})
                        requests += 2
                for agent_id, key, run in runs:
                    call("post", "/jobs/complete", key, {"jobId": run["jobId"], "runId": run["runId"],
                                                         "agentId": agent_id, "status": "COMPLETED"})
                    requests += 1
            driven = time.perf_counter() - started

            # The outbox stream, as the trigger delivers it under load (full batches of its batch size),
            # through the real fan-out handler; the management API's posts counted per socket.
            from chalicelib.aws import websocket
            from chalicelib.fanout import handlers as fanout_handlers

            batch_size = args.stream_batch or next(s.batch_size for s in app_module.app.event_sources
                                                   if s.name == "outbox_fanout")
            images = [dynamo.deserialize_item(item)
                      for item in _scan_all(clients.session().client("dynamodb"), "cp-bench-outbox")]
            images = sorted((i for i in images if i.get("orgId") == org["orgId"] and i["id"] not in before_minute),
                            key=lambda i: i["id"])  # ids are ULIDs: commit order, as a shard delivers them
            posts = PostCounter()
            websocket.post = posts.post
            fanout_started = time.perf_counter()
            for start in range(0, len(images), batch_size):
                fanout_handlers.outbox_records(images[start:start + batch_size])
            fanned = time.perf_counter() - fanout_started

    simulated = 60.0 * args.minutes
    scale = PAPER_FLEET / args.agents
    grouped: dict[tuple[str, str], list[tuple[int, int]]] = collections.defaultdict(list)
    for where, key in set(recorder.writes) | set(recorder.reads):
        grouped[(where, shapes.shape(key))].append((recorder.writes[(where, key)], recorder.reads[(where, key)]))
    rows = []
    for (where, shape), counts in grouped.items():
        wru, reads = max(c[0] for c in counts), max(c[1] for c in counts)  # the hottest key of the shape
        factor = scale if Shapes.org_wide(shape) else 1.0
        rows.append((where, shape, len(counts), wru, reads, round(wru / simulated, 2), round(reads / simulated, 2),
                     round(wru / simulated * factor), round(reads / simulated * factor),
                     "org-wide" if factor != 1.0 else "per entity"))
    rows.sort(key=lambda r: (-r[7], -r[8]))
    batches = (len(images) + batch_size - 1) // batch_size
    print(f"{args.agents} agents, {args.minutes} simulated minute(s): {requests} requests in {driven:.1f} s, "
          f"{len(images)} events -> {batches} fan-out batches of up to {batch_size} ({fanned:.1f} s); "
          f"DynamoDB calls: {dict(recorder.calls)}\n")
    print("Hottest partition keys (WRU: per started KB of the item, x2 in a transaction; an index entry 1 per "
          "started KB; reads: requests), scaled to 100,000 agents\n")
    print(table(rows[:16], ("table/index", "partition key (hottest of its shape)", "keys", "WRU", "reads",
                            "WRU/s", "reads/s", "WRU/s @100k", "reads/s @100k", "scales")))
    per_table = collections.Counter()
    for (where, _), wru in recorder.writes.items():
        per_table[where] += wru
    print("\nWRU per table/index per simulated second (scaled to 100,000 agents):")
    print(table([(w, round(u / simulated, 1), round(u / simulated * scale)) for w, u in per_table.most_common()],
                ("table/index", "WRU/s", "WRU/s @100k")))
    conn_sizes = [size for (pk, _), size in recorder.sizes.items() if pk.startswith("CONN#")]
    if conn_sizes:
        print(f"\nA connection item: {max(conn_sizes)} bytes (a Query of the org's connections reads whole "
              f"items: the index is ALL-projected; a projection trims what is sent, not the RRU)")
    events_per_s_at_paper = len(images) / simulated * scale
    print(f"\nManagement API (@connections POSTs, API Gateway's callback rate) to {args.sockets} "
          f"{'batched (?batch=1)' if args.batched else 'per-event'} console sockets:")
    per_batch = posts.total / batches if batches else 0
    # Per-event sockets: one post per event, so posts grow with the events (org-wide). Batched: one post per
    # socket per stream batch (more only when a batch's events pass the message size), so they grow with the
    # batches, and a loaded stream delivers full ones: events/s / batch size.
    at_paper = (posts.total / simulated * scale if not args.batched
                else per_batch * events_per_s_at_paper / batch_size)
    print(table([(posts.total, round(posts.total / max(args.sockets, 1), 1), round(per_batch, 1),
                  round(posts.total / simulated, 1), round(posts.bytes / simulated / max(args.sockets, 1)),
                  round(events_per_s_at_paper), round(at_paper))],
                ("posts", "per socket", "per batch", "posts/s", "bytes/s per socket", "events/s @100k",
                 "posts/s @100k")))
    if at_paper:
        print(f"API Gateway's 10,000 requests/s account throttle (callbacks included) is met at "
              f"~{round(PAPER_FLEET * 10_000 / at_paper):,} agents with {args.sockets} sockets")

    over = [r for r in rows if r[7] > 1000 and r[9] == "org-wide"]
    if over:
        first = over[0]
        limit_at = round(1000 / (first[5] / args.agents))
        print(f"\nFirst partition wall: {first[0]} {first[1]} at {first[7]:,} WRU/s for 100,000 agents "
              f"(1,000 WCU per partition reached at ~{limit_at:,} agents in one org)")


if __name__ == "__main__":
    main()
