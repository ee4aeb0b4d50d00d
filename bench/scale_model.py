"""docs/SCALE.md's paper model: units, requests and cost per fleet size, from measured counts and stated assumptions.

Run: .venv/bin/python bench/scale_model.py   (arithmetic only: no AWS, no moto; prints the tables SCALE.md shows)

Every input below is labelled [M] (a count printed by a bench script, named) or [A] (an assumption, SCALE.md
"Assumptions"); everything printed is arithmetic on them, so a changed count changes the page by re-running this.
"""
from __future__ import annotations

from common import table

FLEETS = (1_000, 10_000, 100_000)
SOCKETS = 1_000                          # [A4] console sockets of the org, all ?batch=1 (the console asks)
MONTH_S = 730 * 3600

# --- per job ([A2]: one job per agent per minute: create, claim poll, empty poll, 6 progress, complete) ---
JOB_REQUESTS = 1 + 1 + 1 + 6 + 1         # REST requests per job
JOB_CALLS = 2 + 5 + 3 + 6 * 2 + 2 + 1    # [M] bench/jobs_calls.py per operation (+ the lease check's GetItem)
JOB_SQS = 1.2                            # [M] bench/jobs_calls.py: 1 send per claim + 0.2 receive/delete
JOB_WRU_BASE = 26                        # [M] bench/scale_sim.py: main 286.7 WRU/s at 200 agents, minus logs
JOB_WRU_INDEX = 20                       # [M] bench/scale_sim.py: GSI1 6, GSI2 6, GSI3 3, GSI4 5 per job
JOB_WRU_OUTBOX = 16                      # [M] bench/scale_sim.py: 8 events, transactional (2 WRU each)
JOB_RRU = 10 * 0.5 + 2 * 0.5 + 0.5       # key GetItem per request, ready-queue Query per poll, lease check
JOB_EVENTS = 8                           # [M] queued, 6 progress, completed (a claim emits none)

# --- logs ([A3] 1 line/s per instance, pushed 10 lines every 10 s; one instance per agent) ---
PUSHES_PER_AGENT_S = 0.1
PUSH_CALLS = 4                           # [M] bench/scale_sim.py: 2 GetItem + 2 BatchWriteItem per 10-line push
PUSH_WRU_BASE = 10                       # an entry per line (plain BatchWriteItem, < 1 KB)
PUSH_WRU_INDEX = 10                      # GSI1 ...#LOG#{LEVEL} entry per line
PUSH_WRU_OUTBOX = 2                      # [M] bench/scale_sim.py: a 10-line instance:log event is 1-2 KB
PUSH_RRU = 1.0                           # key GetItem + instance GetItem
PUSH_EVENTS = 1

# --- fan-out ---
EVENT_BYTES = 843                        # [M] bench/scale_sim.py --batched: 39,342 B/s per socket / 46.7 events/s
MESSAGE_BYTES = 96 * 1024                # fanout/rules.BATCH_MESSAGE_BYTES
BILLING_UNIT = 32 * 1024                 # API Gateway bills WebSocket messages per 32 KB
POST_SECONDS = 0.020                     # [A6] a post holds one of the fan-out's 32 threads ~20 ms
FANOUT_THREADS = 32
BATCH_SIZE = 1000                        # app.py outbox_fanout batch_size
POLLS_PER_SHARD_S = 4                    # [A8] Lambda polls a stream shard about 4 times a second
CONNS_QUERY_RRU = 35.5                   # [M] 1,000 connection items x 290 B (bench/scale_sim.py) / 4 KB x 0.5
VERSION_RRU = 1.0                        # one strongly consistent GetItem of the org's connection-list version

# --- Lambda ([A6], memory from .chalice/config.json: 1,024 MB) ---
REST_SECONDS, GB = 0.050, 1.0

# --- prices, us-east-1 on-demand, as known at 2024-11 (SCALE.md "Monthly cost": check before budgeting) ---
P_WRU, P_RRU = 0.625e-6, 0.125e-6
P_SQS = 0.40e-6
P_LAMBDA_REQ, P_LAMBDA_GBS = 0.20e-6, 0.0000166667
P_REST = 3.50e-6
P_WS_MESSAGE, P_WS_CONN_MIN = 1.00e-6, 0.25e-6


def shards(outbox_wru: float) -> int:
    """[A8] one stream shard per outbox partition: one per 1,000 WRU/s written, at least 4 (a new on-demand table)."""
    return max(4, int(-(-outbox_wru // 1000)))


def fleet(n: int) -> dict[str, float]:
    jobs = n / 60
    pushes = n * PUSHES_PER_AGENT_S
    r: dict[str, float] = {"jobs/s": jobs}
    r["REST requests/s"] = jobs * JOB_REQUESTS + pushes
    r["AWS calls/s (REST handlers)"] = jobs * JOB_CALLS + pushes * PUSH_CALLS
    r["main WRU/s (base)"] = jobs * JOB_WRU_BASE + pushes * PUSH_WRU_BASE
    r["main WRU/s (indexes)"] = jobs * JOB_WRU_INDEX + pushes * PUSH_WRU_INDEX
    r["outbox WRU/s"] = jobs * JOB_WRU_OUTBOX + pushes * PUSH_WRU_OUTBOX
    r["events/s"] = jobs * JOB_EVENTS + pushes * PUSH_EVENTS
    s = shards(r["outbox WRU/s"])
    r["outbox stream shards"] = s
    bytes_per_socket = r["events/s"] * EVENT_BYTES
    # Batched sockets: a post per socket per invocation, more when an invocation's bytes pass a message.
    invocation_s = SOCKETS * POST_SECONDS / FANOUT_THREADS  # one invocation's posts, one message per socket
    per_shard = min(POLLS_PER_SHARD_S, 1 / invocation_s, r["events/s"] / s)  # at most one invocation per event
    invocations = max(s * per_shard, r["events/s"] / BATCH_SIZE)
    r["fan-out invocations/s"] = invocations
    posts_per_socket = max(invocations, bytes_per_socket / MESSAGE_BYTES)
    r["posts/s, 1,000 batched sockets"] = SOCKETS * posts_per_socket
    r["fan-out capacity, posts/s (shards x 1,600)"] = s * FANOUT_THREADS / POST_SECONDS
    r["posts/s, 1,000 per-event sockets (before)"] = SOCKETS * r["events/s"]
    r["bytes/s per socket"] = bytes_per_socket
    r["WebSocket billed messages/s"] = SOCKETS * max(invocations, bytes_per_socket / BILLING_UNIT)
    r["main RRU/s (requests)"] = jobs * JOB_RRU + pushes * PUSH_RRU
    r["main RRU/s (fan-out, before: Query per 100-event batch)"] = max(s * min(POLLS_PER_SHARD_S, r["events/s"] / s),
                                                                      r["events/s"] / 100) * CONNS_QUERY_RRU
    r["main RRU/s (fan-out, after: version GetItem per batch)"] = invocations * VERSION_RRU + s / 60 * CONNS_QUERY_RRU
    r["SQS requests/s"] = jobs * JOB_SQS
    r["Lambda concurrency, REST"] = r["REST requests/s"] * REST_SECONDS
    r["Lambda concurrency, fan-out"] = min(s, r["posts/s, 1,000 batched sockets"] * POST_SECONDS / FANOUT_THREADS)
    r["Lambda invocations/s"] = r["REST requests/s"] + invocations + jobs / 10
    return r


def cost(r: dict[str, float]) -> dict[str, float]:
    wru = r["main WRU/s (base)"] + r["main WRU/s (indexes)"] + r["outbox WRU/s"]
    rru = r["main RRU/s (requests)"] + r["main RRU/s (fan-out, after: version GetItem per batch)"]
    gbs = (r["REST requests/s"] * REST_SECONDS + r["posts/s, 1,000 batched sockets"] * POST_SECONDS / FANOUT_THREADS
           + r["jobs/s"] / 10 * 0.05) * GB
    c = {
        "DynamoDB": (wru * P_WRU + rru * P_RRU) * MONTH_S,
        "SQS": r["SQS requests/s"] * P_SQS * MONTH_S,
        "Lambda": (r["Lambda invocations/s"] * P_LAMBDA_REQ + gbs * P_LAMBDA_GBS) * MONTH_S,
        "API Gateway REST": r["REST requests/s"] * P_REST * MONTH_S,
        "API Gateway WebSocket": r["WebSocket billed messages/s"] * P_WS_MESSAGE * MONTH_S
        + SOCKETS * 730 * 60 * P_WS_CONN_MIN,
    }
    c["total"] = sum(c.values())
    c["WebSocket before (a message per event per socket)"] = (SOCKETS * r["events/s"] * P_WS_MESSAGE * MONTH_S
                                                              + SOCKETS * 730 * 60 * P_WS_CONN_MIN)
    return c


def main() -> None:
    rows = [fleet(n) for n in FLEETS]
    fmt = lambda v: f"{v:,.0f}" if v >= 10 else f"{v:,.1f}"  # noqa: E731
    print(f"Per second, one org, {SOCKETS:,} console sockets\n")
    print(table([(name, *(fmt(r[name]) for r in rows)) for name in rows[0]],
                ("per second", *(f"{n:,} agents" for n in FLEETS))))
    costs = [cost(r) for r in rows]
    print("\nPer month (730 h), USD, first-tier on-demand prices as known at 2024-11\n")
    print(table([(name, *(f"${c[name]:,.0f}" for c in costs)) for name in costs[0]],
                ("per month", *(f"{n:,} agents" for n in FLEETS))))
    # Where API Gateway's 10,000 requests/s (REST + callbacks, account-wide) is met, batched vs before,
    # and where the fan-out's posts outgrow what one invocation per shard can send.
    def first(test) -> int:
        n = 100
        while not test(fleet(n)):
            n += 100
        return n

    throttle = first(lambda r: r["posts/s, 1,000 batched sockets"] + r["REST requests/s"] >= 10_000)
    capacity = first(lambda r: r["posts/s, 1,000 batched sockets"] > r["fan-out capacity, posts/s (shards x 1,600)"])
    before = 10_000 / (fleet(1)["events/s"] * SOCKETS + fleet(1)["REST requests/s"])
    before_capacity = 4 * FANOUT_THREADS / POST_SECONDS / (fleet(1)["events/s"] * SOCKETS)
    print(f"\nWith {SOCKETS:,} batched sockets: the fan-out's shards are full at ~{capacity:,} agents; "
          f"API Gateway's 10,000 requests/s (REST + callbacks) is met at ~{throttle:,} agents.")
    print(f"With {SOCKETS:,} per-event sockets (before): shards full at ~{before_capacity:,.0f} agents; "
          f"the throttle met at ~{before:,.0f} agents.")


if __name__ == "__main__":
    main()
