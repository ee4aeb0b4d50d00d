"""The fake GitHub's pulls, git database, branches, repository and GitHub App operations.

Registered through `EXTENSION_MODULES` in tests/fakes/github_server.py; its routes follow
tests/fakes/github-git-openapi.json (GitHub's description of these operations, trimmed), which
the server merges into the one it validates every request and answer against.

    fake.git.app(app_id="123", public_key_pem=...)   # accept the App's RS256 JWT; mint installation tokens
    fake.git.expire_tokens_after(2)                   # installation tokens die after two more requests
    fake.git.protected.add("release")                 # branch protection
    fake.git.branch_files("agent/s1/x")               # {path: text} at a branch's head
    fake.git.pulls                                    # number -> pull request

What GitHub does that the tools depend on, done here too: an installation token reaches only the
repositories and permissions it was minted with (404 for another repository, 403 "Resource not
accessible by integration" for a permission it lacks), expires (401 "Bad credentials"); a
protected branch refuses updates (422 "Protected branch update failed"); a ref update that is not
a fast-forward is refused unless forced; a second open pull request for the same head and base
is 422 "A pull request already exists"; merging is not served at all.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt

from tests.fakes.github_server import DOCS, _now

DESCRIPTION = Path(__file__).with_name("github-git-openapi.json")
INSTALLATION_ID = 42

# (method, template) -> the App permission an installation token needs ("metadata": any token)
NEEDS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/repos/{owner}/{repo}"): ("metadata", "read"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}"): ("contents", "read"),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}"): ("contents", "read"),
    ("POST", "/repos/{owner}/{repo}/git/refs"): ("contents", "write"),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}"): ("contents", "write"),
    ("POST", "/repos/{owner}/{repo}/git/blobs"): ("contents", "write"),
    ("POST", "/repos/{owner}/{repo}/git/trees"): ("contents", "write"),
    ("POST", "/repos/{owner}/{repo}/git/commits"): ("contents", "write"),
    ("GET", "/repos/{owner}/{repo}/pulls"): ("pull_requests", "read"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): ("pull_requests", "read"),
    ("POST", "/repos/{owner}/{repo}/pulls"): ("pull_requests", "write"),
    ("GET", "/repos/{owner}/{repo}/issues"): ("issues", "read"),
    ("POST", "/repos/{owner}/{repo}/issues"): ("issues", "write"),
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"): ("issues", "write"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): ("issues", "read"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): ("issues", "write"),
}


def _sha(kind: str, payload: Any) -> str:
    return hashlib.sha1(f"{kind}\0{json.dumps(payload, sort_keys=True)}".encode()).hexdigest()


def _error(status: int, message: str, errors: list[dict] | None = None) -> tuple[int, Any, dict]:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
    if errors is not None:
        body["errors"] = errors
    elif status != 422:
        body["status"] = str(status)
    return status, body, {}


class GitExtension:
    def __init__(self, fake: Any):
        doc = json.loads(DESCRIPTION.read_text())
        self.paths, self.components = doc["paths"], doc["components"]
        self.fake = fake
        self.default_branch = "main"
        self.protected: set[str] = {"main"}
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, str]] = {}       # sha -> {path: blob sha}
        self.commits: dict[str, dict[str, Any]] = {}     # sha -> {tree, parents, message}
        self.refs: dict[str, str] = {}                   # "heads/main" -> commit sha
        self.pulls: dict[int, dict[str, Any]] = {}
        self.protected_writes: list[str] = []            # refused updates of protected branches
        self.app_id: str | None = None
        self._public_key: str | None = None
        self.tokens: dict[str, dict[str, Any]] = {}      # installation token -> {repositories, permissions, expired}
        self.minted: list[dict[str, Any]] = []           # what each mint asked for
        self._expire_after: int | None = None
        tree = self._tree({}, {"README.md": b"# platform\n"})
        first = self._commit(tree, [], "Initial commit")
        self.refs["heads/main"] = first

    # --- scripting --------------------------------------------------------------------------

    def app(self, app_id: str, public_key_pem: str) -> None:
        self.app_id, self._public_key = app_id, public_key_pem

    def expire_tokens_after(self, requests: int) -> None:
        """Every installation token minted so far stops working after `requests` more requests with one."""
        self._expire_after = requests

    def branch_files(self, branch: str) -> dict[str, str]:
        head = self.refs[f"heads/{branch}"]
        return {p: self.blobs[s].decode() for p, s in self.trees[self.commits[head]["tree"]].items()}

    # --- objects ----------------------------------------------------------------------------

    def _blob(self, data: bytes) -> str:
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        self.blobs[sha] = data
        return sha

    def _tree(self, base: dict[str, str], files: dict[str, bytes]) -> str:
        entries = {**base, **{p: self._blob(d) for p, d in files.items()}}
        sha = _sha("tree", entries)
        self.trees[sha] = entries
        return sha

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        sha = _sha("commit", [tree, parents, message, len(self.commits)])
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message, "at": _now()}
        return sha

    def _api(self, suffix: str) -> str:
        return f"https://api.github.com/repos/{self.fake.repo_full}{suffix}"

    # --- credentials --------------------------------------------------------------------------

    def auth(self, method: str, path: str, authorization: str) -> Any:
        token = authorization.removeprefix("Bearer ").removeprefix("token ")
        if path.startswith("/app/") or path.endswith("/installation"):
            if self.app_id is None or self._public_key is None:
                return 401, {"message": "A JSON web token could not be decoded", "documentation_url": DOCS}
            try:
                claims = jwt.decode(token, self._public_key, algorithms=["RS256"],
                                    options={"require": ["iat", "exp", "iss"]}, leeway=60)
            except jwt.PyJWTError as e:
                return 401, {"message": f"A JSON web token could not be decoded ({type(e).__name__})",
                             "documentation_url": DOCS}
            if str(claims["iss"]) != self.app_id or claims["exp"] - claims["iat"] > 660:
                return 401, {"message": "'Issuer' claim ('iss') must be an Integer", "documentation_url": DOCS}
            return "ok"
        grant = self.tokens.get(token)
        if grant is None:
            return None  # not an installation token: the server checks its own token
        if self._expire_after is not None:
            if self._expire_after <= 0:
                for g in self.tokens.values():
                    g["expired"] = True
                self._expire_after = None
            else:
                self._expire_after -= 1
        if grant["expired"]:
            return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        parts = path.strip("/").split("/")
        if parts[0] == "repos" and len(parts) >= 3 and parts[2].lower() not in grant["repositories"]:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        found = self.fake.description.operation(method, path)
        need = NEEDS.get((method, found[0])) if found else None
        if need and need[0] != "metadata":
            have = grant["permissions"].get(need[0])
            if have is None or (need[1] == "write" and have != "write"):
                return 403, {"message": "Resource not accessible by integration", "documentation_url": DOCS,
                             "status": "403"}
        return "ok"

    # --- routes -------------------------------------------------------------------------------

    def serve(self, method: str, template: str, path: str, query: dict, body: Any) -> Any:
        key = (method, template)
        if template == "/app/installations/{installation_id}/access_tokens":
            return self._mint(path, body or {})
        handler = {
            ("GET", "/repos/{owner}/{repo}"): self._repository,
            ("GET", "/repos/{owner}/{repo}/installation"): self._installation,
            ("GET", "/repos/{owner}/{repo}/branches/{branch}"): self._branch,
            ("GET", "/repos/{owner}/{repo}/git/ref/{ref}"): self._get_ref,
            ("POST", "/repos/{owner}/{repo}/git/refs"): self._create_ref,
            ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}"): self._update_ref,
            ("POST", "/repos/{owner}/{repo}/git/blobs"): self._create_blob,
            ("POST", "/repos/{owner}/{repo}/git/trees"): self._create_tree,
            ("POST", "/repos/{owner}/{repo}/git/commits"): self._create_commit,
            ("GET", "/repos/{owner}/{repo}/pulls"): self._list_pulls,
            ("POST", "/repos/{owner}/{repo}/pulls"): self._create_pull,
            ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): self._get_pull,
        }.get(key)
        if handler is None:
            return None  # not one of this module's routes (issues: the server's; Actions: its module's)
        parts = path.strip("/").split("/")
        if f"{parts[1]}/{parts[2]}".lower() != self.fake.repo_full.lower():
            return _error(404, "Not Found")
        rest = "/".join(parts[3:])
        return handler(rest, query, body)

    def _mint(self, path: str, body: dict) -> Any:
        if path.strip("/").split("/")[2] != str(INSTALLATION_ID):
            return _error(404, "Not Found")
        repos = [r.lower() for r in body.get("repositories") or []]
        if any(r != self.fake.repo.lower() for r in repos):
            return _error(422, "There is at least one repository that does not exist or is not accessible to the "
                               "parent installation.", [])
        token = "ghs_" + secrets.token_hex(18)
        permissions = body.get("permissions") or {"contents": "write", "issues": "write", "pull_requests": "write"}
        self.tokens[token] = {"repositories": repos or [self.fake.repo.lower()], "permissions": permissions,
                              "expired": False}
        self.minted.append({"repositories": repos, "permissions": permissions})
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return 201, {"token": token, "expires_at": expires, "permissions": permissions,
                     "repository_selection": "selected" if repos else "all"}, {}

    def _installation(self, rest: str, query: dict, body: Any) -> Any:
        return 200, {"id": INSTALLATION_ID, "app_id": int(self.app_id or 0), "target_type": "Organization",
                     "permissions": {"contents": "write", "issues": "write", "pull_requests": "write",
                                     "metadata": "read"}}, {}

    def _repository(self, rest: str, query: dict, body: Any) -> Any:
        full = self.fake.repo_full
        return 200, {"id": 4242, "node_id": "R_4242", "name": self.fake.repo, "full_name": full, "private": True,
                     "owner": self.fake._user(self.fake.owner), "html_url": f"https://github.com/{full}",
                     "url": self._api(""), "default_branch": self.default_branch}, {}

    def _commit_view(self, sha: str) -> dict:
        c = self.commits[sha]
        return {"sha": sha, "node_id": f"C_{sha[:8]}", "url": self._api(f"/commits/{sha}"),
                "commit": {"message": c["message"], "url": self._api(f"/git/commits/{sha}"),
                           "tree": {"sha": c["tree"], "url": self._api(f"/git/trees/{c['tree']}")}}}

    def _branch(self, rest: str, query: dict, body: Any) -> Any:
        name = unquote(rest.split("/", 1)[1])
        sha = self.refs.get(f"heads/{name}")
        if sha is None:
            return _error(404, "Branch not found")
        return 200, {"name": name, "commit": self._commit_view(sha), "protected": name in self.protected,
                     "protection_url": self._api(f"/branches/{name}/protection"),
                     "_links": {"html": f"https://github.com/{self.fake.repo_full}/tree/{name}",
                                "self": self._api(f"/branches/{name}")}}, {}

    def _ref_view(self, ref: str) -> dict:
        sha = self.refs[ref]
        return {"ref": f"refs/{ref}", "node_id": f"REF_{sha[:8]}", "url": self._api(f"/git/refs/{ref}"),
                "object": {"type": "commit", "sha": sha, "url": self._api(f"/git/commits/{sha}")}}

    def _get_ref(self, rest: str, query: dict, body: Any) -> Any:
        ref = unquote(rest.split("/", 2)[2])
        if ref not in self.refs:
            return _error(404, "Not Found")
        return 200, self._ref_view(ref), {}

    def _create_ref(self, rest: str, query: dict, body: dict) -> Any:
        ref = body["ref"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            return _error(422, "Reference name must start with 'refs/' and have at least two slashes.", [])
        if body["sha"] not in self.commits:
            return _error(422, "Object does not exist", [])
        short = ref.removeprefix("refs/")
        if short in self.refs:
            return _error(422, "Reference already exists", [])
        self.refs[short] = body["sha"]
        return 201, self._ref_view(short), {"location": self._api(f"/git/refs/{short}")}

    def _update_ref(self, rest: str, query: dict, body: dict) -> Any:
        ref = unquote(rest.split("/", 2)[2])
        if ref not in self.refs:
            return _error(422, "Reference does not exist", [])
        branch = ref.removeprefix("heads/")
        if branch in self.protected:
            self.protected_writes.append(branch)
            return _error(422, "Protected branch update failed for refs/heads/" + branch, [])
        new = body["sha"]
        if new not in self.commits:
            return _error(422, "Object does not exist", [])
        if not body.get("force") and not self._descends(new, self.refs[ref]):
            return _error(422, "Update is not a fast forward", [])
        self.refs[ref] = new
        return 200, self._ref_view(ref), {}

    def _descends(self, sha: str, ancestor: str) -> bool:
        seen, todo = set(), [sha]
        while todo:
            s = todo.pop()
            if s == ancestor:
                return True
            if s not in seen and s in self.commits:
                seen.add(s)
                todo.extend(self.commits[s]["parents"])
        return False

    def _create_blob(self, rest: str, query: dict, body: dict) -> Any:
        import base64

        data = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
        sha = self._blob(data)
        return 201, {"url": self._api(f"/git/blobs/{sha}"), "sha": sha}, {"location": self._api(f"/git/blobs/{sha}")}

    def _create_tree(self, rest: str, query: dict, body: dict) -> Any:
        base: dict[str, str] = {}
        if body.get("base_tree"):
            if body["base_tree"] not in self.trees:
                return _error(422, "base_tree is not a valid tree oid", [])
            base = dict(self.trees[body["base_tree"]])
        for entry in body["tree"]:
            path = entry.get("path") or ""
            if entry.get("type") != "blob" or path.startswith("/") or ".." in path.split("/"):
                return _error(422, f"tree.path contains a malformed path component ({path})", [])
            if "content" in entry:
                base[path] = self._blob(entry["content"].encode())
            elif entry.get("sha") is None:
                base.pop(path, None)
            elif entry["sha"] in self.blobs:
                base[path] = entry["sha"]
            else:
                return _error(422, "tree.sha is not a valid blob", [])
        sha = _sha("tree", base)
        self.trees[sha] = base
        return 201, {"sha": sha, "url": self._api(f"/git/trees/{sha}"), "truncated": False,
                     "tree": [{"path": p, "mode": "100644", "type": "blob", "sha": s, "size": len(self.blobs[s])}
                              for p, s in sorted(base.items())]}, {}

    def _create_commit(self, rest: str, query: dict, body: dict) -> Any:
        if body["tree"] not in self.trees or any(p not in self.commits for p in body.get("parents") or []):
            return _error(422, "Tree SHA does not exist" if body["tree"] not in self.trees else "Parent SHA does not exist", [])
        sha = self._commit(body["tree"], list(body.get("parents") or []), body["message"])
        who = {"name": "control-plane[bot]", "email": "bot@example.invalid", "date": _now()}
        return 201, {"sha": sha, "node_id": f"C_{sha[:8]}", "url": self._api(f"/git/commits/{sha}"),
                     "html_url": f"https://github.com/{self.fake.repo_full}/commit/{sha}", "author": who,
                     "committer": who, "message": body["message"],
                     "tree": {"sha": body["tree"], "url": self._api(f"/git/trees/{body['tree']}")},
                     "parents": [{"sha": p, "url": self._api(f"/git/commits/{p}"),
                                  "html_url": f"https://github.com/{self.fake.repo_full}/commit/{p}"}
                                 for p in body.get("parents") or []],
                     "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None}}, {}

    def _pull_view(self, p: dict, full: bool) -> dict:
        def side(ref: str) -> dict:
            return {"label": f"{self.fake.owner}:{ref}", "ref": ref, "sha": self.refs.get(f"heads/{ref}", "0" * 40),
                    "user": self.fake._user(self.fake.owner), "repo": None}

        view = {k: v for k, v in p.items() if k not in ("head_ref", "base_ref")}
        view.update(head=side(p["head_ref"]), base=side(p["base_ref"]))
        if full:
            view.update(merged=False, mergeable=True, comments=0, commits=1, additions=1, deletions=0,
                        changed_files=1, maintainer_can_modify=p.get("maintainer_can_modify", False))
        else:
            view.pop("maintainer_can_modify", None)
        return view

    def _list_pulls(self, rest: str, query: dict, body: Any) -> Any:
        state = query.get("state", ["open"])[0]
        head = query.get("head", [None])[0]
        base = query.get("base", [None])[0]
        per_page = int(query.get("per_page", ["30"])[0])
        found = [p for p in sorted(self.pulls.values(), key=lambda p: -p["number"])
                 if (state == "all" or p["state"] == state)
                 and (head is None or f"{self.fake.owner}:{p['head_ref']}" == head)
                 and (base is None or p["base_ref"] == base)]
        return 200, [self._pull_view(p, False) for p in found[:per_page]], {}

    def _get_pull(self, rest: str, query: dict, body: Any) -> Any:
        number = int(rest.split("/")[1]) if rest.split("/")[1].isdigit() else -1
        if number not in self.pulls:
            return _error(404, "Not Found")
        return 200, self._pull_view(self.pulls[number], True), {}

    def _create_pull(self, rest: str, query: dict, body: dict) -> Any:
        head = body["head"].split(":", 1)[-1]
        base = body["base"]
        invalid = [{"resource": "PullRequest", "field": f, "code": "invalid"}
                   for f, ref in (("head", head), ("base", base)) if f"heads/{ref}" not in self.refs]
        if invalid:
            return _error(422, "Validation Failed", invalid)
        if head == base or self.refs[f"heads/{head}"] == self.refs[f"heads/{base}"]:
            return _error(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                      "message": f"No commits between {base} and {head}"}])
        if any(p["head_ref"] == head and p["base_ref"] == base and p["state"] == "open" for p in self.pulls.values()):
            return _error(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                      "message": f"A pull request already exists for "
                                                                 f"{self.fake.owner}:{head}."}])
        number = 500 + len(self.pulls) + 1
        self.fake._next_id += 1
        now = _now()
        pull = {"url": self._api(f"/pulls/{number}"), "id": self.fake._next_id, "node_id": f"PR_{self.fake._next_id}",
                "html_url": f"https://github.com/{self.fake.repo_full}/pull/{number}", "number": number,
                "state": "open", "locked": False, "title": body.get("title") or "", "user": self.fake._user("ops-bot"),
                "body": body.get("body"), "created_at": now, "updated_at": now, "closed_at": None, "merged_at": None,
                "head_ref": head, "base_ref": base, "draft": bool(body.get("draft")),
                "author_association": "NONE", "maintainer_can_modify": bool(body.get("maintainer_can_modify"))}
        self.pulls[number] = pull
        return 201, self._pull_view(pull, True), {"location": pull["url"]}


def extension(fake: Any) -> GitExtension:
    ext = GitExtension(fake)
    fake.git = ext
    return ext
