"""Browser tests of the operator console: Playwright for Python driving Debian's Chromium.

One local stack and one browser per module; pages wait on conditions (Playwright's
auto-waiting and `expect`), never on time. Without /usr/bin/chromium the tests skip on a
developer's machine and fail under CI=true (.ci/run installs the browser).
"""
from __future__ import annotations

import os

import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from devstack.testing import Devstack, running_devstack
from tests.e2e.client import call

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "console"
VIEWPORT = {"width": 1280, "height": 800}
HOSTILE = '<img src=x onerror=window.__xss=1>"></script><script>window.__xss=2</script>'
# Quick reconnects in tests (the console's sessionStorage knob; production keeps its defaults).
FAST_TIMING = '{"baseMs": 100, "capMs": 1500}'


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install chromium (the .ci/run script does)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The module's local stack; `restart()` stops it and starts it again on the same port and state."""

    def __init__(self, exits: ExitStack, state_dir: Path, port: int, env: dict[str, str]) -> None:
        self._exits, self._state, self._port, self._env = exits, state_dir, port, env
        self.current: Devstack = self._start()

    def _start(self) -> Devstack:
        return self._exits.enter_context(running_devstack(state_dir=self._state, port=self._port, env=self._env))

    def restart(self, between: Any = None) -> None:
        assert self.current.stop() == 0, self.current.log_tail()
        if between:
            between()
        self.current = self._start()

    @property
    def url(self) -> str:
        return self.current.url

    @property
    def root_key(self) -> str:
        return self.current.admin_api_key

    def call(self, method: str, path: str, key: str | None = None, body: Any = None, expect: int | None = None):
        reply = call(self.url, method, path, key, body)
        if expect is not None:
            assert reply.status == expect, (method, path, reply.status, reply.json)
        return reply.json


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    _require_chromium()
    with ExitStack() as exits, tempfile.TemporaryDirectory(prefix="console-state-") as state:
        yield Stack(exits, Path(state), free_port(), {"JOBS_IDLE_POLL_SECONDS": "1"})


@pytest.fixture(scope="module")
def org(stack: Stack) -> dict[str, str]:
    """A fresh organization: its admin key (the console signs in with it) and an operator key."""
    created = stack.call("POST", "/orgs", stack.root_key, {"name": "console"}, expect=201)
    operator = stack.call("POST", "/keys", created["adminKey"], {"name": "ops", "scope": "operator"}, expect=201)
    return {"orgId": created["orgId"], "admin": created["adminKey"], "operator": operator["apiKey"],
            "operatorKeyId": operator["keyId"]}


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A page with what it reported: console messages, page errors, CSP violations, dialogs."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.messages: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.sockets: list[Any] = []   # every WebSocket the page opened, in order
        page.on("websocket", lambda ws: self.sockets.append(ws))
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        # Every securitypolicyviolation event, from the first script on (CSP reports need no server).
        page.add_init_script("""
            window.__csp = [];
            document.addEventListener('securitypolicyviolation',
              (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
        """)

    def csp_violations(self) -> list[str]:
        found = self.page.evaluate("window.__csp || []")
        return found + [m for m in self.messages if "Content Security Policy" in m or "Content-Security-Policy" in m]

    def assert_clean(self) -> None:
        assert self.csp_violations() == []
        assert self.errors == []
        assert self.dialogs == []
        assert self.page.evaluate("window.__xss") is None


def open_console(browser: Any, url: str, key: str | None, hash_: str = "#/jobs", timing: str | None = FAST_TIMING) -> Watched:
    """A new page at the console, signed in with `key` (through the form, as a person would)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watched = Watched(page)
    if timing:
        page.add_init_script(f"sessionStorage.setItem('console.timing', '{timing}')")
    page.goto(f"{url}/console{hash_}")
    if key is not None:
        page.get_by_role("textbox", name="API key").fill(key)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return watched


def axe_findings(page: Any) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.response["passes"], "axe-core ran no rule: it did not load into the page"
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str, tmp_dir: Path) -> Path:
    """A 1280x800 picture of the view: into docs/console/ under CONSOLE_SCREENSHOTS=1 (make screenshots)."""
    target_dir = SHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.png"
    page.screenshot(path=str(path))
    return path



