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


@pytest.fixture(autouse=True)
def _forget_closed_dagster_instances() -> Iterator[None]:
    """Dagster 1.13's `DagsterInstance.__enter__` makes the instance's defs-state storage the current one
    (a ContextVar) and `__exit__` disposes the instance without resetting it, so after any
    `with instance_for_test()` the next definitions load in this process reads a deleted SQLite file.
    Tests are independent again once that variable is cleared after each of them."""
    yield
    if "dagster" in sys.modules:
        from dagster._core.storage.defs_state.base import _current_storage

        _current_storage.set(None)
