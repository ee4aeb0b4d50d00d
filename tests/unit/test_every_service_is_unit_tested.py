"""Every service module has a unit test on the fake unit of work, without moto (issue 20).

A service module `chalicelib/<domain>/service.py` counts as tested when a module
tests/unit/test_services_*.py names its domain in its file name (test_services_agents.py,
test_services_jobs_agents_orgs.py), imports it (`from chalicelib.<domain> import service`,
`from chalicelib.<domain>.service import ...` or `import chalicelib.<domain>.service`; a test
that only stubs another domain's service does not name that domain) and does not reach for
moto: those tests run on tests/unit/fakes.py's unit of work.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

def service_modules() -> set[str]:
    return {f"chalicelib.{path.parent.name}.service" for path in (ROOT / "chalicelib").glob("*/service.py")}


def services_named_by(test: Path) -> set[str]:
    """The service modules a test module imports."""
    named = set()
    for node in ast.walk(ast.parse(test.read_text(), str(test))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.endswith(".service"):
                named.add(node.module)
            named |= {f"{node.module}.{alias.name}" for alias in node.names if alias.name == "service"}
        elif isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names if alias.name.endswith(".service")}
    return {name for name in named if name.startswith("chalicelib.")}


def uses_moto(test: Path) -> bool:
    """Imports moto, or names its mock_aws."""
    for node in ast.walk(ast.parse(test.read_text(), str(test))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "moto" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "moto":
            return True
        if isinstance(node, ast.Name) and node.id == "mock_aws":
            return True
    return False


def unit_tests() -> dict[str, list[str]]:
    """service module -> the unit test modules (tests/unit/test_services_*.py, no moto) that import it."""
    tested: dict[str, list[str]] = {}
    for test in sorted((ROOT / "tests" / "unit").glob("test_services_*.py")):
        if uses_moto(test):
            continue
        named_domains = test.stem.removeprefix("test_services_")
        for service in services_named_by(test):
            if service.split(".")[1] in named_domains:
                tested.setdefault(service, []).append(test.name)
    return tested


def test_every_service_module_has_a_unit_test_module():
    untested = service_modules() - unit_tests().keys()
    assert not untested, (f"service modules with no tests/unit/test_services_*.py importing them "
                          f"(add one, on tests/unit/fakes.py's fake_ctx): {sorted(untested)}")


def test_the_scan_reads_each_form_of_import(tmp_path):
    sample = tmp_path / "test_services_sample.py"
    sample.write_text("from chalicelib.jobs import models, service as jobs\n"
                      "from chalicelib.tasks.service import create\nimport chalicelib.ops.service\n"
                      "from chalicelib.logs import store\n")
    assert services_named_by(sample) == {"chalicelib.jobs.service", "chalicelib.tasks.service",
                                         "chalicelib.ops.service"}
