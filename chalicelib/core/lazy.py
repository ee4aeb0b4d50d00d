"""A module imported on its first use, so a cold start does not pay for it.

Every Lambda function imports app.py, which registers every route; a routes
module that imported its service and models at registration would make each
cold start import every domain (and pydantic). Routes name their models by
string (see `core.api.endpoint`) and reach their service through a
`LazyModule`, typed as the real module for mypy. Every routes module opens
with the same four lines (the `duplicates` tool pairs modules whose openings
grow past them):

    if TYPE_CHECKING:
        from chalicelib.jobs import models, service
    else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
        models, service = domain_of(__name__)
    bp, TAG = Blueprint(__name__), "Agents and jobs"
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name`, which is imported on the first attribute read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None
        _CREATED.append(self)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for names the proxy itself lacks: every module attribute.
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self._module is not None else ''}>"


_CREATED: list[LazyModule] = []


def import_all() -> None:
    """Import every module a LazyModule stands for, now (see `core.api.load_all`)."""
    for module in list(_CREATED):
        module._module = importlib.import_module(module._name)


def lazy(name: str) -> Any:
    """A LazyModule for `name` (Any: callers declare the real module under TYPE_CHECKING)."""
    return LazyModule(name)


def domain_of(routes_module: str) -> tuple[Any, Any]:
    """LazyModules for the `models` and `service` beside a routes module (`chalicelib.jobs.routes`)."""
    package = routes_module.rpartition(".")[0]
    return lazy(f"{package}.models"), lazy(f"{package}.service")
