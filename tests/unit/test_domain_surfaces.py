"""Domains meet through functions that say what they need, never by handing each other DynamoDB
writes (issue 20, point 3): no public function of a domain's service returns a write object, and
no module of one domain calls another domain's store, queue or blobs. Checked on the source, so a
new domain is covered the day it lands."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITE_TYPES = re.compile(r"\b(Write|Put|Update|Delete|ConditionCheck)\b")
PRIVATE_TO_A_DOMAIN = ("store", "queue", "blobs", "adapters")


def _domain_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "chalicelib").glob("*/*.py") if p.parent.name not in ("core", "aws", "events"))


def test_no_public_service_function_returns_a_dynamodb_write():
    offenders = []
    for path in sorted((ROOT / "chalicelib").glob("*/service.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns is not None:
                if WRITE_TYPES.search(ast.unparse(node.returns)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} -> {ast.unparse(node.returns)}")
    assert not offenders, "offer a require_*(tx, ...) function that adds its own named check instead: " + "; ".join(offenders)


def test_no_domain_imports_another_domains_store_or_adapters():
    offenders = []
    for path in _domain_modules():
        domain = path.parent.name
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if (len(parts) >= 3 and parts[0] == "chalicelib" and parts[1] not in (domain, "aws", "core", "events")
                        and parts[2] in PRIVATE_TO_A_DOMAIN):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offenders, "; ".join(offenders)


def test_the_check_sees_an_offender():
    source = "from chalicelib.agents import store as agents_store\ndef active(org) -> dynamo.ConditionCheck: ...\n"
    tree = ast.parse(source)
    returns = [ast.unparse(n.returns) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.returns]
    assert WRITE_TYPES.search(returns[0])
    imported = [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert imported[0].split(".")[2] in PRIVATE_TO_A_DOMAIN
