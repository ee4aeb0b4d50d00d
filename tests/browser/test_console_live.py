"""The console live against the local stack: sign in, the fleet, jobs worked by the reference agent,
the log tail, cancel, approvals, patches and their charts, every view's accessibility and picture,
the keyboard, and a reconnect after the stack restarts. One stack and one browser for the module."""
from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Stack, axe_findings, open_console, screenshot

pytestmark = pytest.mark.browser

VIEWS = ["fleet", "jobs", "sessions", "approvals", "patches", "reports", "ops", "commands", "audit"]


@pytest.fixture(scope="module")
def agent(stack: Stack, org):
    """The reference agent (agent/), in a thread, as one more agent of the org's pool `work`."""
    from agent import Agent, Backoff
    from agent.client import Client
    from agent.handlers import BUILTIN

    created = stack.call("POST", "/agents", org["operator"], {"name": "reference-agent", "pools": ["work"],
                                                              "tags": {"site": "lab"}}, expect=201)
    worker = Agent(Client(stack.url, created["apiKey"]), created["agentId"], BUILTIN, backoff=Backoff(base=0.2, cap=1.0))
    worker.start()
    yield {"agentId": created["agentId"], "apiKey": created["apiKey"], "worker": worker}
    worker.stop(wait=False)


def test_sign_in_shows_the_jobs_view_live_and_sign_out_forgets_the_key(stack, browser, org):
    watched = open_console(browser, stack.url, org["admin"])
    page = watched.page
    expect(page.locator("#conn")).to_have_text("Live")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('console.session')") is not None
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('console.session')") is None
    assert org["admin"] not in page.url
    watched.assert_clean()
    page.context.close()


def test_an_agent_registered_while_the_page_is_open_appears_and_a_silent_one_is_stale(stack, browser, org):
    watched = open_console(browser, stack.url, org["admin"], "#/fleet")
    page = watched.page
    created = stack.call("POST", "/agents", org["operator"], {"name": "late-comer", "pools": ["edge"],
                                                              "tags": ["gpu", "eu"]}, expect=201)
    row = page.locator(f"tr[data-agent-id='{created['agentId']}']")
    expect(row).to_contain_text("late-comer")
    expect(row).to_contain_text("edge")
    expect(row).to_contain_text("gpu")
    expect(row).to_contain_text("stale")          # never sent a heartbeat
    stack.call("POST", f"/agents/{created['agentId']}/heartbeat", created["apiKey"], expect=204)
    expect(row).not_to_contain_text("stale")
    watched.assert_clean()
    page.context.close()


def test_a_queued_job_s_bar_moves_while_the_reference_agent_works_it_and_its_log_tail_streams(stack, browser, org, agent):
    watched = open_console(browser, stack.url, org["admin"], "#/jobs")
    page = watched.page
    instance = stack.call("POST", "/instances", org["operator"], {"agentId": agent["agentId"], "name": "game-1"},
                          expect=201)
    job = stack.call("POST", "/jobs", org["operator"], {"pool": "work", "type": "sleep", "payload": {
        "seconds": 6, "steps": 4, "instanceId": instance["instanceId"]}}, expect=201)
    row = page.locator(f"tr[data-job-id='{job['jobId']}']")
    expect(row).to_contain_text("sleep")
    bar = row.locator("progress")
    # The bar moves while the agent works: RUNNING with a step past the first, then the final state.
    expect(row.get_by_text("RUNNING", exact=True)).to_be_visible()
    expect(bar).to_have_attribute("aria-label", re.compile(r"progress (25|50|75)%"))
    expect(row.get_by_text("COMPLETED", exact=True)).to_be_visible(timeout=30_000)

    # The job's page: its facts, history and its instance's logs as a live tail.
    page.locator(f"tr[data-job-id='{job['jobId']}'] a").first.click()
    expect(page).to_have_url(re.compile(f"#/jobs/{job['jobId']}$"))
    expect(page.locator(".job-summary")).to_contain_text("COMPLETED")
    expect(page.locator(".job-summary")).to_contain_text('"slept": 6')
    expect(page.locator("ol.history").first.locator("li").first).to_be_visible()
    logs = page.locator("ol.logs")

    def push(*lines: tuple[str, str]) -> None:
        stack.call("POST", f"/instances/{instance['instanceId']}/logs", agent["apiKey"],
                   {"entries": [{"level": level, "message": message} for level, message in lines]}, expect=202)

    push(("INFO", "first line"), ("ERROR", "disk full"))
    expect(logs).to_contain_text("first line")
    expect(logs).to_contain_text("disk full")
    # Level filter: ERROR and above hides INFO.
    page.get_by_label("Minimum level").select_option("ERROR")
    expect(logs).not_to_contain_text("first line")
    expect(logs).to_contain_text("disk full")
    page.get_by_label("Minimum level").select_option("TRACE")
    # Pause: new lines wait; "Jump to newest" shows them.
    page.get_by_role("button", name="Pause").click()
    push(("WARN", "while paused"))
    expect(page.locator(".logtail")).to_contain_text("1 new line waiting")
    expect(logs).not_to_contain_text("while paused")
    page.get_by_role("button", name="Jump to newest").click()
    expect(logs).to_contain_text("while paused")
    # A deep link to this page survives a reload.
    page.reload()
    expect(page.locator(".job-summary")).to_contain_text("COMPLETED")
    expect(page.locator("ol.logs")).to_contain_text("while paused")
    watched.assert_clean()
    page.context.close()


def test_the_console_asks_for_batches_and_applies_every_event_of_a_system_batch_in_order(stack, browser, org):
    import json

    import boto3

    jobs = [stack.call("POST", "/jobs", org["operator"], {"pool": "batched", "type": f"batched-{n}", "payload": {}},
                       expect=201) for n in range(2)]
    watched = open_console(browser, stack.url, org["admin"], "#/jobs")
    page = watched.page
    rows = [page.locator(f"tr[data-job-id='{job['jobId']}']") for job in jobs]
    for row in rows:
        expect(row.get_by_text("QUEUED", exact=True)).to_be_visible()
    # The console's socket was opened with ?batch=1: its connection item says so.
    ddb = stack.current.aws("dynamodb")
    conns = ddb.query(TableName=stack.current.environment["MAIN_TABLE"], IndexName="GSI1",
                      KeyConditionExpression="GSI1PK = :p",
                      ExpressionAttributeValues={":p": {"S": f"ORG#{org['orgId']}#CONNS"}})["Items"]
    live = [c["connectionId"]["S"] for c in conns if c.get("batch", {}).get("BOOL")]
    assert live, conns
    # A system:batch nobody else could have sent (these jobs were never claimed): both rows must take it.
    at = "2026-01-01T00:00:00.000Z"
    events = [{"event": "job:progress", "data": {"jobId": job["jobId"], "runId": "R", "status": "RUNNING",
                                                  "claimedBy": "A", "progressPercent": 40 + 20 * n, "at": at}}
              for n, job in enumerate(jobs)]
    management = boto3.client("apigatewaymanagementapi", endpoint_url=stack.url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    for connection_id in live:
        management.post_to_connection(ConnectionId=connection_id, Data=json.dumps(
            {"event": "system:batch", "data": {"events": events}}).encode())
    for row, percent in zip(rows, (40, 60), strict=True):
        expect(row.get_by_text("RUNNING", exact=True)).to_be_visible()
        expect(row.locator("progress")).to_have_attribute("aria-label", f"progress {percent}%")
    watched.assert_clean()
    page.context.close()


def test_cancel_and_retry_go_through_a_confirmation(stack, browser, org):
    job = stack.call("POST", "/jobs", org["operator"], {"pool": "nobody-here", "type": "idle", "payload": {}},
                     expect=201)
    watched = open_console(browser, stack.url, org["admin"], "#/jobs?status=QUEUED")
    page = watched.page
    row = page.locator(f"tr[data-job-id='{job['jobId']}']")
    row.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(job["jobId"])
    dialog.get_by_role("button", name="Cancel").click()       # the dialog's own Cancel: nothing happens
    assert stack.call("GET", f"/jobs/{job['jobId']}", org["operator"])["status"] == "QUEUED"
    row.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name="Confirm").click()
    expect(row).to_have_count(0)                               # the filter is QUEUED: the row leaves
    assert stack.call("GET", f"/jobs/{job['jobId']}", org["operator"])["status"] == "CANCELLED"
    page.goto(f"{stack.url}/console#/jobs?status=cancelled")       # a hand-typed deep link, any case
    expect(page.get_by_role("combobox", name="Status")).to_have_value("CANCELLED")
    row = page.locator(f"tr[data-job-id='{job['jobId']}']")
    expect(row.get_by_text("CANCELLED", exact=True)).to_be_visible()
    row.get_by_role("button", name="Retry").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator("#notice")).to_contain_text("Queued job")
    queued = stack.call("GET", "/jobs?pool=nobody-here&status=QUEUED", org["operator"])["items"]
    assert [j["type"] for j in queued] == ["idle"]
    watched.assert_clean()
    page.context.close()


def test_approving_a_task_with_a_reason(stack, browser, org):
    session = stack.call("POST", "/sessions", org["operator"], {"agentRole": "planner"}, expect=201)
    task = stack.call("POST", "/tasks", org["operator"], {"idempotencyKey": "approve-me", "sessionId": session["sessionId"],
                                                          "toRole": "coder", "type": "deploy", "requiresApproval": True},
                      expect=201)
    watched = open_console(browser, stack.url, org["admin"], "#/approvals")
    page = watched.page
    row = page.locator("tr", has_text=task["taskId"])
    row.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Your name").fill("alice")
    dialog.get_by_label("Comment").fill("looks right")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#notice")).to_contain_text("approved")
    expect(row).to_have_count(0)
    assert stack.call("GET", f"/tasks/{task['taskId']}", org["operator"])["status"] == "pending"
    page.goto(f"{stack.url}/console#/approvals?status=approved")
    expect(page.locator("tr", has_text=task["taskId"])).to_contain_text("alice")
    expect(page.locator("tr", has_text=task["taskId"])).to_contain_text("looks right")
    watched.assert_clean()
    page.context.close()


def test_a_second_decision_shows_who_decided_first(stack, browser, org):
    session = stack.call("POST", "/sessions", org["operator"], {"agentRole": "planner"}, expect=201)
    task = stack.call("POST", "/tasks", org["operator"], {"idempotencyKey": "race-me", "sessionId": session["sessionId"],
                                                          "toRole": "coder", "type": "race", "requiresApproval": True},
                      expect=201)
    watched = open_console(browser, stack.url, org["admin"], "#/approvals")
    page = watched.page
    row = page.locator("tr", has_text=task["taskId"])
    row.get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Your name").fill("carol")
    # Someone else decides while the dialog is open.
    approval = next(a for a in stack.call("GET", "/approvals?status=pending", org["operator"])["items"]
                    if a["taskId"] == task["taskId"])
    stack.call("POST", f"/approvals/{approval['approvalId']}/decision", org["operator"],
               {"decision": "approved", "decidedBy": "bob"}, expect=200)
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#notice")).to_contain_text("Already approved by bob")
    watched.assert_clean()
    page.context.close()


def test_a_patch_batch_appears_in_the_stream_and_the_charts(stack, browser, org):
    watched = open_console(browser, stack.url, org["admin"], "#/patches")
    page = watched.page
    expect(page.locator("figure.chart")).to_have_count(4)
    stack.call("PUT", "/api/workspaces/site/files?path=docs/hello.txt", org["operator"], None)  # created below as text
    from urllib.request import Request, urlopen

    urlopen(Request(f"{stack.url}/api/workspaces/site/files?path=docs/hello.txt", data=b"one\ntwo\n", method="PUT",
                    headers={"Authorization": f"Bearer {org['operator']}", "Content-Type": "text/plain"})).read()
    batch = stack.call("POST", "/api/patches/apply", org["operator"], {
        "workspace": "site", "orderId": "order-7", "factory": "factory-a", "operations": [
            {"op": "insert-after", "file": "docs/hello.txt", "anchor": {"search": "one"}, "content": "one and a half"},
            {"op": "append", "file": "docs/new.txt", "content": "fresh"}]}, expect=202)
    stream = page.locator("table", has_text="Patch events")
    expect(stream.locator("tr", has_text="docs/hello.txt").first).to_contain_text("applied")
    expect(stream.locator("tr", has_text="docs/new.txt").first).to_contain_text("append")
    # The charts drew the batch: their numbers say so.
    kinds = page.locator("figure.chart", has_text="Operations by kind")
    expect(kinds.locator("canvas")).to_have_count(1)
    expect(kinds.locator("td", has_text="insert-after")).to_have_count(1)
    expect(page.locator("figure.chart", has_text="Success rate per factory").locator("td", has_text="factory-a")).to_have_count(1)
    # Per-file results of the batch.
    stream.locator("a", has_text=batch["batchId"]).first.click()
    results = page.locator("table", has_text="Per-file results")
    expect(results).to_contain_text("docs/hello.txt")
    expect(results).to_contain_text("search")
    watched.assert_clean()
    page.context.close()


def test_every_view_passes_axe_and_is_pictured(stack, browser, org, agent, tmp_path):
    # Something in every view: a failed job filed as an ops issue (a root-organization matter), a report.
    failed = stack.call("POST", "/jobs", org["operator"], {"pool": "work", "type": "fail", "payload": {
        "message": "disk quota exceeded on /var/lib/game"}}, expect=201)
    stack.call("POST", "/api/delivery/reports/generate", org["operator"], {}, expect=200)
    session = stack.call("POST", "/sessions", org["operator"], {"agentRole": "reviewer"}, expect=201)
    stack.call("POST", "/tasks", org["operator"], {"idempotencyKey": "pictured", "sessionId": session["sessionId"],
                                                   "toRole": "release", "type": "publish", "requiresApproval": True},
               expect=201)
    stack.call("POST", f"/agents/{agent['agentId']}/commands", org["operator"], {"type": "reload", "payload": {}},
               expect=201)
    watched = open_console(browser, stack.url, org["admin"], "#/jobs?status=FAILED")
    page = watched.page
    expect(page.locator(f"tr[data-job-id='{failed['jobId']}']")).to_contain_text("FAILED")
    stack.call("POST", "/api/ops/scan", stack.root_key, {"scope": "full"}, expect=200)
    routes = {view: view for view in VIEWS}
    routes.update(reports="reports?orderId=order-7", commands=f"commands?agentId={agent['agentId']}")
    findings = {}
    for view in VIEWS:
        page.goto(f"{stack.url}/console#/{routes[view]}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main p.muted[aria-live]").first).not_to_be_empty()
        findings[view] = axe_findings(page)
        screenshot(page, view, tmp_path)
    job = stack.call("GET", "/jobs?status=COMPLETED&limit=1", org["operator"])["items"][0]
    page.goto(f"{stack.url}/console#/jobs/{job['jobId']}")
    expect(page.locator(".job-summary")).to_contain_text("COMPLETED")
    findings["job"] = axe_findings(page)
    screenshot(page, "job", tmp_path)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    findings["signin"] = axe_findings(page)
    screenshot(page, "signin", tmp_path)
    # Ops is the platform's: the root organization's admin sees the issue the scan filed.
    page.get_by_role("textbox", name="API key").fill(stack.root_key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{stack.url}/console#/ops")
    expect(page.locator("main tbody")).to_contain_text("disk quota exceeded")
    findings["ops"] = axe_findings(page)
    screenshot(page, "ops", tmp_path)
    assert {view: f for view, f in findings.items() if f} == {}
    watched.assert_clean()
    page.context.close()


def test_claiming_an_ops_issue_and_sending_a_command(stack, browser, org, agent):
    # Runs after the pictures: the scan there filed the failed job as an issue.
    watched = open_console(browser, stack.url, stack.root_key, "#/ops?status=open")
    page = watched.page
    row = page.locator("main tbody tr", has_text="disk quota exceeded")
    row.get_by_role("button", name="Claim").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Your name").fill("dana")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#notice")).to_contain_text("Issue claimed")
    expect(row).to_have_count(0)                       # no longer open
    page.goto(f"{stack.url}/console#/ops?status=in_progress")
    expect(page.locator("main tbody tr", has_text="disk quota exceeded")).to_contain_text("dana")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="API key").fill(org["admin"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{stack.url}/console#/commands?agentId={agent['agentId']}")
    page.get_by_text("Send a command").click()
    page.get_by_label("Type").fill("rotate-logs")
    page.get_by_label("Payload (JSON)").fill('{"keep": 3}')
    page.get_by_role("button", name="Send command").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(page.locator("#notice")).to_contain_text("Command sent")
    row = page.locator("main tbody tr", has_text="rotate-logs")
    expect(row).to_contain_text("pending")
    command = next(c for c in stack.call("GET", f"/agents/{agent['agentId']}/commands", org["operator"])["items"]
                   if c["type"] == "rotate-logs")
    stack.call("POST", f"/commands/{command['commandId']}/ack", agent["apiKey"], {"status": "acked", "result": {"rotated": 2}},
               expect=200)
    expect(row).to_contain_text("acked")               # live: command:acked
    expect(row).to_contain_text('"rotated": 2')
    # The audit trail, filtered from its form: only that entity type's events.
    job_id = stack.call("GET", "/jobs?status=COMPLETED&limit=1", org["operator"])["items"][0]["jobId"]
    page.goto(f"{stack.url}/console#/audit")
    page.get_by_label("Entity type").fill("job")
    page.get_by_label("Entity id").fill(job_id)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"#/audit\?entityType=job&entityId={job_id}$"))
    entities = page.locator("main tbody tr td:nth-child(2)")
    expect(entities.first).to_contain_text(f"job {job_id}")
    assert all(text == f"job {job_id}" for text in entities.all_inner_texts())
    watched.assert_clean()
    page.context.close()


def test_overlapping_re_reads_of_the_commands_view_show_each_command_once(stack, browser, org, agent):
    """The send's own re-read and command:issued's overlap: the older answer, held back here until the
    newer one has rendered, must not add its rows a second time (seen in CI: two rows, one command)."""
    watched = open_console(browser, stack.url, org["admin"], f"#/commands?agentId={agent['agentId']}")
    page = watched.page
    table = page.get_by_role("table", name="Commands")
    settled = "t => t.dataset.reads && t.dataset.reads === t.dataset.settled"
    page.wait_for_function(settled, arg=table.element_handle())
    held, answered = [], []

    def hold_the_first_let_the_next_pass(route):
        if route.request.method != "GET":
            route.continue_()
        elif not held:
            held.append(route)                          # answered after the next read rendered
        else:
            route.continue_()
            answered.append(route)

    page.route(re.compile(rf".*/agents/{agent['agentId']}/commands([?].*)?$"), hold_the_first_let_the_next_pass)
    page.get_by_text("Send a command").click()
    page.get_by_label("Type").fill("flush-cache")
    page.get_by_role("button", name="Send command").click()
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    rows = page.locator("main tbody tr", has_text="flush-cache")
    expect(rows).to_have_count(1)                       # the newer read rendered
    assert held and answered
    with page.expect_request_finished(lambda r: r is held[0].request or r.url == held[0].request.url):
        held[0].continue_()                             # now the older answer arrives
    page.wait_for_function(settled, arg=table.element_handle())
    expect(rows).to_have_count(1)
    watched.assert_clean()
    page.context.close()


def _tab_to(page, predicate_js: str, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({predicate_js}); }})()"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"no focusable element matched {predicate_js} within {limit} tabs")


def test_every_action_is_reachable_by_keyboard(stack, browser, org):
    watched = open_console(browser, stack.url, None, "#/jobs")
    page = watched.page
    _tab_to(page, "el.name === 'apiKey'")
    page.keyboard.type(org["admin"])
    page.keyboard.press("Enter")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # Nav by keyboard.
    page.locator("body").focus()
    _tab_to(page, "el.textContent === 'Jobs' && el.tagName === 'A'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    # Queue a job by keyboard: open the panel, fill, submit, confirm.
    _tab_to(page, "el.tagName === 'SUMMARY'")
    page.keyboard.press("Enter")
    _tab_to(page, "el.name === 'target'")
    page.keyboard.type("kbd-pool")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard")
    _tab_to(page, "el.textContent === 'Queue job'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    row = page.locator("tr", has_text="keyboard")
    expect(row).to_contain_text("QUEUED")
    # Cancel it by keyboard.
    _tab_to(page, "el.getAttribute('aria-label')?.startsWith('Cancel job')")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("CANCELLED")
    watched.assert_clean()
    page.context.close()


def test_the_socket_pings_inside_the_idle_limit_and_is_renewed_before_the_cap(stack, browser, org):
    # The same code as production with its clock shortened: ping every 300 ms, renew after 3 s.
    watched = open_console(browser, stack.url, org["admin"], "#/jobs",
                           timing='{"pingMs": 300, "recycleMs": 3000, "baseMs": 100, "capMs": 1500}')
    page = watched.page
    first = watched.sockets[0]
    first.wait_for_event("framesent", predicate=lambda payload: '"action":"ping"' in str(payload))
    if len(watched.sockets) < 2:
        with page.expect_websocket(timeout=15_000):
            pass
    second = watched.sockets[1]
    assert second.url.split("?")[0] == first.url.split("?")[0]
    if not first.is_closed():
        first.wait_for_event("close")            # once the new one is live
    assert not second.is_closed()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    # Still live: an event reaches the page over the new socket.
    job = stack.call("POST", "/jobs", org["operator"], {"pool": "renewed", "type": "after-renewal", "payload": {}},
                     expect=201)
    expect(page.locator(f"tr[data-job-id='{job['jobId']}']")).to_contain_text("QUEUED")
    watched.assert_clean()
    page.context.close()


def test_after_the_stack_restarts_the_page_reconnects_and_shows_what_changed_while_away(stack, browser, org):
    kept = stack.call("POST", "/jobs", org["operator"], {"pool": "restart-pool", "type": "before", "payload": {}},
                      expect=201)
    gate = threading.Event()
    gate.set()
    watched = open_console(browser, stack.url, org["admin"], "#/jobs?pool=restart-pool")
    page = watched.page

    def route(ws):
        if gate.is_set():
            ws.connect_to_server()
        else:
            ws.close()

    page.route_web_socket(re.compile(r"/ws\?"), route)
    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(f"tr[data-job-id='{kept['jobId']}']")).to_contain_text("QUEUED")
    changed: dict = {}

    def while_down():
        gate.clear()                       # the page stays away until the changes are made

    stack.restart(between=while_down)
    expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    stack.call("POST", f"/jobs/{kept['jobId']}/cancel", org["operator"], expect=200)
    changed["new"] = stack.call("POST", "/jobs", org["operator"], {"pool": "restart-pool", "type": "after", "payload": {}},
                                expect=201)
    expect(page.locator(f"tr[data-job-id='{changed['new']['jobId']}']")).to_have_count(0)
    gate.set()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(f"tr[data-job-id='{kept['jobId']}']")).to_contain_text("CANCELLED")
    expect(page.locator(f"tr[data-job-id='{changed['new']['jobId']}']")).to_contain_text("QUEUED")
    watched.assert_clean()
    page.context.close()
