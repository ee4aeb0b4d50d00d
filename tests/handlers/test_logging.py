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
