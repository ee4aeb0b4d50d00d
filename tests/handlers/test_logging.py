"""The control plane's log lines print once: the Chalice app and the Powertools Logger share the
"control-plane" logger, and only the Powertools handler writes to it."""
import json
import logging


def test_a_log_line_prints_once_as_json(app_module, capsys):
    from chalicelib.core import observability

    observability._logger().info("printed once", extra={"probe": 1})
    app_module.app.log.error("the app's own log, once")
    lines = [line for line in capsys.readouterr().out.splitlines() if "once" in line]
    assert [json.loads(line)["message"] for line in lines] == ["printed once", "the app's own log, once"]
    assert len(logging.getLogger("control-plane").handlers) == 1
