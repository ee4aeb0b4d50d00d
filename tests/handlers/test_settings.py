"""The settings registry over HTTP: upsert, index look-ups, delete, validate (ARK: Survival Ascended)."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.handlers.test_instances import agent_key, operator_key

ARK = Path(__file__).resolve().parent.parent / "fixtures" / "ark"
REGISTRY = json.loads((ARK / "registry.json").read_text())["entries"]
GUS, GI = "GameUserSettings.ini", "Game.ini"
GAME_MODE = "/script/shootergame.shootergamemode"


def entry(**kw):
    return {"gameType": "ark-sa", "fileType": GUS, "section": "ServerSettings", "key": "XPMultiplier",
            "valueType": "float", **kw}


def registry(http, auth, **params):
    return http.get("/settings/registry?" + urlencode({k: v for k, v in params.items() if v is not None}), auth)


@pytest.fixture
def seeded(http, org):
    admin = org["adminKey"]
    for start in range(0, len(REGISTRY), 40):
        r = http.put("/settings/registry", admin, {"entries": REGISTRY[start:start + 40]})
        assert r.status == 200, r.json
    return org


def test_upsert_one_answers_the_entry_and_overwrites(http, org):
    admin = org["adminKey"]
    r = http.put("/settings/registry", admin, entry(default=1.0, constraints={"min": 0, "max": 1000},
                                                    description="XP gain"))
    assert r.status == 200, r.json
    assert {k: r.json[k] for k in ("gameType", "fileType", "section", "key", "valueType", "default")} == \
        {"gameType": "ark-sa", "fileType": GUS, "section": "ServerSettings", "key": "XPMultiplier",
         "valueType": "float", "default": 1.0}
    assert r.json["constraints"] == {"min": 0, "max": 1000} and r.json["updatedAt"].endswith("Z")
    # same identity, other case: an upsert, not a second entry
    again = http.put("/settings/registry", admin, entry(section="serversettings", key="xpmultiplier",
                                                        constraints={"max": 10}))
    assert again.status == 200
    items = registry(http, admin, gameType="ark-sa", fileType=GUS)["json"] if False else \
        registry(http, admin, gameType="ark-sa", fileType=GUS).json["items"]
    assert len(items) == 1 and items[0]["key"] == "xpmultiplier" and items[0]["constraints"] == {"max": 10}
    assert "default" not in items[0]


def test_upsert_many_answers_in_the_same_form(http, org):
    r = http.put("/settings/registry", org["adminKey"], {"entries": REGISTRY[:3]})
    assert r.status == 200
    assert [e["key"] for e in r.json["entries"]] == [e["key"] for e in REGISTRY[:3]]


@pytest.mark.parametrize("body, field", [
    (entry(valueType="int", constraints={"min": 0.5}), "constraints.min"),
    (entry(valueType="int", constraints={"pattern": "x"}), "constraints.pattern"),
    (entry(valueType="float", constraints={"min": 5, "max": 1}), "constraints.min"),
    (entry(valueType="bool", constraints={"min": 0}), "constraints.min"),
    (entry(valueType="enum"), "constraints.enum"),
    (entry(valueType="enum", constraints={"enum": ["a", "A"]}), "constraints.enum.1"),
    (entry(valueType="string", constraints={"pattern": "(unclosed"}), "constraints.pattern"),
    (entry(valueType="string", constraints={"min": -1}), "constraints.min"),
    (entry(valueType="float", default="lots"), "default"),
    (entry(valueType="int", default=7, constraints={"max": 5}), "default"),
    (entry(valueType="number"), "valueType"),
    (entry(key="a=b"), "key"),
    (entry(section="[x]"), "section"),
    (entry(constraints={"min": True}), "constraints.min"),
    ({"entries": [entry(), entry(valueType="int", constraints={"max": 1.5})]}, "entries.1.constraints.max"),
    ({"entries": [entry(), entry(key=" xpMULTIPLIER ")]}, "entries.1"),
    ({"entries": []}, "entries"),
    ({"entries": [entry()] * 501}, "entries"),
])
def test_upsert_rejects_bad_entries_naming_the_field(http, org, body, field):
    r = http.put("/settings/registry", org["adminKey"], body)
    assert r.status == 400, r.json
    assert field in [d["field"] for d in r.json["error"]["details"]], r.json
    assert registry(http, org["adminKey"]).json["items"] == []  # nothing written


def test_scopes(http, org):
    ops, agent = operator_key(http, org), agent_key(http, org, "agent-a")
    for key in (ops, agent):
        assert http.put("/settings/registry", key, entry()).status == 403
    assert http.put("/settings/registry", org["adminKey"], entry()).status == 200
    for key in (ops, agent):
        assert registry(http, key, gameType="ark-sa", fileType=GUS).status == 200
        assert http.post("/settings/validate", key, {"gameType": "ark-sa", "fileType": GUS,
                                                     "values": {}}).status == 200
        r = http.delete("/settings/registry?" + urlencode({"gameType": "ark-sa", "fileType": GUS,
                                                           "section": "ServerSettings", "key": "XPMultiplier"}), key)
        assert r.status == 403


def test_lookups_by_file_and_by_key_are_index_queries(http, seeded):
    admin = seeded["adminKey"]
    gus = registry(http, admin, gameType="ark-sa", fileType=GUS, limit=1000).json
    assert len(gus["items"]) == sum(1 for e in REGISTRY if e["fileType"] == GUS) and gus["nextToken"] is None
    assert all(i["fileType"] == GUS for i in gus["items"])
    section = registry(http, admin, gameType="ARK-SA", fileType="gameusersettings.ini", section="sessionsettings").json
    assert sorted(i["key"] for i in section["items"]) == ["MultiHome", "Port", "QueryPort", "SessionName"]
    one = registry(http, admin, section="/Script/ShooterGame.ShooterGameMode", key="bAllowUnlimitedRespecs").json
    assert [(i["fileType"], i["key"]) for i in one["items"]] == [(GI, "bAllowUnlimitedRespecs")]
    exact = registry(http, admin, gameType="ark-sa", fileType=GUS, section="ServerSettings", key="RCONPort").json
    assert [i["key"] for i in exact["items"]] == ["RCONPort"] and exact["items"][0]["constraints"]["max"] == 65535
    by_key_only = registry(http, admin, key="maxplayers").json
    assert [i["section"] for i in by_key_only["items"]] == ["/Script/Engine.GameSession"]
    assert len(registry(http, admin, gameType="ark-sa", limit=1000).json["items"]) == len(REGISTRY)
    assert registry(http, admin, gameType="other-game").json["items"] == []


def test_lookup_queries_read_no_more_than_they_return(http, seeded):
    from chalicelib.aws import clients

    reads: list[tuple[str | None, int, int]] = []

    def meter(params, **kw):
        pass

    def after(parsed, model, **kw):
        reads.append((parsed.get("ScannedCount"), parsed.get("Count")))

    events = clients.client("dynamodb").meta.events
    events.register("after-call.dynamodb.Query", after)
    try:
        for params in [{"gameType": "ark-sa", "fileType": GUS}, {"section": "SessionSettings", "key": "Port"},
                       {"gameType": "ark-sa", "fileType": GUS, "section": "SessionSettings"}]:
            reads.clear()
            r = registry(http, seeded["adminKey"], **params)
            assert r.status == 200
            assert reads == [(len(r.json["items"]), len(r.json["items"]))], (params, reads)
    finally:
        events.unregister("after-call.dynamodb.Query", after)


def test_pages_with_next_token(http, seeded):
    admin = seeded["adminKey"]
    seen, token = [], None
    while True:
        params = {"gameType": "ark-sa", "fileType": GI, "limit": 7, **({"nextToken": token} if token else {})}
        page = registry(http, admin, **params).json
        seen += [i["key"] for i in page["items"]]
        token = page["nextToken"]
        if not token:
            break
    assert sorted(seen) == sorted(e["key"] for e in REGISTRY if e["fileType"] == GI) and len(seen) == len(set(seen))
    # a filtered listing pages too (key alone is not an index: filtered, documented)
    first = registry(http, admin, section="ServerSettings", limit=5).json
    assert len(first["items"]) == 5 and first["nextToken"]
    rest = registry(http, admin, section="ServerSettings", limit=1000, nextToken=first["nextToken"]).json
    all_keys = [i["key"] for i in first["items"] + rest["items"]]
    assert len(all_keys) == len(set(all_keys)) == sum(1 for e in REGISTRY if e["section"] == "ServerSettings")
    assert registry(http, admin, gameType="ark-sa", fileType=GUS, nextToken=first["nextToken"]).status == 400


def test_delete(http, seeded):
    admin = seeded["adminKey"]
    q = {"gameType": "ark-sa", "fileType": GUS, "section": "SERVERSETTINGS", "key": "rconport"}
    assert http.delete("/settings/registry?" + urlencode(q), admin).status == 204
    assert registry(http, admin, section="ServerSettings", key="RCONPort").json["items"] == []
    r = http.delete("/settings/registry?" + urlencode(q), admin)
    assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND"
    r = http.delete("/settings/registry?" + urlencode({"gameType": "ark-sa", "fileType": GUS}), admin)
    assert r.status == 400 and {d["field"] for d in r.json["error"]["details"]} == {"section", "key"}


def test_registries_are_per_org(http, seeded, root):
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    assert registry(http, other["adminKey"], gameType="ark-sa", fileType=GUS).json["items"] == []
    q = {"gameType": "ark-sa", "fileType": GUS, "section": "ServerSettings", "key": "RCONPort"}
    assert http.delete("/settings/registry?" + urlencode(q), other["adminKey"]).status == 404
    r = http.post("/settings/validate", other["adminKey"],
                  {"gameType": "ark-sa", "fileType": GUS, "values": {"ServerSettings": {"RCONPort": 99999}}})
    assert r.json["valid"] is True and r.json["unknownKeys"] == [{"section": "ServerSettings", "key": "RCONPort"}]


def validate(http, key, file_type, name):
    r = http.post("/settings/validate", key, {"gameType": "ark-sa", "fileType": file_type,
                                              "content": (ARK / name).read_text(encoding="utf-8")})
    assert r.status == 200, r.json
    return r.json


def test_realistic_ark_files_validate_clean(http, seeded):
    agent = agent_key(http, seeded, "agent-a")
    for file_type, name in [(GUS, "GameUserSettings.ini"), (GI, "Game.ini")]:
        report = validate(http, agent, file_type, name)
        assert report == {"valid": True, "errors": [], "unknownKeys": [], "checked": report["checked"]}
        assert report["checked"] > 40


def test_game_user_settings_with_bad_values_and_unknown_keys(http, seeded):
    report = validate(http, seeded["adminKey"], GUS, "GameUserSettings.bad.ini")
    assert report["valid"] is False
    assert [(e["section"], e["key"], e["line"]) for e in report["errors"]] == [
        ("ServerSettings", "ServerAdminPassword", 8),
        ("ServerSettings", "RCONPort", 10),
        ("ServerSettings", "ServerPVE", 11),
        ("ServerSettings", "DifficultyOffset", 12),
        ("ServerSettings", "XPMultiplier", 14),
        ("ServerSettings", "ActiveMods", 17),
        ("ServerSettings", "this line lost its equals sign", 19),
        ("SessionSettings", "Port", 23),
        ("/Script/Engine.GameSession", "MaxPlayers", 27),
        ("MessageOfTheDay", "Duration", 34),
    ]
    messages = {e["key"]: e["message"] for e in report["errors"]}
    assert messages["RCONPort"] == "line 10: 99999 is above the maximum 65535"
    assert messages["ServerPVE"] == "line 11: expected True or False, got 'Ture'"
    assert messages["DifficultyOffset"] == "line 12: 1.500000 is above the maximum 1"
    assert messages["XPMultiplier"] == "line 14: -2 is below the minimum 0"
    assert messages["MaxPlayers"] == "line 27: expected an integer, got '70.5'"
    assert report["unknownKeys"] == [
        {"section": "ServerSettings", "key": "TamingSpeedMultiplyer", "line": 15},
        {"section": "ServerSetings", "key": "AllowThirdPersonPlayer", "line": 30},
    ]


def test_game_ini_with_lowercase_section_repeated_and_indexed_keys(http, seeded):
    report = validate(http, seeded["adminKey"], GI, "Game.bad.ini")
    assert report["valid"] is False
    assert [(e["section"], e["key"], e["line"]) for e in report["errors"]] == [
        (GAME_MODE, "bAllowUnlimitedRespecs", 3),
        (GAME_MODE, "MaxNumberOfPlayersInTribe", 4),
        (GAME_MODE, "SupplyCrateLootQualityMultiplier", 7),
        (GAME_MODE, "OverridePlayerLevelEngramPoints", 9),     # the second of three repeats
        (GAME_MODE, "PerLevelStatsMultiplier_Player[1]", 12),  # checked as PerLevelStatsMultiplier_Player
        (GAME_MODE, "ConfigOverrideItemMaxQuantity", 14),
    ]
    assert [(u["section"], u["key"]) for u in report["unknownKeys"]] == [
        (GAME_MODE, "EggHatchSpeedMultipler"), (GAME_MODE, "bShowFloatingDamageText")]


def test_validate_values(http, seeded):
    r = http.post("/settings/validate", seeded["adminKey"], {"game_type": "ark-sa", "file_type": GUS, "values": {
        "serversettings": {"ServerPVE": True, "XPMultiplier": 2, "RCONPort": "27020", "MaxTamedDinos": 1.5,
                           "AllowThirdPersonPlayer": "false", "DifficultyOffset": None,
                           "ServerHardcore": "Ture", "NoSuchKey": 1},
        "/Script/Engine.GameSession": {"MaxPlayers": [70, 300]},
        "SessionSettings": {"SessionName": {"nested": True}}}})
    assert r.status == 200, r.json
    assert [(e["section"], e["key"], e["message"]) for e in r.json["errors"]] == [
        ("serversettings", "MaxTamedDinos", "expected an integer, got 1.5"),
        ("serversettings", "DifficultyOffset", "has no value"),
        ("serversettings", "ServerHardcore", "expected True or False, got 'Ture'"),
        ("/Script/Engine.GameSession", "MaxPlayers", "300 is above the maximum 255"),
        ("SessionSettings", "SessionName", "expected a single string value, got dict"),
    ]
    assert r.json["unknownKeys"] == [{"section": "serversettings", "key": "NoSuchKey"}]
    assert r.json["valid"] is False


@pytest.mark.parametrize("body", [
    {"gameType": "ark-sa", "fileType": GUS},
    {"gameType": "ark-sa", "fileType": GUS, "content": "", "values": {}},
    {"gameType": "ark-sa", "content": "[a]\nb=c"},
    {"gameType": "ark-sa", "fileType": GUS, "values": {"ServerSettings": 5}},
])
def test_validate_rejects_malformed_requests(http, org, body):
    assert http.post("/settings/validate", org["adminKey"], body).status == 400


# --- numbers past what a double (or DynamoDB) holds: 400 naming the field, never a 500 (issue 18, finding 8)

HUGE = "1" + "0" * 400  # one significant digit, so only its magnitude can refuse it; float() overflows
BIG = "1" + "0" * 200   # fits a double, but not DynamoDB's number range (magnitude below 1E126)


def _raw_entry(value_type: str, extra: str) -> bytes:
    return ('{"gameType": "ark-sa", "fileType": "%s", "section": "ServerSettings", "key": "XPMultiplier", '
            '"valueType": "%s", %s}' % (GUS, value_type, extra)).encode()


@pytest.mark.parametrize("raw, field", [
    (_raw_entry("int", f'"default": {HUGE}'), "default"),
    (_raw_entry("float", f'"default": -{HUGE}'), "default"),
    (_raw_entry("int", f'"constraints": {{"min": {HUGE}}}'), "constraints.min"),
    (_raw_entry("float", f'"constraints": {{"max": {HUGE}}}'), "constraints.max"),
    (_raw_entry("int", f'"constraints": {{"enum": [1, {HUGE}]}}'), "constraints.enum.1"),
    (_raw_entry("float", f'"constraints": {{"min": {BIG}}}'), "constraints.min"),
    (_raw_entry("string", f'"constraints": {{"max": {HUGE}}}'), "constraints.max"),
    (('{"entries": [%s, %s]}' % (_raw_entry("int", '"default": 1').decode(),
                                 _raw_entry("int", f'"key": "Other", "default": {HUGE}').decode())).encode(),
     "entries.1.default"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 40 else "")
def test_upsert_refuses_numbers_too_large_to_hold_naming_the_field(http, org, raw, field):
    r = http.put("/settings/registry", org["adminKey"], raw_body=raw)
    assert r.status == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in r.json["error"]["details"]], r.json
    assert registry(http, org["adminKey"]).json["items"] == []


def test_largest_storable_integers_round_trip_exactly(http, org):
    admin = org["adminKey"]
    top = 10 ** 125 + 1  # 126 digits: more than 38 significant, so refused; the largest 38-digit ones pass
    assert http.put("/settings/registry", admin, entry(valueType="int", default=top)).status == 400
    exact = int("9" * 38) * 10 ** 87  # 125 digits, 38 significant: beyond a double's 53 bits of precision
    r = http.put("/settings/registry", admin, entry(valueType="int", constraints={"min": -exact, "max": exact},
                                                    default=exact - 10 ** 87))
    assert r.status == 200, r.json
    got = registry(http, admin, gameType="ark-sa", fileType=GUS).json["items"][0]
    assert got["constraints"] == {"min": -exact, "max": exact} and got["default"] == exact - 10 ** 87


def test_validate_refuses_too_large_values_naming_the_field(http, org):
    admin = org["adminKey"]
    assert http.put("/settings/registry", admin, entry(constraints={"max": 10})).status == 200
    raw = ('{"gameType": "ark-sa", "fileType": "%s", "values": {"ServerSettings": {"XPMultiplier": %s}}}'
           % (GUS, HUGE)).encode()
    r = http.post("/settings/validate", admin, raw_body=raw)
    assert r.status == 400, r.json
    assert r.json["error"]["details"][0]["field"] == "values.ServerSettings.XPMultiplier"


def test_validate_reports_out_of_range_ini_numbers_as_invalid_values(http, org):
    admin = org["adminKey"]
    assert http.put("/settings/registry", admin, {"entries": [
        entry(), entry(key="MaxPlayers", valueType="int", constraints={"min": 1}),
        entry(key="Ratio", valueType="float", constraints={"enum": [0.5, 1]})]}).status == 200
    content = (f"[ServerSettings]\nXPMultiplier={HUGE}.5\nMaxPlayers={'9' * 5000}\n"
               f"Ratio=-{HUGE}\n")
    r = http.post("/settings/validate", admin, {"gameType": "ark-sa", "fileType": GUS, "content": content})
    assert r.status == 200, r.json
    assert [(e["key"], e["line"]) for e in r.json["errors"]] == [("XPMultiplier", 2), ("MaxPlayers", 3),
                                                                   ("Ratio", 4)]
    assert all("out of range" in e["message"] and len(e["message"]) < 200 for e in r.json["errors"]), r.json
