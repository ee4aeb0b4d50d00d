"""The top-level patch_engine package reaches Lambda (infra/package.py).

Chalice bundles only app.py, chalicelib/ and vendor/; the project copy that `chalice package`
runs in gets patch_engine/ under vendor/, and the --check path fails when no built zip holds it.
(`python -m infra.package --check` runs the real `chalice package` and lists the zips.)
"""
from __future__ import annotations

import zipfile

from infra import package


def test_the_project_copy_vendors_the_engine(tmp_path):
    project = package.copy_project(tmp_path, "dev", {"STACK_NAME": "x"})
    assert set(package.VENDORED_PACKAGES) >= {"patch_engine", "fleet_config"}
    for name in package.VENDORED_PACKAGES:
        vendored = project / "vendor" / name
        assert sorted(p.name for p in vendored.glob("*.py")) == sorted(
            p.name for p in (package.ROOT / name).glob("*.py"))
        assert not list(vendored.rglob("__pycache__"))
    assert (project / "chalicelib" / "patches" / "service.py").is_file()


def _zip(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "")


def test_missing_from_deployment_looks_in_the_app_zip_and_the_layer(tmp_path):
    engine = [f"{name}/{p.name}" for name in package.VENDORED_PACKAGES for p in (package.ROOT / name).glob("*.py")]
    _zip(tmp_path / "deployment.zip", ["app.py", "chalicelib/__init__.py", "chalicelib/core/api.py"])
    assert sorted(package.missing_from_deployment(tmp_path)) == sorted(engine)
    _zip(tmp_path / "layer-deployment.zip", [f"python/lib/python3.13/site-packages/{n}" for n in engine])
    assert package.missing_from_deployment(tmp_path) == []
