"""Suite-wide: checks marked `slow` run only with CSE_SLOW=1, so `make test` stays a few minutes on 2 cores."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CSE_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set CSE_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
