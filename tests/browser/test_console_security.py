"""The console against hostile data and bad keys: every string from the API is shown as text
(no script runs, the text shows literally), zero CSP violations, the security headers on every
/console* response, 401/403 messages, and a revoked key signs the page out at once without the
key ever appearing in the URL, the page or its console. One stack and one browser for the module."""
from __future__ import annotations

import json
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import HOSTILE, Stack, open_console
from tests.e2e.client import call

pytestmark = pytest.mark.browser

JS_LINK = "javascript:window.__xss=3"
MD_LINK = f"[click me]({JS_LINK})"


@pytest.fixture(scope="module")
def hostile(stack: Stack) -> dict:
    """Every field the console shows, filled with markup, a javascript: link and </script>: in the root
    organization (its admin key may run the ops scan, which files the failures as ops issues)."""
    root = stack.root_key
    operator = stack.call("POST", "/keys", root, {"name": HOSTILE, "scope": "operator"}, expect=201)["apiKey"]
    agent = stack.call("POST", "/agents", operator, {"name": HOSTILE, "pools": ["evil"], "tags": {"note": HOSTILE},
                                                     "metadata": {"x": HOSTILE}}, expect=201)
    instance = stack.call("POST", "/instances", operator, {"agentId": agent["agentId"], "name": HOSTILE}, expect=201)
    job = stack.call("POST", "/jobs", operator, {"agentId": agent["agentId"], "type": HOSTILE,
                                                 "payload": {"html": HOSTILE, "link": JS_LINK,
                                                             "instanceId": instance["instanceId"]}}, expect=201)
    polled = stack.call("GET", f"/jobs/poll?agentId={agent['agentId']}&max=1", agent["apiKey"], expect=200)["jobs"][0]
    stack.call("POST", "/jobs/progress", agent["apiKey"], {"jobId": job["jobId"], "runId": polled["runId"],
                                                           "agentId": agent["agentId"], "percent": 40,
                                                           "message": HOSTILE}, expect=204)
    stack.call("POST", f"/instances/{instance['instanceId']}/logs", agent["apiKey"], {"entries": [
        {"level": "ERROR", "message": HOSTILE, "fields": {"link": JS_LINK}}, {"level": "INFO", "message": MD_LINK}]},
        expect=202)
    stack.call("POST", "/jobs/complete", agent["apiKey"], {"jobId": job["jobId"], "runId": polled["runId"],
                                                           "agentId": agent["agentId"], "status": "FAILED",
                                                           "error": {"code": "BOOM", "message": HOSTILE}}, expect=204)
    session = stack.call("POST", "/sessions", operator, {"agentRole": HOSTILE, "metadata": {"m": HOSTILE}}, expect=201)
    stack.call("POST", "/tasks", operator, {"idempotencyKey": "evil", "sessionId": session["sessionId"], "toRole": HOSTILE,
                                            "type": HOSTILE, "payload": {"p": HOSTILE}, "requiresApproval": True},
               expect=201)
    stack.call("POST", f"/agents/{agent['agentId']}/commands", operator, {"type": "say", "payload": {"c": HOSTILE}},
               expect=201)
    # The workspace path rule refuses < > " : (docs/PATCHES.md), so the hostile path carries HTML entities:
    # shown as text they stay "&lt;img", parsed as markup they would turn into "<img".
    path = "docs/&lt;img src=x onerror=window.__xss=4&gt;.txt"
    encoded = quote(path, safe="/")
    urlopen(Request(f"{stack.url}/api/workspaces/evil/files?path={encoded}",
                    data=b"one\n", method="PUT", headers={"Authorization": f"Bearer {operator}",
                                                          "Content-Type": "text/plain"})).read()
    stack.call("POST", "/api/patches/apply", operator, {
        "workspace": "evil", "orderId": "order-evil", "factory": MD_LINK, "phase": HOSTILE,
        "operations": [{"op": "append", "file": path, "content": HOSTILE},
                       {"op": "replace-block", "file": path, "anchor": {"search": "absent " + HOSTILE}, "content": "x"}]},
        expect=202)
    stack.call("POST", "/api/patches/apply", operator, {
        "workspace": "evil", "orderId": "order-evil", "factory": MD_LINK, "phase": HOSTILE,
        "operations": [{"op": "append", "file": path, "content": HOSTILE}]}, expect=202)
    scan = stack.call("POST", "/api/ops/scan", root, {"scope": "full"}, expect=200)
    return {"operator": operator, "agent": agent, "job": job, "instance": instance, "scan": scan}


def _shows_literally(page, text: str = HOSTILE) -> None:
    expect(page.get_by_text(text, exact=False).first).to_be_attached()


def test_every_view_shows_hostile_strings_as_text_and_runs_no_script(stack, browser, hostile):
    watched = open_console(browser, stack.url, stack.root_key, "#/fleet")
    page = watched.page
    _shows_literally(page)                                                    # agent name and tag
    page.goto(f"{stack.url}/console#/jobs")
    _shows_literally(page)                                                    # job type
    page.goto(f"{stack.url}/console#/jobs/{hostile['job']['jobId']}")
    expect(page.locator(".job-summary")).to_contain_text("FAILED")
    expect(page.locator(".job-summary")).to_contain_text(JS_LINK)            # payload and error, as JSON text
    expect(page.locator("ol.logs")).to_contain_text(HOSTILE)                 # a log line
    expect(page.locator("ol.logs")).to_contain_text(MD_LINK)
    page.goto(f"{stack.url}/console#/sessions")
    _shows_literally(page)                                                    # agent role, task type and role
    page.goto(f"{stack.url}/console#/approvals")
    _shows_literally(page)                                                    # task type
    page.goto(f"{stack.url}/console#/patches")
    # the file path, entities shown as typed
    expect(page.locator("table", has_text="Patch events")).to_contain_text("&lt;img src=x onerror=window.__xss=4&gt;")
    _shows_literally(page, MD_LINK)                                           # factory, in the stream and the chart
    page.goto(f"{stack.url}/console#/commands?agentId={hostile['agent']['agentId']}")
    _shows_literally(page)                                                    # command type and the agent's name
    page.goto(f"{stack.url}/console#/audit")
    expect(page.locator("main tbody tr").first).to_be_visible()
    page.goto(f"{stack.url}/console#/ops")
    expect(page.locator("main p.muted[aria-live]")).to_contain_text("issues shown")
    issues = stack.call("GET", "/api/ops/issues", stack.root_key)["items"]
    hostile_titles = [i["title"] for i in issues if "onerror" in i["title"]]
    assert hostile_titles, [i["title"] for i in issues]      # the failed job's error became an issue title
    for title in hostile_titles:
        expect(page.get_by_text(title, exact=True).first).to_be_attached()
    # Reports: generated from the hostile patch events; marked output goes through DOMPurify.
    stack.call("POST", "/api/delivery/reports/generate", stack.root_key, {}, expect=200)
    page.goto(f"{stack.url}/console#/reports?orderId=order-evil")
    report = page.locator("article.report")
    expect(report).to_contain_text("order-evil")
    assert report.locator("script, img, iframe, [onerror], [onload], a[href^='javascript' i]").count() == 0
    # Nothing ran, no dialog, no CSP violation, no error: on every view.
    for view in ("fleet", "jobs", "sessions", "approvals", "patches", "reports", "ops", "commands", "audit"):
        page.goto(f"{stack.url}/console#/{view}")
        expect(page.locator("main h1")).to_be_visible()
    assert page.locator("img[src=x], script:not([src])").count() == 0
    watched.assert_clean()
    page.context.close()


def test_report_markdown_is_sanitised(stack, browser):
    watched = open_console(browser, stack.url, stack.root_key, "#/reports")
    page = watched.page
    markdown = (f"# Title {HOSTILE}\n\n{MD_LINK} and [ok](https://example.com/x)\n\n"
                "<a href=\"javascript:window.__xss=5\">raw</a> <svg onload=window.__xss=6></svg>"
                "<iframe src=\"javascript:window.__xss=7\"></iframe><style>body{display:none}</style>\n\n"
                "![pic](https://example.com/p.png) `</script><script>window.__xss=8</script>`")
    found = page.evaluate("""async (md) => {
        const { renderMarkdown } = await import('/console/view-reports.js');
        const host = document.createElement('div');
        host.append(renderMarkdown(md));
        document.querySelector('main').append(host);
        const bad = host.querySelectorAll('script, iframe, svg, style, img, object, embed, [onerror], [onload], [style]');
        const linked = [...host.querySelectorAll('[href], [src]')];
        return { bad: bad.length, hrefs: linked.map((a) => a.getAttribute('href') || a.getAttribute('src')),
                 rels: [...host.querySelectorAll('a')].map((a) => a.rel), text: host.textContent };
    }""", markdown)
    assert found["bad"] == 0
    assert found["hrefs"] == ["https://example.com/x"]           # the javascript: links lost their href
    assert found["rels"] == ["noopener noreferrer"] * len(found["rels"])
    assert "<iframe" in found["text"] and "</script><script>" in found["text"]   # raw HTML: shown as text
    watched.assert_clean()
    page.context.close()


def test_console_responses_carry_the_security_headers(stack):
    assert f"Console     {stack.url}/console" in stack.current.log_tail(400)   # make run prints where it is
    for path in ("/console", "/console/", "/console/config.json", "/console/app.js", "/console/app.css",
                 "/console/vendor/uplot-1.6.32.iife.min.js", "/console/no-such.js", "/console/vendor/..%2Fapp.js"):
        reply = urlopen_any(stack.url + path)
        headers = {k.lower(): v for k, v in reply[1].items()}
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    status, headers, body = urlopen_any(stack.url + "/console/config.json")
    config = json.loads(body)
    assert status == 200 and config["restUrl"] == stack.url and config["wsUrl"] == stack.url.replace("http://", "ws://") + "/ws"
    # the embedded pool people sign in against (issue 21), on the console's own origin
    assert config["oidc"]["endpoint"] == f"{stack.url}/_cognito/" and config["oidc"]["clientId"]
    assert config["oidc"]["issuer"].startswith("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_")
    assert urlopen_any(stack.url + "/console/no-such.js")[0] == 404
    assert urlopen_any(stack.url + "/console/vendor/..%2F..%2Fapp.py")[0] == 404


def urlopen_any(url: str):
    import urllib.error

    try:
        with urlopen(url) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_bad_keys_get_clear_messages(stack, browser, hostile):
    watched = open_console(browser, stack.url, None, "#/jobs")
    page = watched.page
    page.get_by_role("textbox", name="API key").fill("cpk.not-a-real-key")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("refused")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("textbox", name="API key").fill(hostile["agent"]["apiKey"])       # an agent key: 403
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("403")
    assert hostile["agent"]["apiKey"] not in page.locator("body").inner_text()
    page.context.close()


def test_a_revoked_key_signs_the_page_out_at_once_and_appears_nowhere(stack, browser):
    root = stack.root_key
    created = stack.call("POST", "/keys", root, {"name": "short-lived", "scope": "operator"}, expect=201)
    key = created["apiKey"]
    watched = open_console(browser, stack.url, key, "#/jobs?status=QUEUED")
    page = watched.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    stack.call("DELETE", f"/keys/{created['keyId']}", root, expect=204)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert").first).to_contain_text("Sign in again")
    assert page.evaluate("sessionStorage.getItem('console.session')") is None
    assert key not in page.url
    assert key not in page.locator("body").inner_text()
    assert not [m for m in watched.messages + watched.errors if key in m]
    # Only the WebSocket URL may carry it (as `token`); no REST request put it in a URL.
    assert not [u for u in requests if key in u and "/ws?" not in u]
    assert call(stack.url, "GET", "/jobs", key).status == 401
    watched.assert_clean()
    page.context.close()
