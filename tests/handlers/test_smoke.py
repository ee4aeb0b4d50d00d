def test_health(http):
    r = http.get("/health")
    assert r.status == 200, r.json
    assert r.json == {"status": "ok", "checks": {"dynamodb": "ok", "sqs": "ok"}}


def test_org_and_keys(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "ops", "scope": "operator"})
    assert r.status == 201, r.json
    r2 = http.get("/keys", org["adminKey"])
    assert r2.status == 200, r2.json
    assert len(r2.json["items"]) == 2
