"""The control plane's log lines print once: the Chalice app and the Powertools Logger share the
"control-plane" logger, and only the Powertools handler writes to it."""
import io
import json
import logging


def test_a_log_line_prints_once_as_json(app_module):
    from chalicelib.core import observability

    logger = observability._logger()
    handlers = logging.getLogger("control-plane").handlers
    assert len(handlers) == 1  # Chalice's plain handler would be a second one: each line twice
    # the handler's own stream, not capsys: the Logger may have been built (and taken the
    # sys.stdout of that moment) by an earlier test
    out = io.StringIO()
    previous = handlers[0].setStream(out)
    try:
        logger.info("printed once", extra={"probe": 1})
        app_module.app.log.error("the app's own log, once")
    finally:
        handlers[0].setStream(previous)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["printed once", "the app's own log, once"]


def test_a_500_logs_one_json_line_with_the_trace_id_and_answers_no_stack_trace(app_module, http, org, monkeypatch):
    """The pipeline's 500 path (core/api.py) writes through the one Powertools set-up: one JSON
    line naming the request's trace, the traceback in the log only."""
    from chalicelib.core import observability
    from chalicelib.orgs import store

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "list_keys", boom)
    observability._logger()
    handler = logging.getLogger("chalicelib").handlers[0]
    assert handler is logging.getLogger("control-plane").handlers[0]  # one handler, one format
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        r = http.get("/keys", org["adminKey"], headers={"X-Trace-Id": "trace-of-the-500"})
    finally:
        handler.setStream(previous)
    assert r.status == 500 and r.json == {"error": {"code": "INTERNAL", "message": "internal error"}}
    assert "secret internals" not in json.dumps(r.json) and "Traceback" not in json.dumps(r.json)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1, lines
    assert errors[0]["trace_id"] == "trace-of-the-500" and errors[0]["message"] == "unhandled error in GET /keys"
    assert "secret internals" in errors[0]["exception"]  # the cause is in the log, for the operator


def test_secrets_in_a_log_line_are_redacted_where_the_line_leaves(app_module):
    """A tenant's secret that reaches a log line (an error message, a traceback, a logged field) is
    redacted by the one formatter every line goes through, with the ops scan's shapes."""
    from chalicelib.core import observability

    logger = observability._logger()
    handler = logging.getLogger("chalicelib").handlers[0]
    out = io.StringIO()
    previous = handler.setStream(out)
    aws_key, github = "AKIA" + "ABCDEFGHIJKLMNOP", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    api_key = "cpk.01KEY000000000000000000000." + "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t"
    try:
        logging.getLogger("chalicelib.somewhere").error("job failed: key %s", aws_key,
                                                        extra={"detail": f"password={github}"})
        try:
            raise RuntimeError(f"upstream said Authorization: Bearer {api_key}")
        except RuntimeError:
            logger.exception("unhandled")
    finally:
        handler.setStream(previous)
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0]["message"].startswith("job failed: key [redacted:")
    for secret in (aws_key, github, api_key.rsplit(".", 1)[1]):
        assert secret not in text
    assert "cpk.01KEY000000000000000000000." in text or "[redacted:" in lines[1]["exception"]
