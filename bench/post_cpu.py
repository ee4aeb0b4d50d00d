"""CPU per management-API post on the in-process path (client signing + the stack's SigV4 check).

    .venv/bin/python bench/post_cpu.py [--posts 2000] [--profile]

Installs devstack's in-process hook with the real SigV4 verifier and a
management function that accepts every post, then times
chalicelib.aws.websocket.post on one thread (CPU time, so other load on the
machine does not count).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
URL = "http://127.0.0.1:1"
os.environ["WEBSOCKET_ENDPOINT_OVERRIDE"] = URL

from chalicelib.aws import websocket  # noqa: E402
from devstack import inprocess  # noqa: E402
from devstack.sigv4 import SigV4Verifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    verifier = SigV4Verifier(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    verified = []
    uninstall = inprocess.install(URL, verifier, lambda method, cid, body: (verified.append(cid) or (200, [], b"")))
    try:
        for i in range(50):  # warm up: client creation, pools
            assert websocket.post(URL, f"warm-{i}", b"x")
        profiler = cProfile.Profile() if args.profile else None
        started = time.process_time()
        if profiler:
            profiler.enable()
        for i in range(args.posts):
            assert websocket.post(URL, f"conn-{i}=", b'{"event":"job:queued","data":{"jobId":"j"}}')
        if profiler:
            profiler.disable()
        cpu = time.process_time() - started
        # The next event goes to the same connections: each URL's canonical parts are known by then.
        started = time.process_time()
        for i in range(args.posts):
            assert websocket.post(URL, f"conn-{i}=", b'{"event":"job:queued","data":{"jobId":"k"}}')
        again = time.process_time() - started
    finally:
        uninstall()
    assert len(verified) == 2 * args.posts + 50
    print(f"{args.posts} posts: {cpu / args.posts * 1e6:.0f} us CPU per post (client + SigV4 check), "
          f"{again / args.posts * 1e6:.0f} us per post of the next event to the same connections")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
