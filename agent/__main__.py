"""python -m agent: run the reference agent.

  python -m agent --url http://127.0.0.1:8000 --register-key <operator key> --name builder --pool linux
  python -m agent --url ... --api-key <agent key> --agent-id <agentId> [--handlers mypkg.jobs:HANDLERS]
  python -m agent patch apply BATCH.json --root DIR      (see agent/patch.py)
  python -m agent patch submit BATCH.json --url URL --api-key KEY   (agent/factory.py, docs/FACTORY.md)
  python -m agent patch from-files --generated GEN --root DIR --workspace WS

Environment: CP_URL, CP_API_KEY, CP_AGENT_ID, CP_OPERATOR_KEY stand in for the flags.
On start it prints one JSON line {"agentId", "apiKey"?} to stdout (the key only
when it registered the agent: it is shown once), then logs to stderr.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys

from agent.client import Client
from agent.handlers import BUILTIN
from agent.worker import Agent


def _handlers(spec: str | None) -> dict:
    handlers = dict(BUILTIN)
    if spec:
        module, _, attr = spec.partition(":")
        handlers.update(getattr(importlib.import_module(module), attr or "HANDLERS"))
    return handlers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["patch"]:  # python -m agent patch apply|from-files (agent/patch.py)
        from agent.patch import main as patch_main

        return patch_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m agent", description="The control plane's reference agent.")
    p.add_argument("--url", default=os.environ.get("CP_URL", "http://127.0.0.1:8000"))
    p.add_argument("--api-key", default=os.environ.get("CP_API_KEY"), help="an agent key (with --agent-id)")
    p.add_argument("--agent-id", default=os.environ.get("CP_AGENT_ID"))
    p.add_argument("--register-key", default=os.environ.get("CP_OPERATOR_KEY"),
                   help="an operator key: register a new agent and run as it")
    p.add_argument("--name", default=os.environ.get("HOSTNAME", "agent"))
    p.add_argument("--pool", action="append", default=[], help="a pool to join (repeatable; registration only)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at once")
    p.add_argument("--handlers", help="module:attribute holding a {type: handler} dict, added to the built-ins")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = _handlers(args.handlers)
    if args.api_key and args.agent_id:
        agent = Agent(Client(args.url, args.api_key), args.agent_id, handlers, concurrency=args.concurrency)
        print(json.dumps({"agentId": agent.agent_id}), flush=True)
    elif args.register_key:
        agent = Agent.register(args.url, args.register_key, args.name, args.pool, handlers,
                               concurrency=args.concurrency)
        print(json.dumps({"agentId": agent.agent_id, "apiKey": agent.client.api_key}), flush=True)
    else:
        p.error("give --api-key and --agent-id, or --register-key")
    agent.on_event = lambda name, details: logging.getLogger("agent").info("%s %s", name, json.dumps(details))
    signal.signal(signal.SIGTERM, lambda *_: agent._stopping.set())
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop(wait=True, timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
