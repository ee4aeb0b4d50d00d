"""PUT/GET /github/repos: the per-organization allow-list of repositories for the GitHub tools."""
from __future__ import annotations

from tests.conftest import key_of


def test_admin_replaces_the_allow_list_and_operators_read_it(http, org):
    body = {"repos": [{"repo": "acme/app", "tools": ["list_issues", "open_pull_request"],
                       "requireApproval": ["open_pull_request"]},
                      {"repo": "acme/lib"}]}
    r = http.put("/github/repos", org["adminKey"], body)
    assert r.status == 200, r.json
    assert r.json["repos"][0] == {"repo": "acme/app", "tools": ["list_issues", "open_pull_request"],
                                  "requireApproval": ["open_pull_request"]}
    assert len(r.json["repos"][1]["tools"]) == 9 and r.json["repos"][1]["requireApproval"] == []
    operator = key_of(http, org, "operator")
    got = http.get("/github/repos", operator)
    assert got.status == 200 and got.json["repos"] == r.json["repos"]
    # replaced, not merged
    assert http.put("/github/repos", org["adminKey"], {"repos": [{"repo": "acme/lib"}]}).status == 200
    assert [x["repo"] for x in http.get("/github/repos", operator).json["repos"]] == ["acme/lib"]
    audit = http.get(f"/audit?entityType=github-repos&entityId={org['orgId']}", org["adminKey"])
    assert audit.status == 200, audit.json
    assert [e["action"] for e in audit.json["items"]] == ["replaced", "replaced"]


def test_the_service_lists_an_organizations_repositories_for_other_domains(http, org):
    from chalicelib.github_tools.service import allowed_repositories, allowed_repository

    assert allowed_repositories(org["orgId"]) == []
    http.put("/github/repos", org["adminKey"], {"repos": [{"repo": "Acme/App", "tools": ["list_issues"]}]})
    [repo] = allowed_repositories(org["orgId"])
    assert repo.repo == "Acme/App" and repo.tools == ["list_issues"]
    assert allowed_repository(org["orgId"], "acme/app") == repo


def test_bad_allow_lists_are_400_naming_the_field_and_only_admins_write(http, org):
    cases = [({"repos": [{"repo": "no-slash"}]}, "repos.0.repo"),
             ({"repos": [{"repo": "a/b", "tools": ["merge_pr"]}]}, "repos.0.tools"),
             ({"repos": [{"repo": "a/b", "requireApproval": ["list_issues"]}]}, "repos.0.requireApproval"),
             ({"repos": [{"repo": "a/b"}, {"repo": "A/B"}]}, "repos"),
             ({"repos": [{"repo": "a/.."}]}, "repos.0.repo")]
    for body, field in cases:
        r = http.put("/github/repos", org["adminKey"], body)
        assert r.status == 400, (body, r.json)
        assert field in [d["field"] for d in r.json["error"]["details"]], r.json
    operator = key_of(http, org, "operator")
    assert http.put("/github/repos", operator, {"repos": []}).status == 403
    agent = key_of(http, org, "agent", "ag-1")
    assert http.get("/github/repos", agent).status == 403
