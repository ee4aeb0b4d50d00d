"""Start and stop the whole local stack in one process.

Order matters: moto first (the app's boto3 clients read AWS_ENDPOINT_URL when
they are created), then the stack and the environment, then the app import
(Chalice reads queue names and stream ARNs at import time), then the server
and the pumps. Shutdown runs in reverse so that handlers still finishing can
reach moto.

Signals belong to the main thread: uvicorn runs in a thread of its own (where
it installs no signal handlers) and SIGINT/SIGTERM end the main thread's wait.
"""
from __future__ import annotations

import argparse
import contextlib
import faulthandler
import errno
import gc
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from devstack import cognito, journal, persistence
from devstack.asgi import DevstackApp
from devstack.http_protocol import ContractH11Protocol
from devstack.lambdas import Lambdas
from devstack.moto_server import EmbeddedMoto
from devstack import redact
from devstack.pumps import start_pumps
from devstack import tls
from devstack.websocket import WebSocketGateway
from infra import stack

log = logging.getLogger("devstack")

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".devstack" / "state"

# API Gateway's WebSocket message limit; uvicorn closes larger messages with 1009.
WS_MAX_MESSAGE_BYTES = 128 * 1024


def run(app_module: str, host: str, port: int, ready_file: Path | None, state_dir: Path | None = None,
        fresh: bool = False) -> int:
    """Serve until SIGINT/SIGTERM; 0 after a clean stop, 1 if the server died, 2 if the address is taken."""
    try:
        sock = _bind(host, port)
    except OSError as error:
        print(f"devstack: cannot listen on {host}:{port}: {error.strerror or error}"
              + (" (another `make run`? choose one with PORT=...)" if error.errno == errno.EADDRINUSE else ""),
              file=sys.stderr, flush=True)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the stack like Ctrl-C
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: every thread's stack to the log (a hung stack)
    stop = threading.Event()
    state = persistence.StateDir(state_dir) if state_dir else None
    if state and fresh:
        state.clear()
        (state.path / cognito.STATE_FILE).unlink(missing_ok=True)
        log.info("state: starting empty (--fresh); %s cleared", state.path)
    cognito.honour_token_validity()
    moto = EmbeddedMoto()
    moto.start()
    lambdas: Lambdas | None = None
    server: uvicorn.Server | None = None
    server_thread: threading.Thread | None = None
    snapshotter: persistence.Snapshotter | None = None
    wal: journal.Journal | None = None
    pool_state: cognito.PoolState | None = None
    pumps: list[threading.Thread] = []
    tls_port: tls.TlsPort | None = None
    try:
        bound_port = sock.getsockname()[1]
        public = _public_address(host, bound_port)
        local = state.local() if state else {}
        if local:
            # The same pepper and root key as last time, so keys issued before a restart still authenticate.
            os.environ.setdefault("API_KEY_PEPPER", local["apiKeyPepper"])
            if local.get("adminApiKey"):
                os.environ.setdefault("ADMIN_API_KEY", local["adminApiKey"])
        outputs, environment = _prepare_environment(moto.url, public)
        if state:
            # People: the pool's users as the last run left them, before the app's seed looks for its first person.
            pool_state = cognito.PoolState(state.path, outputs["UserPoolId"])
            restored_people = pool_state.load()
            log.info("state: restored %d people of the Cognito pool", restored_people)
            pool_state.start()
        if state:
            counts = persistence.load(state, outputs)
            log.info("state: restored %(items)d items, %(messages)d queue messages, %(objects)d objects, then "
                     "%(records)d journal records from %(segments)d segments", counts)
            if journal.enabled():
                # Before the app's first call: the seed is journaled like every later write.
                wal = journal.Journal(state.path, state.next_segment())
                journal.install(journal.Recorder(wal, outputs))
            else:
                log.warning("state: DEVSTACK_JOURNAL=0: snapshots only, a kill -9 loses the writes since the last one")
        app_object, seed = _load_app(app_module)
        if state:
            state.remember_seed(seed)
            snapshotter = persistence.Snapshotter(
                state, outputs, moto.changes, moto.dynamodb_lock, wal=wal,
                checkpoint_seconds=float(os.environ.get("DEVSTACK_CHECKPOINT_SECONDS") or 60))
            snapshotter.save()  # what was restored and replayed, and the seed: the replayed segments go
            snapshotter.start()
        # Everything imported and restored so far lives as long as the process: keep it out of the
        # cyclic collector's full passes, and collect young objects less often. One process (one GIL)
        # serves every request, socket and pump here; with 1,000 sockets open a full collection
        # walked every frame, connection and moto item and stalled a fan-out by hundreds of ms.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        lambdas = Lambdas(app_object)
        pumps, scheduler = start_pumps(lambdas, os.environ["AWS_DEFAULT_REGION"],
                                       os.environ.get("AWS_ACCOUNT_ID", "123456789012"), stop)
        asgi = DevstackApp(lambdas, WebSocketGateway(lambdas, domain_name=public), scheduler,
                           sign_in=cognito.SignIn(moto.url))
        asgi.serve_in_process(f"http://{public}")  # the fan-out's posts: no TCP hop, same SigV4 check
        server = uvicorn.Server(uvicorn.Config(
            asgi, host=host, port=bound_port, lifespan="off",
            http=ContractH11Protocol,  # the parser's own 400s in the contract's error shape
            ws="websockets",  # the implementation whose denial response (websocket.http.response.*) we rely on
            ws_max_size=WS_MAX_MESSAGE_BYTES, timeout_graceful_shutdown=5,
            # Frames go uncompressed: deflating every frame was a visible share of a
            # 1,000-socket fan-out's CPU on the stack's one GIL, and clients must not
            # depend on compression being offered (API Gateway's own frames are plain).
            ws_per_message_deflate=False))
        server_thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn")
        server_thread.start()
        while not server.started:
            if not server_thread.is_alive():
                log.error("the server stopped while starting")
                return 1
            server_thread.join(0.05)
        # Mutual TLS on TLS_PORT (issue 21, devstack/tls.py): gateways' certificates, as API Gateway's custom domain.
        tls_dir = state.path / "tls" if state else Path(os.environ.get("DEVSTACK_TLS_DIR") or _temporary_tls_dir(stop))
        tls_port = tls.TlsPort(asgi, host, tls.tls_port(), tls_dir, environment["MAIN_TABLE"])
        tls_port.start()
        info = _ready_info(public, moto.url, environment, seed, state)
        info.update(tlsUrl=tls_port.url, serverCaPath=str(tls_port.ca_path))
        _announce(info, app_object, scheduler.handlers)
        if ready_file:
            _write_atomically(ready_file, json.dumps(info, indent=2))
        # Wait in short slices: a process signal may be delivered to any thread,
        # and Python runs its handler only when the main thread next runs
        # bytecode, which an unbounded join() would never do.
        while server_thread.is_alive():
            server_thread.join(0.5)
        log.error("the server stopped unexpectedly")
        return 1
    except KeyboardInterrupt:
        log.info("stopping")
        return 0
    finally:
        # A second Ctrl-C while stopping means "now": exit without the rest of the cleanup.
        signal.signal(signal.SIGINT, _force_exit)
        signal.signal(signal.SIGTERM, _force_exit)
        if ready_file:
            ready_file.unlink(missing_ok=True)  # no script may read a key of a stack that is gone
        stop.set()
        if tls_port is not None:
            tls_port.stop()
        if server is not None and server_thread is not None:
            server.should_exit = True
            server_thread.join()
        for pump in pumps:
            pump.join(timeout=10)
            if pump.is_alive():
                log.warning("%s did not stop within 10 s", pump.name)
        if lambdas is not None:
            lambdas.shutdown()
        if snapshotter is not None:
            snapshotter.stop()  # after every handler finished: what was acknowledged is in it
            log.info("state: saved to %s", state.path if state else "")
        if pool_state is not None:
            pool_state.stop()
        if wal is not None:
            journal.uninstall()
            wal.close()
            # Group commit at work: calls answered per fsync (bench/journal.py reads this line).
            log.info("state: journal: %d records in %d fsyncs, %d snapshots", wal.records, wal.fsyncs,
                     snapshotter.snapshots if snapshotter else 0)
        moto.stop()


def _temporary_tls_dir(stop: threading.Event) -> str:
    """A directory for the TLS port's server CA when the stack keeps no state; removed when the stack stops."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="devstack-tls-")
    threading.Thread(target=lambda: (stop.wait(), shutil.rmtree(path, ignore_errors=True)), daemon=True,
                     name="tls-dir-cleanup").start()
    return path


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _force_exit(signum: int, frame: Any) -> None:
    log.warning("second signal while stopping: exiting at once")
    os._exit(128 + signum)


def _bind(host: str, port: int) -> socket.socket:
    """Bind first, so --port 0 picks a free port that the environment can name before the app loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    # Nagle off. asyncio turns it off only for sockets whose proto is
    # IPPROTO_TCP, and create_server's is 0, so the accepted sockets kept
    # Nagle: a response written as headers then body waited for the client's
    # delayed ACK, ~40 ms on every reused keep-alive connection (a fresh one
    # escapes it in TCP quick-ACK mode). Accepted sockets inherit this option.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _public_address(host: str, port: int) -> str:
    """host:port for clients: a wildcard bind is reached through loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _prepare_environment(moto_url: str, public: str) -> tuple[dict[str, str], dict[str, str]]:
    """Point every AWS client at moto, deploy the stack and export its outputs; returns them and those variables."""
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("STACK_NAME", "controlplane-local")
    # Powertools indents its JSON log lines and EMF metrics: readable as they scroll by.
    os.environ.setdefault("POWERTOOLS_DEV", "1")
    # ... which Powertools then warns about once per process: we asked for it.
    warnings.filterwarnings("ignore", message="POWERTOOLS_DEV environment variable is enabled", category=UserWarning)
    # The app's management API client posts here instead of to execute-api.
    os.environ["WEBSOCKET_ENDPOINT_OVERRIDE"] = f"http://{public}"
    cognito.pin_ids()  # the pool and client keep their ids across restarts
    log.info("deploying stack %s into moto at %s", os.environ["STACK_NAME"], moto_url)
    with _quiet_about_resources_made_through_the_api():
        outputs = stack.deploy(os.environ["STACK_NAME"])
    environment = {**stack.environment(outputs), **cognito.environment(moto_url, outputs)}
    os.environ.update(environment)
    return outputs, environment


# moto's CloudFormation skips these; infra/stack.py makes each through its own API right after (the
# pepper secret, the Cognito pool and its client), so moto's warning about them is noise at every start.
_MADE_THROUGH_THE_API = ("AWS::SecretsManager::Secret", "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient")


class _SkipKnownCloudFormationGaps(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("No Moto CloudFormation support for")
                    and message.rsplit(" ", 1)[-1] in _MADE_THROUGH_THE_API)


@contextlib.contextmanager
def _quiet_about_resources_made_through_the_api() -> Iterator[None]:
    moto_log, gap_filter = logging.getLogger("moto"), _SkipKnownCloudFormationGaps()
    moto_log.addFilter(gap_filter)
    try:
        with warnings.catch_warnings():
            for resource in _MADE_THROUGH_THE_API:
                warnings.filterwarnings("ignore", message=f"Tried to parse {resource} but", category=UserWarning)
            yield
    finally:
        moto_log.removeFilter(gap_filter)


def _load_app(module_name: str) -> tuple[Any, dict[str, Any]]:
    """Import the app module; its optional local_seed() returns what to print (e.g. orgId, adminApiKey)."""
    module = importlib.import_module(module_name)
    local_seed = getattr(module, "local_seed", None)
    seed = local_seed() if callable(local_seed) else {}
    return module.app, dict(seed or {})


def _ready_info(public: str, moto_url: str, environment: dict[str, str], seed: dict[str, Any],
                state: persistence.StateDir | None) -> dict[str, Any]:
    key = seed.get("adminApiKey", "<apiKey>")
    return {
        "url": f"http://{public}",
        "wsUrl": f"ws://{public}/ws?token={key}",
        "motoUrl": moto_url,
        "stateDir": str(state.path) if state else None,
        # The app's environment (table names, queue URLs, stream ARN) for tools and tests.
        "environment": environment,
        **seed,
    }


def _announce(info: dict[str, Any], app_object: Any, schedules: dict[str, Any]) -> None:
    # The root key is printed only when this start generated it (nobody else
    # knows it); a key from ADMIN_API_KEY is its owner's and never printed.
    generated = "adminApiKey" in info and not os.environ.get("ADMIN_API_KEY")
    key = info["adminApiKey"] if generated else ("$ADMIN_API_KEY" if "adminApiKey" in info else "<apiKey>")
    ws_url = info["wsUrl"].split("?token=")[0] + f"?token={key}"
    lines = [
        "",
        "devstack is ready",
        f"  REST API    {info['url']}",
        f"  WebSocket   {ws_url}",
        *([f"  Console     {info['url']}/console   (sign in with an operator or admin key, or as a person)"]
          if "/console" in app_object.routes else []),
        f"  AWS (moto)  {info['motoUrl']}   (AWS_ENDPOINT_URL={info['motoUrl']} aws ... / boto3)",
        *([f"  mTLS        {info['tlsUrl']}   (gateway certificates; trust the server CA {info['serverCaPath']})"]
          if info.get("tlsUrl") else []),
    ]
    lines += [f"  {name:<11} {key if name == 'adminApiKey' else value}" for name, value in info.items()
              if name not in ("url", "wsUrl", "motoUrl", "environment", "stateDir", "tlsUrl", "serverCaPath")]
    if info.get("stateDir"):
        lines.append(f"  state       {info['stateDir']}   (kept across restarts; make run FRESH=1 starts empty)")
    lines.append(f"  try         curl -H 'Authorization: Bearer {key}' {info['url']}{_example_path(app_object)}")
    if schedules:
        lines.append(f"  schedules   curl {info['url']}/_local/schedules")
        lines += [f"              curl -X POST {info['url']}/_local/schedules/{name}/run" for name in schedules]
    lines += ["  stop        Ctrl-C", ""]
    stdout = sys.stdout
    # A generated key must reach its user once: past the log's redaction.
    out = stdout.raw_stream if generated and isinstance(stdout, redact.RedactingStream) else stdout
    out.write("\n".join(lines) + "\n")
    out.flush()


def _example_path(app_object: Any) -> str:
    """A GET route without path parameters, for the curl example."""
    paths = sorted(path for path, methods in app_object.routes.items() if "GET" in methods and "{" not in path)
    return next((path for path in paths if path != "/"), paths[0] if paths else "/")


def _write_atomically(path: Path, text: str) -> None:
    # Readers poll for the file: they must never see it half written.
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)  # it names the root key: the owner's eyes only
    partial.write_text(text)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000), help="0 picks a free port")
    parser.add_argument("--ready-file", type=Path, help="write the URLs and seed as JSON here once serving")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"where the stack keeps its state across restarts (default: {DEFAULT_STATE_DIR})")
    parser.add_argument("--fresh", action="store_true", help="start empty: forget the saved state")
    parser.add_argument("--no-state", action="store_true", help="keep nothing on disk (tests)")
    args = parser.parse_args(argv)
    redact.install()  # before any logging or import: no key, token or bearer reaches the log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials ..." per client
    return run(args.app, args.host, args.port, args.ready_file,
               state_dir=None if args.no_state else args.state_dir, fresh=args.fresh)
