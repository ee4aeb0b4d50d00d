"""Organizations, keys and scopes through the Chalice test client on moto."""
from datetime import datetime, timedelta, timezone

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from tests.conftest import seed_agent


def audit_denials(org_id):
    page = dynamo.query(settings().main_table, "PK = :pk", {":pk": f"ORG#{org_id}#AUDIT"})
    return [i for i in page.items if i["action"] == "denied"]


def test_missing_and_unknown_keys_are_401_in_the_contract_shape(http, org):
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic abc"},
                    {"authorization": "Bearer cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.forged"}):
        r = http.call("GET", "/keys", headers=headers)
        assert r.status == 401, (headers, r.json)
        assert r.json["error"]["code"] == "UNAUTHORIZED"
        assert set(r.json["error"]) <= {"code", "message", "details"}


def test_scope_hierarchy_and_403(http, org):
    admin = org["adminKey"]
    operator = http.post("/keys", admin, {"name": "op", "scope": "operator"}).json["apiKey"]
    seed_agent(org["orgId"], "agent-1")
    agent = http.post("/keys", admin, {"name": "a", "scope": "agent", "agentId": "agent-1"}).json["apiKey"]
    assert http.get("/keys", operator).status == 403
    assert http.get("/keys", agent).json["error"]["code"] == "FORBIDDEN"
    assert http.get("/keys", admin).status == 200
    # a non-root admin cannot create organizations
    assert http.post("/orgs", admin, {"name": "x"}).status == 403
    denials = audit_denials(org["orgId"])
    assert len(denials) >= 3
    assert all(d["details"]["status"] == 403 for d in denials)


def test_revocation_is_immediate_and_idempotent(http, org):
    admin = org["adminKey"]
    created = http.post("/keys", admin, {"name": "temp", "scope": "admin"}).json
    assert http.get("/keys", created["apiKey"]).status == 200
    assert http.delete(f"/keys/{created['keyId']}", admin).status == 204
    r = http.get("/keys", created["apiKey"])
    assert r.status == 401 and "revoked" in r.json["error"]["message"]
    assert http.delete(f"/keys/{created['keyId']}", admin).status == 204
    listed = {k["keyId"]: k for k in http.get("/keys", admin).json["items"]}
    assert listed[created["keyId"]]["revokedAt"]
    assert "apiKey" not in listed[created["keyId"]] and "hash" not in listed[created["keyId"]]


def test_expired_key_is_401_and_past_expiry_is_400(http, org):
    admin = org["adminKey"]
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    r = http.post("/keys", admin, {"name": "x", "scope": "operator", "expiresAt": past})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "expiresAt"
    soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    key = http.post("/keys", admin, {"name": "x", "scope": "admin", "expires_at": soon}).json
    # make it expire now, as time would
    dynamo.update(dynamo.Update(settings().main_table, {"PK": f"KEY#{key['keyId']}", "SK": "KEY"},
                                set={"expiresAt": "2000-01-01T00:00:00.000Z"}))
    r = http.get("/keys", key["apiKey"])
    assert r.status == 401 and "expired" in r.json["error"]["message"]


def test_other_org_key_is_404_not_403(http, org, root):
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    theirs = http.post("/keys", other["adminKey"], {"name": "t", "scope": "operator"}).json
    r = http.delete(f"/keys/{theirs['keyId']}", org["adminKey"])
    assert r.status == 404 and r.json["error"]["code"] == "NOT_FOUND"
    assert http.delete("/keys/does-not-exist", org["adminKey"]).status == 404
    # and listing never crosses organizations
    mine = {k["keyId"] for k in http.get("/keys", org["adminKey"]).json["items"]}
    assert theirs["keyId"] not in mine


def test_agent_key_binding_rules(http, org):
    admin = org["adminKey"]
    r = http.post("/keys", admin, {"name": "a", "scope": "agent"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "agentId"
    r = http.post("/keys", admin, {"name": "a", "scope": "operator", "agentId": "x"})
    assert r.status == 400


def test_secrets_are_stored_only_as_keyed_hashes(http, org):
    created = http.post("/keys", org["adminKey"], {"name": "h", "scope": "operator"}).json
    item = dynamo.get(settings().main_table, {"PK": f"KEY#{created['keyId']}", "SK": "KEY"})
    secret = created["apiKey"].split(".")[2]
    assert secret not in str(item)
    assert len(item["hash"]) == 64


def test_admin_api_key_env_is_the_root_admin_key(app_module, http, monkeypatch):
    monkeypatch.setenv("ADMIN_API_KEY", "my-chosen-root-key")
    seeded = app_module.local_seed()
    assert seeded["adminApiKey"] == "my-chosen-root-key"
    assert http.post("/orgs", "my-chosen-root-key", {"name": "via env key"}).status == 201
    assert app_module.local_seed()["orgId"] == seeded["orgId"]  # seeding is repeatable


def test_key_list_paginates_with_signed_tokens(http, org):
    admin = org["adminKey"]
    for i in range(5):
        http.post("/keys", admin, {"name": f"k{i}", "scope": "operator"})
    seen, token = [], None
    while True:
        path = "/keys?limit=2" + (f"&nextToken={token}" if token else "")
        page = http.get(path, admin).json
        assert len(page["items"]) <= 2
        seen += [k["keyId"] for k in page["items"]]
        token = page["nextToken"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6
    r = http.get("/keys?nextToken=forged", admin)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "nextToken"
