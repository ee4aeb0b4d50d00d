"""The pure fleet_config package: the document's validation, the merge rule, the diff, the JSON Schema."""
from __future__ import annotations

import jsonschema
import pytest

import fleet_config
from fleet_config import ConfigError, diff, merge, parse

TAIL = {"name": "syslog", "type": "tail", "table": "logs", "path": "/var/log/*.log", "multilineStart": r"^\d{4}-",
        "maxLineBytes": 65536}
EXEC = {"name": "df", "type": "exec", "table": "disk", "command": ["df", "-k"], "intervalSeconds": 60,
        "timeoutSeconds": 5}
PROM = {"name": "node", "type": "prometheus", "table": "metrics", "url": "http://127.0.0.1:9100/metrics",
        "intervalSeconds": 15}
FULL = {"logLevel": "DEBUG", "uplink": {"batchRecords": 200, "lingerMs": 250},
        "buffer": {"maxDbMb": 256, "onFull": "drop-oldest"}, "adapters": [TAIL, EXEC, PROM]}


def problems(raw):
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return dict(caught.value.problems)


def test_a_full_document_round_trips():
    doc = parse(FULL).document()
    assert doc["adapters"][0] == TAIL
    assert doc["uplink"] == {"batchRecords": 200, "lingerMs": 250}
    assert parse(doc).document() == doc


def test_unknown_keys_are_refused_at_every_level_and_named():
    found = problems({"logLevel": "INFO", "colour": "red", "uplink": {"batchRecords": 1, "lingerMs": 0, "x": 1},
                      "adapters": [{**TAIL, "follow": True}]})
    assert set(found) == {"colour", "uplink.x", "adapters.0.follow"}


def test_snake_case_spellings_are_unknown_keys_in_a_document():
    assert "log_level" in problems({"log_level": "INFO"})


@pytest.mark.parametrize("raw, field", [
    ({"logLevel": "TRACE"}, "logLevel"),
    ({"uplink": {"batchRecords": 501, "lingerMs": 0}}, "uplink.batchRecords"),
    ({"uplink": {"batchRecords": "5", "lingerMs": 0}}, "uplink.batchRecords"),
    ({"uplink": {"batchRecords": 5}}, "uplink.lingerMs"),
    ({"buffer": {"maxDbMb": 0, "onFull": "refuse"}}, "buffer.maxDbMb"),
    ({"buffer": {"maxDbMb": 1, "onFull": "drop-newest"}}, "buffer.onFull"),
    ({"adapters": [{**TAIL, "multilineStart": "("}]}, "adapters.0.multilineStart"),
    ({"adapters": [{**TAIL, "path": ""}]}, "adapters.0.path"),
    ({"adapters": [{**TAIL, "path": "a\x00b"}]}, "adapters.0.path"),
    ({"adapters": [TAIL, {**EXEC, "command": []}]}, "adapters.1.command"),
    ({"adapters": [{**EXEC, "timeoutSeconds": 0}]}, "adapters.0.timeoutSeconds"),
    ({"adapters": [{**PROM, "url": "file:///etc/passwd"}]}, "adapters.0.url"),
    ({"adapters": [{**PROM, "intervalSeconds": 0}]}, "adapters.0.intervalSeconds"),
    ({"adapters": [{**TAIL, "type": "syslog"}]}, "adapters.0"),
    ({"adapters": [{"name": "x", "table": "t"}]}, "adapters.0"),
    ({"adapters": [{**TAIL, "name": "bad name"}]}, "adapters.0.name"),
    ({"adapters": [{**TAIL, "table": "9x"}]}, "adapters.0.table"),
    ({"adapters": [TAIL, {**EXEC, "name": "syslog"}]}, "adapters"),
    ({"adapters": [{"name": "x", "remove": False}]}, "adapters.0.remove"),
])
def test_invalid_values_name_their_field(raw, field):
    assert field in problems(raw)


def test_a_document_that_is_not_an_object():
    assert problems(["logLevel"]) == {"document": "must be a JSON object"}


def test_merge_pools_in_order_then_the_agent():
    first = {"logLevel": "INFO", "uplink": {"batchRecords": 100, "lingerMs": 100}, "adapters": [TAIL, EXEC]}
    second = {"logLevel": "WARN", "adapters": [{**EXEC, "intervalSeconds": 30}, PROM]}
    agent = {"uplink": {"batchRecords": 5, "lingerMs": 0}}
    merged = merge([first, second, agent])
    assert merged["logLevel"] == "WARN"                      # the later pool wins
    assert merged["uplink"] == {"batchRecords": 5, "lingerMs": 0}   # the agent wins, object whole
    assert [a["name"] for a in merged["adapters"]] == ["syslog", "df", "node"]  # replaced in place
    assert merged["adapters"][1]["intervalSeconds"] == 30
    assert merge([second, first, agent])["logLevel"] == "INFO"
    parse(merged)  # a merged document is a valid document


def test_merge_replaces_objects_whole_not_field_by_field():
    merged = merge([{"buffer": {"maxDbMb": 100, "onFull": "refuse"}}, {"buffer": {"maxDbMb": 5, "onFull": "drop-oldest"}}])
    assert merged == {"buffer": {"maxDbMb": 5, "onFull": "drop-oldest"}}


def test_null_removes_and_removal_entries_drop_adapters():
    pool = {"logLevel": "DEBUG", "buffer": {"maxDbMb": 100, "onFull": "refuse"}, "adapters": [TAIL, EXEC, PROM]}
    agent = parse({"logLevel": None, "adapters": [{"name": "df", "remove": True}, {"name": "absent", "remove": True}]})
    merged = merge([pool, agent.document()])
    assert "logLevel" not in merged
    assert [a["name"] for a in merged["adapters"]] == ["syslog", "node"]
    rest = {"logLevel": "DEBUG", "buffer": pool["buffer"]}
    assert merge([pool, {"adapters": None}]) == rest
    assert merge([pool, {"adapters": [{"name": n, "remove": True} for n in ("syslog", "df", "node")]}]) == rest
    # a removed adapter can come back from a later layer, appended
    assert [a["name"] for a in merge([pool, {"adapters": None}, {"adapters": [EXEC]}])["adapters"]] == ["df"]


def test_merge_of_nothing_is_the_empty_document():
    assert merge([]) == {} and merge([None, {}, None]) == {}


def test_merge_does_not_alias_its_inputs():
    pool = {"adapters": [dict(TAIL)]}
    merged = merge([pool])
    merged["adapters"][0]["path"] = "/changed"
    assert pool["adapters"][0]["path"] == TAIL["path"]


def test_diff_is_a_merge_patch():
    applied = {"logLevel": "INFO", "uplink": {"batchRecords": 100, "lingerMs": 100}, "adapters": [TAIL]}
    desired = {"uplink": {"batchRecords": 100, "lingerMs": 5}, "adapters": [TAIL, EXEC]}
    assert diff(applied, desired) == {"logLevel": None, "uplink": {"lingerMs": 5}, "adapters": [TAIL, EXEC]}
    assert diff(desired, desired) == {}
    assert diff(None, desired) == desired


def test_the_json_schema_agrees_with_the_models():
    schema = fleet_config.json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for good in (FULL, {}, {"logLevel": None}, {"adapters": [{"name": "x", "remove": True}]}):
        parse(good)
        assert not list(validator.iter_errors(good))
    for bad in ({"colour": 1}, {"logLevel": "TRACE"}, {"uplink": {"batchRecords": 5}},
                {"adapters": [{**TAIL, "follow": True}]}, {"adapters": [{**EXEC, "command": []}]},
                {"adapters": [{"name": "x", "table": "t"}]}, {"buffer": {"maxDbMb": 1, "onFull": "x"}}):
        with pytest.raises(ConfigError):
            parse(bad)
        assert list(validator.iter_errors(bad)), bad


def test_a_document_is_bounded_in_size():
    from fleet_config.document import MAX_DOCUMENT_BYTES

    big = {"adapters": [{**EXEC, "name": f"x{i}", "command": ["echo", "y" * 400]} for i in range(40)]}
    found = problems(big)
    assert "document" in found and str(MAX_DOCUMENT_BYTES) in found["document"]
