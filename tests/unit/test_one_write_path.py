"""One write path (issue 20): only the unit of work's commit (core/tx.py) writes to DynamoDB.

An AST scan of chalicelib and app.py for every call that writes: chalicelib.aws.dynamo's
put/update/delete/transact/batch_put (as `dynamo.put(...)` or imported by name) and a raw
client's put_item/update_item/delete_item/transact_write_items/batch_write_item.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITES = {"put", "update", "delete", "transact", "batch_put"}
RAW_WRITES = {"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"}
# The unit of work's commit path, and the module that talks to DynamoDB for it.
COMMIT_PATH = {"chalicelib/core/tx.py", "chalicelib/aws/dynamo.py"}

def _direct_writes(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    imported = set()  # write functions imported by name from chalicelib.aws.dynamo
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "chalicelib.aws.dynamo":
            imported |= {alias.asname or alias.name for alias in node.names if alias.name in WRITES}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute):
            if fn.attr in RAW_WRITES or (fn.attr in WRITES and isinstance(fn.value, ast.Name)
                                         and fn.value.id == "dynamo"):
                found.append((node.lineno, fn.attr))
        elif isinstance(fn, ast.Name) and fn.id in imported:
            found.append((node.lineno, fn.id))
    return found


def _offenders() -> dict[str, list[tuple[int, str]]]:
    modules = [*sorted((ROOT / "chalicelib").rglob("*.py")), ROOT / "app.py"]
    result = {}
    for path in modules:
        name = path.relative_to(ROOT).as_posix()
        if name in COMMIT_PATH:
            continue
        writes = _direct_writes(path)
        if writes:
            result[name] = writes
    return result


def test_only_the_unit_of_work_writes_to_dynamodb():
    """Stores build writes; only core/tx.py's commit sends them (no allow-list: none is left)."""
    offenders = _offenders()
    assert not offenders, f"direct DynamoDB writes outside the unit of work (use ctx.tx() / ctx.bulk()): {offenders}"


def test_the_scan_finds_each_form_of_write(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from chalicelib.aws import dynamo\nfrom chalicelib.aws.dynamo import batch_put as bp\n"
                      "dynamo.put(x)\ndynamo.get(t, k)\nbp(t, [])\nclient.transact_write_items(TransactItems=[])\n")
    assert _direct_writes(sample) == [(3, "put"), (5, "bp"), (6, "transact_write_items")]
