"""A real local HTTP server that answers like GitHub's REST API for issues, comments and search.

    with FakeGitHub(token="t") as gh:          # listens on 127.0.0.1:<free port>
        gh.url                                  # GITHUB_API_URL for the code under test
        gh.rate_limit("POST /repos/{owner}/{repo}/issues", kind="secondary", retry_after=1)
        ...
        assert gh.violations == []              # every request and answer matched the description

Routes and shapes follow ../shared/spec/github-issues-openapi.json (a trimmed
copy of GitHub's published description). Every request is validated against
it (path, query parameters, body: a bad one is answered 422 and recorded), and
every answer the fake sends is validated too (a fake that drifts from GitHub
fails the tests that use it). Every answer carries GitHub's x-ratelimit-*
headers; a body over 65,536 characters or a title over 256 is refused with
GitHub's 422 ("body is too long (maximum is 65536 characters)"); scripted
answers reproduce the primary limit (403 with
x-ratelimit-remaining: 0 and x-ratelimit-reset) and the secondary limit (403 or
429 with Retry-After and a message).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openapi_schema_validator import OAS30Validator

# A copy of ../shared/spec/github-issues-openapi.json, kept beside the fake so the tests run anywhere.
DESCRIPTION = Path(__file__).with_name("github-issues-openapi.json")
DOCS = "https://docs.github.com/rest"
BODY_LIMIT = 65_536   # characters in an issue's or a comment's body (GitHub answers 422 past it)
TITLE_LIMIT = 256     # characters in an issue's title


def load_description() -> dict:
    return json.loads(DESCRIPTION.read_text())


class Description:
    """Validation of requests and answers against the OpenAPI description."""

    def __init__(self, doc: dict):
        self.doc = doc
        self._validators: dict[str, OAS30Validator] = {}
        self.routes: list[tuple[str, re.Pattern[str], str, dict]] = []
        for template, ops in doc["paths"].items():
            # a git ref (heads/agent/x/y) spans segments, as GitHub's own routing lets it
            pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", r"([^/]+)", template.replace("{ref}", "(.+)")) + "$")
            for method, op in ops.items():
                if method in ("get", "post", "patch", "put", "delete"):
                    self.routes.append((template, pattern, method.upper(), op))

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for template, pattern, m, op in self.routes:
            if m == method and pattern.match(path):
                return template, op
        return None

    def _schema_errors(self, instance: Any, schema: dict) -> list[str]:
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            # refs (#/components/...) resolve against the whole description
            validator = self._validators[key] = OAS30Validator({**self.doc, **schema})
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)][:5]

    def _parameter(self, ref_or_param: dict) -> dict:
        if "$ref" in ref_or_param:
            name = ref_or_param["$ref"].rsplit("/", 1)[1]
            return self.doc["components"]["parameters"][name]
        return ref_or_param

    def request_errors(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: not in the description"]
        template, op = found
        errors: list[str] = []
        params = [self._parameter(p) for p in op.get("parameters", [])]
        known = {p["name"] for p in params if p["in"] == "query"}
        for name in query:
            if name not in known:
                errors.append(f"query parameter {name!r} is not described for {method} {template}")
        for p in params:
            if p["in"] != "query":
                continue
            if p.get("required") and p["name"] not in query:
                errors.append(f"query parameter {p['name']!r} is required")
            if p["name"] in query:
                raw = query[p["name"]][0]
                value: Any = raw
                if p["schema"].get("type") == "integer":
                    try:
                        value = int(raw)
                    except ValueError:
                        errors.append(f"query parameter {p['name']!r} is not an integer")
                        continue
                errors += [f"query {p['name']}: {e}" for e in self._schema_errors(value, p["schema"])]
        request_body = op.get("requestBody")
        if request_body is not None:
            if body is None:
                if request_body.get("required"):
                    errors.append("a JSON body is required")
            else:
                schema = request_body["content"]["application/json"]["schema"]
                errors += [f"body {e}" for e in self._schema_errors(body, schema)]
        elif body is not None:
            errors.append(f"{method} {template} takes no body")
        return errors

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        found = self.operation(method, path)
        if found is None:
            return []
        _, op = found
        response = op["responses"].get(str(status))
        if response is None:
            if status in (403, 429):  # rate-limit answers: GitHub's basic-error shape
                schema = {"$ref": "#/components/schemas/basic-error"}
            elif status == 401:
                schema = {"$ref": "#/components/schemas/basic-error"}
            else:
                return [f"{method} {path}: status {status} is not described"]
        else:
            if "$ref" in response:
                response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            content = response.get("content")
            if not content:
                return []
            schema = content["application/json"]["schema"]
        return [f"answer {status}: {e}" for e in self._schema_errors(body, schema)]


@dataclass
class Scripted:
    kind: str           # "primary" | "secondary" | "secondary429" | "error500"
    retry_after: int = 1
    reset_in: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    authorization: str | None
    at: float = field(default_factory=time.time)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Modules that add GitHub operations to the fake, each in a module of its own (the registration
# hook): a module defines `extension(fake) -> object` whose object has `paths` and `components`
# (merged into the description), `auth(method, path, authorization) -> None | "ok" | (status, body)`
# (None: not a credential it knows) and `serve(method, template, path, query, body) -> None |
# (status, body, headers)` (None: not its route).
# (optional) `serve_blob(path, headers) -> None | (status, bytes, headers)`: a download outside the API
# (a pre-signed URL), answered before any authentication.
EXTENSION_MODULES: list[str] = ["tests.fakes.github_git", "tests.fakes.github_actions"]


def _merged(doc: dict, extensions: list) -> dict:
    doc = {**doc, "paths": dict(doc["paths"]), "components": {k: dict(v) for k, v in doc["components"].items()}}
    for ext in extensions:
        doc["paths"].update(ext.paths)
        for kind, entries in ext.components.items():
            doc["components"].setdefault(kind, {}).update(entries)
    return doc


class FakeGitHub:
    def __init__(self, token: str = "test-token", owner: str = "acme", repo: str = "platform",
                 description: dict | None = None, search_lag: bool = False):
        import importlib

        self.token = token
        self.owner, self.repo = owner, repo
        self.extensions = [importlib.import_module(m).extension(self) for m in EXTENSION_MODULES]
        self.description = Description(_merged(description or load_description(), self.extensions))
        self.issues: dict[int, dict] = {}
        self.comments: dict[int, list[dict]] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.users = {"ops-bot", "alice", "bob"}  # who may be assigned (collaborators)
        self._scripts: dict[str, list[Scripted]] = {}
        self._next_id = 1000
        self._lock = threading.RLock()
        self.remaining = 5000
        self.search_lag = search_lag  # True: new issues are not searchable (GitHub's index lags)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-github")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def repo_full(self) -> str:
        return f"{self.owner}/{self.repo}"

    # --- scripting and inspection ----------------------------------------------------

    def rate_limit(self, route: str, kind: str = "secondary", times: int = 1, retry_after: int = 1,
                   reset_in: int = 1) -> None:
        """The next `times` requests to `route` ("POST /repos/{owner}/{repo}/issues") answer a rate limit."""
        with self._lock:
            self._scripts.setdefault(route, []).extend(Scripted(kind, retry_after, reset_in) for _ in range(times))

    def calls(self, route: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if route is None or self._template(r.method, r.path) == route]

    def close_issue(self, number: int) -> None:
        """What a person does on GitHub when they fix it."""
        with self._lock:
            issue = self.issues[number]
            issue.update(state="closed", state_reason="completed", closed_at=_now(), updated_at=_now())

    def reset_calls(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- HTTP --------------------------------------------------------------------------

    def _template(self, method: str, path: str) -> str:
        found = self.description.operation(method, path)
        return f"{method} {found[0]}" if found else f"{method} {path}"

    def _headers(self, resource: str) -> dict[str, str]:
        reset = int(time.time()) + 3600
        limit = 30 if resource == "search" else 5000
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(max(self.remaining, 0)),
                "x-ratelimit-used": str(limit - max(self.remaining, 0)), "x-ratelimit-reset": str(reset),
                "x-ratelimit-resource": resource, "x-github-api-version-selected": "2022-11-28"}

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        for extension in self.extensions:
            # an extension's unauthenticated downloads (pre-signed URLs: outside GitHub's API and its description)
            blob = extension.serve_blob(path, h.headers) if hasattr(extension, "serve_blob") else None
            if blob is not None:
                status, data, headers = blob
                h.send_response(status)
                for k, v in {**headers, "content-length": str(len(data))}.items():
                    h.send_header(k, v)
                h.end_headers()
                h.wfile.write(data)
                return
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        method = h.command
        resource = "search" if path.startswith("/search/") else "core"
        body: Any = None
        status, answer, extra = 500, {"message": "fake failed"}, {}
        with self._lock:
            try:
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        status, answer = 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
                        raise _Answered
                status, answer, extra = self._route(method, path, query, body, h.headers, resource)
            except _Answered:
                pass
            self.requests.append(Recorded(method, path, query, body, status, h.headers.get("authorization")))
            self.violations += [f"{method} {path}: {e}" for e in
                                self.description.response_errors(method, path, status, answer)]
            headers = {**self._headers(resource), **extra}
        data = json.dumps(answer).encode() if answer is not None else b""
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("content-type", "application/json; charset=utf-8")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: Any, headers: Any,
               resource: str) -> tuple[int, Any, dict]:
        auth = headers.get("authorization") or ""
        verdicts = [v for v in (ext.auth(method, path, auth) for ext in self.extensions) if v is not None]
        if verdicts and verdicts[0] != "ok":
            return (*verdicts[0], {})
        if not verdicts and auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, {}
        if "application/vnd.github" not in (headers.get("accept") or ""):
            self.violations.append(f"{method} {path}: Accept is not application/vnd.github+json")
        errors = self.description.request_errors(method, path, query, body)
        if errors:
            self.violations += [f"{method} {path}: request {e}" for e in errors]
            return 422, {"message": "Validation Failed", "documentation_url": DOCS,
                         "errors": [{"resource": "Issue", "code": "invalid", "message": e} for e in errors]}, {}
        too_long = self._too_long(path, body)
        if too_long:
            return 422, {"message": "Validation Failed", "documentation_url": DOCS, "errors": too_long}, {}
        template = self._template(method, path)
        script = self._scripts.get(template)
        if script:
            s = script.pop(0)
            return self._rate_limited(s, resource)
        self.remaining -= 1
        for ext in self.extensions:
            served = ext.serve(method, template.split(" ", 1)[1], path, query, body)
            if served is not None:
                return served
        parts = path.strip("/").split("/")
        if parts[:1] == ["search"]:
            return self._search(query)
        owner, repo = parts[1], parts[2]
        if f"{owner}/{repo}" != self.repo_full:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {}
        if len(parts) == 4:
            if method == "POST":
                return self._create(body)
            return self._list(query)
        number = int(parts[4]) if parts[4].isdigit() else -1
        if number not in self.issues:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {}
        if len(parts) == 5:
            return self._update(number, body)
        if method == "POST":
            return self._comment(number, body)
        return 200, list(self.comments.get(number, [])), {}

    @staticmethod
    def _too_long(path: str, body: Any) -> list[dict]:
        """GitHub's limits on what a person or a bot writes: a body (issue or comment) of at most 65,536
        characters and a title of at most 256; over them it answers 422 and stores nothing."""
        if not isinstance(body, dict):
            return []
        resource = "IssueComment" if path.endswith("/comments") else "Issue"
        errors = []
        for name, limit in (("body", BODY_LIMIT), ("title", TITLE_LIMIT)):
            value = body.get(name)
            if isinstance(value, str) and len(value) > limit:
                errors.append({"resource": resource, "code": "custom", "field": name,
                               "message": f"{name} is too long (maximum is {limit} characters)"})
        return errors

    def _rate_limited(self, s: Scripted, resource: str) -> tuple[int, Any, dict]:
        if s.kind == "primary":
            reset = int(time.time()) + s.reset_in
            return 403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS,
                         "status": "403"}, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        if s.kind == "error500":
            return 503, {"message": "Service unavailable", "documentation_url": DOCS}, {}
        status = 429 if s.kind == "secondary429" else 403
        return status, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                   "before you try again.", "documentation_url": DOCS, "status": str(status)}, \
            {"retry-after": str(s.retry_after)}

    # --- resources ---------------------------------------------------------------------

    def _user(self, login: str) -> dict:
        base = f"https://api.github.com/users/{login}"
        return {"login": login, "id": abs(hash(login)) % 10**6, "node_id": f"U_{login}",
                "avatar_url": f"https://avatars.githubusercontent.com/{login}", "gravatar_id": "",
                "url": base, "html_url": f"https://github.com/{login}", "followers_url": f"{base}/followers",
                "following_url": f"{base}/following{{/other_user}}", "gists_url": f"{base}/gists{{/gist_id}}",
                "starred_url": f"{base}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{base}/subscriptions",
                "organizations_url": f"{base}/orgs", "repos_url": f"{base}/repos",
                "events_url": f"{base}/events{{/privacy}}", "received_events_url": f"{base}/received_events",
                "type": "User", "site_admin": False}

    def _labels(self, labels: list) -> list[dict]:
        out = []
        for label in labels:
            name = label if isinstance(label, str) else label.get("name", "")
            out.append({"id": abs(hash(name)) % 10**6, "node_id": f"L_{name}", "name": name,
                        "url": f"https://api.github.com/repos/{self.repo_full}/labels/{name}",
                        "color": "d73a4a", "default": False, "description": None})
        return out

    def _create(self, body: dict) -> tuple[int, Any, dict]:
        if not isinstance(body.get("title"), (str, int)) or str(body.get("title")).strip() == "":
            return 422, {"message": "Validation Failed", "documentation_url": DOCS,
                         "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}, {}
        number = len(self.issues) + 1
        self._next_id += 1
        api = f"https://api.github.com/repos/{self.repo_full}/issues/{number}"
        now = _now()
        assignees = [a for a in body.get("assignees") or [] if a in self.users]
        issue = {
            "id": self._next_id, "node_id": f"I_{self._next_id}", "url": api,
            "repository_url": f"https://api.github.com/repos/{self.repo_full}",
            "labels_url": f"{api}/labels{{/name}}", "comments_url": f"{api}/comments", "events_url": f"{api}/events",
            "html_url": f"https://github.com/{self.repo_full}/issues/{number}", "number": number,
            "state": "open", "state_reason": None, "title": str(body["title"]), "body": body.get("body"),
            "user": self._user("ops-bot"), "labels": self._labels(body.get("labels") or []),
            "assignee": self._user(assignees[0]) if assignees else None,
            "assignees": [self._user(a) for a in assignees], "milestone": None, "locked": False,
            "active_lock_reason": None, "comments": 0, "closed_at": None, "created_at": now, "updated_at": now,
            "author_association": "OWNER",
        }
        self.issues[number] = issue
        self.comments[number] = []
        if self.search_lag:
            issue["_unsearchable"] = True
        return 201, self._public(issue), {"location": api}

    def _update(self, number: int, body: dict | None) -> tuple[int, Any, dict]:
        issue = self.issues[number]
        body = body or {}
        if "state" in body and body["state"] != issue["state"]:
            issue["state"] = body["state"]
            issue["closed_at"] = _now() if body["state"] == "closed" else None
            issue["state_reason"] = body.get("state_reason") or ("completed" if body["state"] == "closed" else "reopened")
        for key in ("title", "body"):
            if body.get(key) is not None:
                issue[key] = str(body[key])
        if "labels" in body:
            issue["labels"] = self._labels(body["labels"] or [])
        if "assignees" in body:
            # GitHub silently drops logins that cannot be assigned.
            logins = [a for a in body["assignees"] or [] if a in self.users]
            issue["assignees"] = [self._user(a) for a in logins]
            issue["assignee"] = issue["assignees"][0] if logins else None
        issue["updated_at"] = _now()
        return 200, self._public(issue), {}

    def _comment(self, number: int, body: dict) -> tuple[int, Any, dict]:
        self._next_id += 1
        issue = self.issues[number]
        url = f"https://api.github.com/repos/{self.repo_full}/issues/comments/{self._next_id}"
        comment = {"id": self._next_id, "node_id": f"IC_{self._next_id}", "url": url, "body": body["body"],
                   "html_url": f"{issue['html_url']}#issuecomment-{self._next_id}", "issue_url": issue["url"],
                   "user": self._user("ops-bot"), "created_at": _now(), "updated_at": _now(),
                   "author_association": "OWNER"}
        self.comments[number].append(comment)
        issue["comments"] += 1
        issue["updated_at"] = _now()
        return 201, comment, {"location": url}

    def _list(self, query: dict) -> tuple[int, Any, dict]:
        state = query.get("state", ["open"])[0]
        labels = [x for x in query.get("labels", [""])[0].split(",") if x]
        since = query.get("since", [None])[0]
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        direction = query.get("direction", ["desc"])[0]
        found = [i for i in self.issues.values()
                 if (state == "all" or i["state"] == state)
                 and all(any(l["name"] == want for l in i["labels"]) for want in labels)
                 and (since is None or i["updated_at"] >= since)]
        found.sort(key=lambda i: i["created_at"] + f"{i['number']:08d}", reverse=direction == "desc")
        chunk = found[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(found):
            headers["link"] = f'<{self.url}/repos/{self.repo_full}/issues?page={page + 1}>; rel="next"'
        return 200, [self._public(i) for i in chunk], headers

    def _search(self, query: dict) -> tuple[int, Any, dict]:
        q = query["q"][0]
        phrases = re.findall(r'"([^"]+)"', q)
        rest = re.sub(r'"[^"]+"', " ", q).split()
        qualifiers = dict(t.split(":", 1) for t in rest if ":" in t)
        words = [t for t in rest if ":" not in t]
        if qualifiers.get("repo", self.repo_full) != self.repo_full:
            items: list[dict] = []
        else:
            items = [i for i in self.issues.values()
                     if not i.get("_unsearchable")
                     and ("state" not in qualifiers or i["state"] == qualifiers["state"])
                     and all(p in f"{i['title']}\n{i.get('body') or ''}" for p in [*phrases, *words])]
        out = [{**self._public(i), "score": 1.0} for i in items]
        return 200, {"total_count": len(out), "incomplete_results": False, "items": out,
                     "search_type": "lexical"}, {}

    @staticmethod
    def _public(issue: dict) -> dict:
        # state_reason is omitted while null: the description's enum has no null in it (OpenAPI 3.0
        # `nullable` with `enum`), and a strict validator rejects GitHub's own null there.
        return {k: v for k, v in issue.items() if not k.startswith("_") and not (k == "state_reason" and v is None)}

    def make_searchable(self) -> None:
        with self._lock:
            for issue in self.issues.values():
                issue.pop("_unsearchable", None)


class _Answered(Exception):
    pass


def main() -> None:  # python -m tests.fakes.github_server: a fake to point a local stack at
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--token", default="test-token")
    args = parser.parse_args()
    with FakeGitHub(token=args.token) as gh:
        print(f"GITHUB_API_URL={gh.url} GITHUB_REPO={gh.repo_full} GITHUB_TOKEN={args.token}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
