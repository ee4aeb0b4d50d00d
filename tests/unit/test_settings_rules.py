"""Pure settings rules: constraint checks by type, value checks, the INI parser."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.settings_registry import ini, rules

ARK = Path(__file__).resolve().parent.parent / "fixtures" / "ark"


def entry(value_type, constraints=None, default=None):
    e = {"gameType": "g", "fileType": "f", "section": "S", "key": "K", "valueType": value_type}
    if constraints is not None:
        e["constraints"] = constraints
    if default is not None:
        e["default"] = default
    return e


@pytest.mark.parametrize("value_type, constraints, default, fields", [
    ("int", {"min": 0, "max": 10}, 5, []),
    ("int", {"min": 0.5}, None, ["constraints.min"]),
    ("int", {"min": 2.0}, None, []),
    ("int", {"enum": [1, 2, 2.5]}, None, ["constraints.enum.2"]),
    ("int", {"pattern": "x"}, None, ["constraints.pattern"]),
    ("float", {"min": 1, "max": 0.5}, None, ["constraints.min"]),
    ("float", {"min": 0, "max": 1}, 2.0, ["default"]),
    ("float", {"enum": ["a"]}, None, ["constraints.enum.0"]),
    ("bool", {}, True, []),
    ("bool", {"min": 0, "enum": ["x"]}, None, ["constraints.enum", "constraints.min"]),
    ("bool", None, "yes", ["default"]),
    ("string", {"min": 1, "max": 3, "pattern": "[a-z]+"}, "abc", []),
    ("string", {"min": 1, "max": 3}, "abcd", ["default"]),
    ("string", {"pattern": "[a-z]+"}, "ABC", ["default"]),
    ("string", {"min": -1, "max": 1.5}, None, ["constraints.min", "constraints.max"]),
    ("string", {"pattern": "(("}, None, ["constraints.pattern"]),
    ("string", {"enum": ["a"]}, None, ["constraints.enum"]),
    ("enum", {"enum": ["Low", "High"]}, "high", []),
    ("enum", None, None, ["constraints.enum"]),
    ("enum", {"enum": ["Low", "LOW"]}, None, ["constraints.enum.1"]),
    ("enum", {"enum": ["Low", 3]}, None, ["constraints.enum.1"]),
    ("enum", {"enum": ["Low"], "min": 1}, None, ["constraints.min"]),
    ("enum", {"enum": ["Low"]}, "Mid", ["default"]),
    # past a double's range (float(10**400) overflows) or DynamoDB's (1E126): a problem, never OverflowError
    ("int", {"min": 10 ** 400}, None, ["constraints.min"]),
    ("float", {"max": -10 ** 400}, None, ["constraints.max"]),
    ("int", {"enum": [1, 10 ** 126]}, None, ["constraints.enum.1"]),
    ("string", {"max": 10 ** 400}, None, ["constraints.max"]),
    ("int", {"min": 0}, 10 ** 400, ["default"]),
    ("int", {"min": -(10 ** 125), "max": 10 ** 125}, 10 ** 125 - 1, []),
])
def test_constraints_are_checked_by_type(value_type, constraints, default, fields):
    assert [f for f, _ in rules.check_entry(entry(value_type, constraints, default))] == fields


@pytest.mark.parametrize("value_type, constraints, value, ok", [
    ("int", {}, "42", True), ("int", {}, " -7 ", True), ("int", {}, "4.0", False), ("int", {}, "0x10", False),
    ("int", {}, 3, True), ("int", {}, 3.0, True), ("int", {}, 3.5, False), ("int", {}, True, False),
    ("int", {"min": 1, "max": 5}, "0", False), ("int", {"min": 1, "max": 5}, "5", True),
    ("int", {"enum": [1, 3]}, "2", False), ("int", {"enum": [1, 3]}, "3", True),
    ("float", {}, "1.000000", True), ("float", {}, ".5", True), ("float", {}, "1e3", True), ("float", {}, "1,5", False),
    ("float", {}, "nan", False), ("float", {}, "inf", False), ("float", {}, 2, True), ("float", {}, False, False),
    ("float", {"min": 0, "max": 1}, "1.0000001", False),
    ("bool", {}, "True", True), ("bool", {}, "FALSE", True), ("bool", {}, "true", True), ("bool", {}, "Ture", False),
    ("bool", {}, "1", False), ("bool", {}, True, True), ("bool", {}, 1, False),
    ("string", {}, "", True), ("string", {}, 7777, True), ("string", {"min": 1}, "", False),
    ("string", {"pattern": r"\d+"}, "12a", False), ("string", {"pattern": r"\d+"}, "12", True),
    ("enum", {"enum": ["Low", "High"]}, "HIGH", True), ("enum", {"enum": ["Low", "High"]}, "Mid", False),
    ("int", {}, None, False), ("int", {}, {"a": 1}, False), ("string", {}, [1], False),
    ("int", {}, "1" + "0" * 126, False), ("int", {}, "9" * 5000, False), ("int", {}, 10 ** 400, False),
    ("float", {}, "1" + "0" * 400, False), ("float", {}, "-1e126", False), ("float", {}, 10 ** 400, False),
    ("int", {"min": 0}, str(10 ** 125), True), ("float", {"max": 10 ** 125}, "1e125", True),
])
def test_values(value_type, constraints, value, ok):
    assert (rules.check_value(entry(value_type, constraints), value) is None) is ok


def test_ini_parser_reads_what_game_servers_write():
    text = "\ufeff; comment\r\n# another\r\n// and another\r\n\r\n[/Script/ShooterGame.ShooterGameMode]\r\n" \
           "  MaxPlayers = 70  \r\nSessionName=\"Quoted name\"\r\nValue=a=b;c\r\n+ArrayKey=1\r\nArrayKey=2\r\n" \
           "Stats[3]=1.5\r\nno equals here\r\n[Broken\r\norphan=1\r\n[Next]\r\nEmpty=\r\n=novalue\r\n"
    settings, problems = ini.parse(text)
    assert [(s.line, s.section, s.key, s.value) for s in settings] == [
        (6, "/Script/ShooterGame.ShooterGameMode", "MaxPlayers", "70"),
        (7, "/Script/ShooterGame.ShooterGameMode", "SessionName", "Quoted name"),
        (8, "/Script/ShooterGame.ShooterGameMode", "Value", "a=b;c"),
        (9, "/Script/ShooterGame.ShooterGameMode", "ArrayKey", "1"),
        (10, "/Script/ShooterGame.ShooterGameMode", "ArrayKey", "2"),
        (11, "/Script/ShooterGame.ShooterGameMode", "Stats[3]", "1.5"),
        (16, "Next", "Empty", ""),
    ]
    assert [(p.line, p.section, p.key) for p in problems] == [
        (12, "/Script/ShooterGame.ShooterGameMode", "no equals here"),
        (13, "/Script/ShooterGame.ShooterGameMode", ""),
        (14, "", "orphan"),
        (17, "Next", "=novalue"),
    ]


def test_lookup_is_case_insensitive_and_understands_indexed_keys():
    reg = rules.index([{**entry("float"), "section": "/Script/ShooterGame.ShooterGameMode", "key": "PerLevel"},
                       {**entry("int"), "section": "/Script/ShooterGame.ShooterGameMode", "key": "Exact[2]"}])
    section = "/script/shootergame.shootergamemode"
    assert rules.lookup(reg, section, "perlevel")["key"] == "PerLevel"
    assert rules.lookup(reg, section, "PerLevel[11]")["key"] == "PerLevel"
    assert rules.lookup(reg, section, "Exact[2]")["key"] == "Exact[2]"
    assert rules.lookup(reg, section, "Exact[3]") is None
    assert rules.lookup(reg, "other", "PerLevel") is None


def test_validate_reports_by_section_and_key_in_line_order():
    reg = rules.index([{**entry("int", {"min": 0}), "section": "S", "key": "Count"},
                       {**entry("bool"), "section": "S", "key": "On"}])
    settings, problems = ini.parse("[s]\ncount=1\nCOUNT=-1\nOn=Yes\nbad line\nOff=1\noff=2\n")
    report = rules.validate_ini(reg, settings, problems)
    assert report["valid"] is False and report["checked"] == 3
    assert [(e["section"], e["key"], e["line"]) for e in report["errors"]] == [
        ("s", "COUNT", 3), ("s", "On", 4), ("s", "bad line", 5)]
    assert report["unknownKeys"] == [{"section": "s", "key": "Off", "line": 6}]  # reported once


def test_the_ark_registry_seed_is_itself_valid():
    entries = json.loads((ARK / "registry.json").read_text())["entries"]
    assert len(entries) > 80
    assert all(rules.check_entry(e) == [] for e in entries)
    assert len({rules.identity(e) for e in entries}) == len(entries)
