"""docs/API.md is the API reference: every route of /openapi.json is in it, and it names no other."""
from __future__ import annotations

import re
from pathlib import Path

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
ROUTE_HEADING = re.compile(r"^### `(GET|HEAD|POST|PUT|PATCH|DELETE) (/\S*)`\s*$", re.MULTILINE)


def documented_routes() -> list[tuple[str, str]]:
    return [(method, path) for method, path in ROUTE_HEADING.findall(API_DOC.read_text())]


def test_every_route_of_openapi_is_documented_and_every_documented_route_exists(http):
    reply = http.get("/openapi.json")
    assert reply.status == 200
    served = {(method.upper(), path) for path, operations in reply.json["paths"].items() for method in operations}
    documented = documented_routes()
    assert len(documented) == len(set(documented)), "a route is documented twice"
    missing, stale = served - set(documented), set(documented) - served
    assert not missing, f"routes missing from docs/API.md (add a '### `METHOD /path`' section): {sorted(missing)}"
    assert not stale, f"docs/API.md documents routes the API does not serve: {sorted(stale)}"


def test_the_docs_point_inside_the_repository():
    root = API_DOC.parent.parent
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        assert "../shared" not in doc.read_text(), f"{doc.name} points outside the repository"
