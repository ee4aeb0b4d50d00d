"""End-to-end fixtures: the real app on the local stack, over real HTTP and WebSockets."""
from __future__ import annotations

import pytest

from devstack.testing import Devstack, running_devstack


@pytest.fixture(scope="session")
def devstack() -> Devstack:
    """The real app (module `app`) served by `python -m devstack` on a free port, for the whole session."""
    with running_devstack(app_module="app") as stack:
        yield stack
    assert stack.returncode == 0, f"devstack did not stop cleanly:\n{stack.log_tail()}"
