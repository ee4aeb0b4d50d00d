"""GitHub tools: GitHub requests per tool invocation beside the minimum GitHub's REST API allows.

Each tool is invoked through the app (POST /github/tools/{name}/invoke, Chalice's test client on
in-process moto) against the fake GitHub over real HTTP; the fake counts the requests it served.
"Minimum" is the fewest REST requests that can do the tool's job at all:
- create_branch: 2 (the start branch's sha, then the ref); a branch name is not a sha.
- commit_files: 4 (the branch: head and tree sha; the tree with the contents inline; the commit;
  the ref update). Ours adds the repository read that proves the branch is not the default one.
- open_pull_request: 1 with a base; 2 when the base is the default branch, which must be asked.
With a GitHub App every invocation mints its own narrowed installation token: +1 request (and
+1 per owner per container for the installation id, cached afterwards). A token that expires
mid-batch costs one more mint and one repeated request. DynamoDB/SQS/S3 calls per invocation are
counted on the app's boto3 session.
"""
from __future__ import annotations

import json
import os

from common import moto_stack, table


class Http:
    def __init__(self, client):
        self.client = client

    def call(self, method, path, key, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        r = getattr(self.client.http, method.lower())(
            path, headers={"content-type": content_type, "authorization": f"Bearer {key}"}, body=data)
        return r.status_code, json.loads(r.body) if r.body else None


def main() -> None:
    from chalice.test import Client
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from chalicelib.core import config
    from chalicelib.github_tools import credentials
    from tests.fakes.github_server import FakeGitHub

    rows = []
    with FakeGitHub(token="bench-token") as gh, moto_stack() as (app_module, counter, root):
        os.environ.update(GITHUB_TOKEN="bench-token", GITHUB_API_URL=gh.url)
        config.settings.cache_clear()
        with Client(app_module.app) as client:
            http = Http(client)
            _, org = http.call("POST", "/orgs", root["adminApiKey"], {"name": "bench"})
            admin = org["adminKey"]
            _, op = http.call("POST", "/keys", admin, {"name": "op", "scope": "operator"})
            _, agent = http.call("POST", "/agents", op["apiKey"], {"name": "bench", "pools": []})
            key, prefix = agent["apiKey"], f"agent/{agent['agentId']}/"
            http.call("PUT", "/github/repos", admin, {"repos": [{"repo": gh.repo_full}]})
            for i in range(3):
                http.call("PUT", f"/api/workspaces/b/files?path=src/f{i}.py", op["apiKey"], raw=b"x = 1\n" * 50,
                          content_type="text/plain")

            def measure(mode: str, tool: str, payload: dict, minimum: int, note: str = "") -> None:
                gh.reset_calls()
                with counter.counting():
                    status, body = http.call("POST", f"/github/tools/{tool}/invoke", key,
                                             {"input": {"repo": gh.repo_full, **payload}})
                    aws = len(counter.calls)
                assert status == 200, (tool, body)
                mints = len([c for c in gh.calls() if c.path.startswith("/app/") or c.path.endswith("/installation")])
                rows.append((mode, tool, len(gh.calls()) - mints, minimum, mints, aws, note))

            def all_tools(mode: str, n: int) -> None:
                branch = f"{prefix}bench-{n}"
                measure(mode, "create_issue", {"title": "t", "body": "b"}, 1)
                number = max(gh.issues)
                measure(mode, "list_issues", {}, 1)
                measure(mode, "comment_on_issue", {"number": number, "body": "c"}, 1)
                measure(mode, "update_issue_state", {"number": number, "state": "closed"}, 1)
                measure(mode, "create_branch", {"branch": branch}, 2, "+1: the default branch's name")
                measure(mode, "create_branch", {"branch": branch + "-b", "fromBranch": "main"}, 2)
                measure(mode, "commit_files", {"branch": branch, "message": "m", "workspace": "b",
                                               "paths": ["src/f0.py", "src/f1.py", "src/f2.py"]}, 4,
                        "3 files inline; +1: default-branch check")
                measure(mode, "open_pull_request", {"head": branch, "title": "t"}, 2, "base defaulted")
                measure(mode, "list_pull_requests", {}, 1)
                measure(mode, "get_pull_request", {"number": max(gh.git.pulls)}, 1)

            all_tools("GITHUB_TOKEN", 1)
            # the same through a GitHub App: a token per invocation
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            gh.git.app("99", private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
            os.environ.update(GITHUB_APP_ID="99", GITHUB_APP_PRIVATE_KEY=private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
            config.settings.cache_clear()
            credentials._private_key.cache_clear()
            all_tools("GitHub App", 2)
            gh.git.expire_tokens_after(3)
            measure("App, token expires", "commit_files", {"branch": f"{prefix}bench-2", "message": "m2",
                                                           "workspace": "b", "paths": ["src/f0.py"]}, 4,
                    "one re-mint, one repeat")
    print(__doc__.split("\n\n")[0] + "\n")
    print(table(rows, ("credential", "tool", "GitHub calls", "minimum", "token mints", "AWS calls", "note")))


if __name__ == "__main__":
    main()
