"""Instances: create, list, get; ownership by agent; org isolation."""
from __future__ import annotations

from tests.conftest import seed_agent


def agent_key(http, org, agent_id: str) -> str:
    """An agent-scope key bound to `agent_id` (an agent item with that id is seeded)."""
    seed_agent(org["orgId"], agent_id)
    r = http.post("/keys", org["adminKey"], {"name": agent_id, "scope": "agent", "agentId": agent_id})
    assert r.status == 201, r.json
    return r.json["apiKey"]


def register_agent(http, org, name: str = "agent") -> dict:
    """A registered agent: {agentId, apiKey, ...} (POST /agents)."""
    r = http.post("/agents", org["adminKey"], {"name": name})
    assert r.status == 201, r.json
    return r.json


def operator_key(http, org) -> str:
    r = http.post("/keys", org["adminKey"], {"name": "ops", "scope": "operator"})
    assert r.status == 201, r.json
    return r.json["apiKey"]


def create(http, key, agent_id, **extra):
    r = http.post("/instances", key, {"agentId": agent_id, "name": f"server of {agent_id}", **extra})
    assert r.status == 201, r.json
    return r.json


def test_create_get_and_list(http, org):
    ops = operator_key(http, org)
    a, b = register_agent(http, org, "a")["agentId"], register_agent(http, org, "b")["agentId"]
    made = create(http, ops, a, gameType="ark-sa", metadata={"map": "Fjordur", "slots": 70, "x": None})
    assert made["agentId"] == a and made["gameType"] == "ark-sa"
    assert made["metadata"] == {"map": "Fjordur", "slots": 70, "x": None}
    assert len(made["instanceId"]) == 26 and made["createdAt"].endswith("Z")
    got = http.get(f"/instances/{made['instanceId']}", ops)
    assert got.status == 200 and got.json == made
    second = create(http, ops, b, game_type="ark-sa")  # snake_case accepted
    listed = http.get("/instances", ops)
    assert listed.status == 200
    assert [i["instanceId"] for i in listed.json["items"]] == [made["instanceId"], second["instanceId"]]
    assert listed.json["nextToken"] is None
    by_agent = http.get(f"/instances?agentId={b}", ops)
    assert [i["instanceId"] for i in by_agent.json["items"]] == [second["instanceId"]]


def test_list_pages_with_next_token(http, org):
    ops = operator_key(http, org)
    p = register_agent(http, org, "p")["agentId"]
    made = [create(http, ops, p)["instanceId"] for _ in range(5)]
    seen, token = [], None
    for _ in range(5):
        r = http.get("/instances?limit=2" + (f"&nextToken={token}" if token else ""), ops)
        assert r.status == 200, r.json
        seen += [i["instanceId"] for i in r.json["items"]]
        token = r.json["nextToken"]
        if not token:
            break
    assert seen == made
    other = http.get(f"/instances?agentId={p}&nextToken={token or 'x'}", ops)
    assert other.status == 400


def test_agent_key_sees_only_its_own_instances(http, org):
    ops = operator_key(http, org)
    a, b = register_agent(http, org, "a"), register_agent(http, org, "b")
    mine = create(http, ops, a["agentId"])
    theirs = create(http, ops, b["agentId"])
    key = a["apiKey"]
    assert http.get(f"/instances/{mine['instanceId']}", key).status == 200
    r = http.get(f"/instances/{theirs['instanceId']}", key)
    assert r.status == 403 and r.json["error"]["code"] == "FORBIDDEN"
    listed = http.get("/instances", key)
    assert [i["instanceId"] for i in listed.json["items"]] == [mine["instanceId"]]
    assert http.get(f"/instances?agentId={b['agentId']}", key).status == 403


def test_create_needs_operator_and_valid_body(http, org):
    agent = register_agent(http, org)
    assert http.post("/instances", agent["apiKey"], {"agentId": agent["agentId"], "name": "x"}).status == 403
    ops = operator_key(http, org)
    r = http.post("/instances", ops, {"name": "no agent"})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "agentId"
    r = http.post("/instances", ops, {"agentId": agent["agentId"], "name": "x", "metadata": {"big": "y" * 20000}})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "metadata"
    assert http.post("/instances", ops, {"agentId": agent["agentId"], "name": "x", "colour": "red"}).status == 400


def test_the_owning_agent_must_be_registered_active_and_in_the_org(http, org, root):
    ops = operator_key(http, org)
    for agent_id in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "agent-that-was-never-registered"):
        r = http.post("/instances", ops, {"agentId": agent_id, "name": "x"})
        assert r.status == 400 and r.json["error"]["details"][0]["field"] == "agentId", r.json
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    foreign = register_agent(http, other)["agentId"]
    assert http.post("/instances", ops, {"agentId": foreign, "name": "x"}).status == 400
    agent = register_agent(http, org)["agentId"]
    assert http.post(f"/agents/{agent}/deactivate", ops).status == 200
    assert http.post("/instances", ops, {"agentId": agent, "name": "x"}).status == 400
    assert http.get("/instances", ops).json["items"] == []


def test_unknown_and_other_org_instance_is_404(http, org, root):
    ops = operator_key(http, org)
    made = create(http, ops, register_agent(http, org)["agentId"])
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    assert http.get(f"/instances/{made['instanceId']}", other["adminKey"]).status == 404
    assert http.get("/instances", other["adminKey"]).json["items"] == []
    assert http.get("/instances/01ARZ3NDEKTSV4RRFFQ69G5FAV", ops).status == 404
    assert http.get("/instances/not-an-id", ops).status == 404
    assert http.get("/instances/" + "A" * 3000, ops).status == 400  # longer than any id (issue 9)
