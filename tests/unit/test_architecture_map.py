"""docs/ARCHITECTURE.md's map names every package under chalicelib/ (issue 20, point 6).

The map is the table between `<!-- domain-map:begin -->` and `<!-- domain-map:end -->`; its
first column names a package in backticks. A package that appears under chalicelib/ without a
line there fails this test, so the map cannot fall behind the tree.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- domain-map:begin -->", "<!-- domain-map:end -->"


def mapped_packages(markdown: str) -> dict[str, str]:
    """{package: what it may touch} from the marked table (ValueError when the markers or rows are missing)."""
    if markdown.count(BEGIN) != 1 or markdown.count(END) != 1:
        raise ValueError("the map's markers must each appear once")
    table = markdown.split(BEGIN, 1)[1].split(END, 1)[0]
    rows: dict[str, str] = {}
    for line in table.strip().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([a-z_][a-z0-9_]*)`", cells[0])
        if name is None:
            continue  # the header and its rule
        if len(cells) != 3 or not all(cells):
            raise ValueError(f"map row {line!r}: three filled cells (package, what it is, may touch)")
        if name.group(1) in rows:
            raise ValueError(f"{name.group(1)} is in the map twice")
        rows[name.group(1)] = cells[2]
    if not rows:
        raise ValueError("the map has no rows")
    return rows


def packages_under(directory: Path) -> set[str]:
    """Every directory under chalicelib/ holding Python (a package, or a namespace package in the making)."""
    return {child.name for child in directory.iterdir()
            if child.is_dir() and not child.name.startswith((".", "_")) and any(child.glob("*.py"))}


def test_every_package_under_chalicelib_is_on_the_map():
    mapped = mapped_packages((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    missing = packages_under(ROOT / "chalicelib") - set(mapped)
    assert not missing, f"docs/ARCHITECTURE.md's map (between {BEGIN} and {END}) does not name {sorted(missing)}"


def test_the_map_names_the_domains_of_today():
    mapped = mapped_packages((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    assert {"core", "aws", "events", "agents", "jobs", "patches", "workspaces", "ops", "fanout", "console"} <= set(mapped)


def test_a_package_the_map_does_not_name_is_found(tmp_path):
    """The check itself: a new package beside the mapped ones is reported, __pycache__ and data dirs are not."""
    for name in ("agents", "newdomain", "__pycache__"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("")
    (tmp_path / "loose.py").write_text("")
    doc = f"text\n{BEGIN}\n| package | what | may touch |\n|---|---|---|\n| `agents` | agents | its store |\n{END}\n"
    assert packages_under(tmp_path) - set(mapped_packages(doc)) == {"newdomain"}


def test_a_broken_map_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="markers"):
        mapped_packages("no map here")
    with pytest.raises(ValueError, match="no rows"):
        mapped_packages(f"{BEGIN}\n| package | what | may touch |\n|---|---|---|\n{END}")
    with pytest.raises(ValueError, match="three filled cells"):
        mapped_packages(f"{BEGIN}\n| `jobs` | jobs |  |\n{END}")


def test_app_py_wires_and_reaches_aws_only_through_domain_adapters():
    """app.py is outside import-linter's graph (not a package): the same rule, checked on its imports."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name == "chalicelib.aws" or name.startswith("chalicelib.aws.")}



# Code that runs outside Lambda (docs/ARCHITECTURE.md, "Outside chalicelib"). import-linter holds
# agent/ (a root package there); edge_gateway/ and devstack/ are checked here on their imports.
# The one exception, named in the map: the local stack's management-API verifier shares the app
# signer's SigV4 pieces (chalicelib/aws/sigv4.py), so the two cannot drift apart.
OUTSIDE_LAMBDA_MAY_IMPORT = {"edge_gateway": (), "devstack": ("chalicelib.aws.sigv4",)}


def chalicelib_imports(package: Path) -> dict[str, set[str]]:
    """{file relative to `package`: what of chalicelib it imports} (`from m import a` counts as `m.a`)."""
    import ast

    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
        ours = {name for name in names if name == "chalicelib" or name.startswith("chalicelib.")}
        if ours:
            found[str(path.relative_to(package))] = ours
    return found


def not_allowed(imports: dict[str, set[str]], allowed: tuple[str, ...]) -> dict[str, set[str]]:
    return {path: bad for path, names in imports.items()
            if (bad := {n for n in names if not any(n == a or n.startswith(a + ".") for a in allowed)})}


@pytest.mark.parametrize("package", sorted(OUTSIDE_LAMBDA_MAY_IMPORT))
def test_code_outside_lambda_imports_no_chalicelib(package):
    offending = not_allowed(chalicelib_imports(ROOT / package), OUTSIDE_LAMBDA_MAY_IMPORT[package])
    assert not offending, f"{package}/ runs outside Lambda and must not import chalicelib: {offending}"


def test_the_outside_lambda_check_finds_an_import(tmp_path):
    """The check itself: any chalicelib import is found, the named exception passes, others do not."""
    (tmp_path / "tool.py").write_text("from chalicelib.jobs import service\nimport chalicelib.aws.dynamo\n")
    (tmp_path / "signer.py").write_text("from chalicelib.aws import sigv4\n")
    (tmp_path / "fine.py").write_text("import json\nfrom chalice import Chalice\n")
    imports = chalicelib_imports(tmp_path)
    assert imports == {"tool.py": {"chalicelib.jobs.service", "chalicelib.aws.dynamo"},
                       "signer.py": {"chalicelib.aws.sigv4"}}
    assert not_allowed(imports, ("chalicelib.aws.sigv4",)) == {
        "tool.py": {"chalicelib.jobs.service", "chalicelib.aws.dynamo"}}
    assert not_allowed(imports, ()) == imports
