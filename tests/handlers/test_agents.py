"""Agents: register (bound key), list, get (lastSeenAt), heartbeat, deactivate, pools."""


def test_register_returns_a_key_bound_to_the_agent(fleet, http):
    r = http.post("/agents", fleet.operator, {"name": "builder-1", "pools": ["linux", "linux", "gpu"],
                                              "tags": {"zone": "a"}, "metadata": {"cpu": 8, "note": None}})
    assert r.status == 201, r.json
    a = r.json
    assert a["status"] == "active" and a["name"] == "builder-1"
    assert a["pools"] == ["linux", "gpu"]  # de-duplicated, order kept
    assert a["apiKey"].startswith("cpk.") and a["createdAt"].endswith("Z")
    assert a["metadata"] == {"cpu": 8, "note": None} and a["tags"] == {"zone": "a"}
    # The key is an agent key bound to this agent: it reads its own agent, not the fleet.
    me = http.get(f"/agents/{a['agentId']}", a["apiKey"])
    assert me.status == 200 and me.json["agentId"] == a["agentId"] and "apiKey" not in me.json
    assert http.get("/agents", a["apiKey"]).status == 403
    keys = http.get("/keys", fleet.org["adminKey"]).json["items"]
    assert any(k["scope"] == "agent" and k["agentId"] == a["agentId"] for k in keys)


def test_register_validation(fleet, http):
    for body, field in (({"pools": ["x"]}, "name"), ({"name": "a", "pools": ["bad#pool"]}, "pools"),
                        ({"name": "a", "pools": "linux"}, "pools"), ({"name": "a", "extra": 1}, "extra")):
        r = http.post("/agents", fleet.operator, body)
        assert r.status == 400, (body, r.json)
        assert r.json["error"]["details"][0]["field"].startswith(field), r.json
    agent_id, key = fleet.register()
    assert http.post("/agents", key, {"name": "b"}).status == 403  # agents do not register agents


def test_list_get_and_pool_filter_with_pagination(fleet, http):
    ids = [fleet.register(f"a{i}", pools=["p"] if i % 2 else [])[0] for i in range(5)]
    listed, token = [], None
    while True:
        r = http.get("/agents?limit=2" + (f"&nextToken={token}" if token else ""), fleet.operator)
        assert r.status == 200 and len(r.json["items"]) <= 2
        listed += [a["agentId"] for a in r.json["items"]]
        token = r.json["nextToken"]
        if not token:
            break
    assert listed == ids  # oldest first, every one exactly once
    pool = http.get("/agents?pool=p", fleet.operator).json
    assert [a["agentId"] for a in pool["items"]] == ids[1::2]
    assert http.get("/agents?pool=nobody", fleet.operator).json["items"] == []
    # A token is bound to its list.
    first = http.get("/agents?limit=1", fleet.operator).json["nextToken"]
    r = http.get(f"/agents?pool=p&nextToken={first}", fleet.operator)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "nextToken"
    assert http.get(f"/agents/{ids[0]}", fleet.operator).json["lastSeenAt"] is None


def test_heartbeat_and_poll_set_last_seen(fleet, http):
    agent_id, key = fleet.register()
    r = http.post(f"/agents/{agent_id}/heartbeat", key)
    assert r.status == 204, r.json
    seen = http.get(f"/agents/{agent_id}", fleet.operator).json["lastSeenAt"]
    assert seen and seen.endswith("Z")
    other, other_key = fleet.register("b")
    assert http.get(f"/agents/{other}", other_key).json["lastSeenAt"] is None
    fleet.poll(other)
    assert http.get(f"/agents/{other}", fleet.operator).json["lastSeenAt"]


def test_an_agent_key_acts_only_as_its_agent(fleet, http):
    a, key_a = fleet.register("a")
    b, _ = fleet.register("b")
    assert http.post(f"/agents/{b}/heartbeat", key_a).status == 403
    assert http.get(f"/agents/{b}", key_a).status == 403
    assert http.get(f"/jobs/poll?agentId={b}", key_a).status == 403
    # Operators may act for an agent.
    assert http.post(f"/agents/{a}/heartbeat", fleet.operator).status == 204


def test_deactivate_then_403_on_agent_operations(fleet, http):
    agent_id, key = fleet.register("gone", pools=["p"])
    job = fleet.create(agentId=agent_id)
    polled = fleet.poll(agent_id)["jobs"][0]
    r = http.post(f"/agents/{agent_id}/deactivate", fleet.operator)
    assert r.status == 200 and r.json["status"] == "inactive"
    assert http.post(f"/agents/{agent_id}/deactivate", fleet.operator).json["status"] == "inactive"  # no-op
    assert http.get(f"/agents/{agent_id}", fleet.operator).json["status"] == "inactive"
    for response in (http.get(f"/jobs/poll?agentId={agent_id}", key),
                     fleet.progress(agent_id, polled),
                     fleet.complete(agent_id, polled),
                     http.post(f"/agents/{agent_id}/heartbeat", key)):
        assert response.status == 403, response.json
        assert response.json["error"]["code"] == "FORBIDDEN"
    # New direct jobs for it are refused; its running job is untouched (its lease will run out).
    r = http.post("/jobs", fleet.operator, {"agentId": agent_id, "type": "t", "payload": {}})
    assert r.status == 409 and r.json["error"]["details"][0]["field"] == "agentId"
    assert fleet.job(job["jobId"])["status"] == "RUNNING"
    assert http.post("/agents/01NOSUCHAGENT0000000000000/deactivate", fleet.operator).status == 404


def test_unknown_agent_gets_403_on_poll_and_404_on_get(fleet, http):
    ghost = "01GHOSTAGENT00000000000000"
    assert http.get(f"/jobs/poll?agentId={ghost}", fleet.operator).status == 403
    assert http.post(f"/agents/{ghost}/heartbeat", fleet.operator).status == 403
    assert http.get(f"/agents/{ghost}", fleet.operator).status == 404


def test_agents_of_another_org_are_invisible(fleet, http, root):
    agent_id, key = fleet.register()
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    assert http.get(f"/agents/{agent_id}", other["adminKey"]).status == 404
    assert http.post(f"/agents/{agent_id}/deactivate", other["adminKey"]).status == 404
    assert http.get("/agents", other["adminKey"]).json["items"] == []
    assert http.get(f"/jobs/poll?agentId={agent_id}", other["adminKey"]).status == 403
    assert http.get(f"/agents/{agent_id}", fleet.operator).json["status"] == "active"
