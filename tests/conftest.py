"""Suite-wide: checks marked `slow` run only with CSE_SLOW=1, so `make test` stays a few minutes on 2 cores;
and no test inherits another's Dagster instance."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CSE_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set CSE_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _clear_current_defs_state_storage() -> None:
    if "dagster" in sys.modules:
        from dagster._core.storage.defs_state.base import _current_storage

        _current_storage.set(None)


@pytest.fixture(autouse=True)
def _forget_closed_dagster_instances() -> Iterator[None]:
    """Dagster 1.13's `DagsterInstance.__enter__` makes the instance's defs-state storage the current one
    (a ContextVar) and `__exit__` disposes the instance without resetting it, so after any
    `with instance_for_test()` the next definitions load in this process reads a deleted SQLite file (or,
    once the instance is collected, fails "Attempted to resolve undefined DagsterInstance weakref").
    Tests are independent again once that variable is cleared after each of them."""
    yield
    _clear_current_defs_state_storage()


@pytest.fixture(scope="module", autouse=True)
def _forget_instances_of_the_previous_module() -> Iterator[None]:
    """The same, before a module's own module-scoped fixtures (a whole materialization, set up once): the
    previous module's module-scoped instances are torn down after its last test's function fixtures, so
    the clearing above comes too early for them."""
    _clear_current_defs_state_storage()
    yield
