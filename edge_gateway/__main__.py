"""python -m edge_gateway: run until SIGTERM/SIGINT, then stop gracefully."""
from __future__ import annotations

import logging
import signal
import sys
import threading

from edge_gateway.config import Config
from edge_gateway.gateway import Gateway


def main() -> int:
    if sys.argv[1:2] == ["enroll"]:  # python -m edge_gateway enroll ... (issue 21, edge_gateway/tls.py)
        from edge_gateway.tls import enroll_main

        return enroll_main(sys.argv[2:])
    config = Config.from_env()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ANN001 - signal handler signature
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gateway = Gateway(config)
    gateway.start()
    print(f"edge gateway ready on http://{gateway.api.host}:{gateway.api.port}", flush=True)
    while not stop.wait(0.5):
        pass
    gateway.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
