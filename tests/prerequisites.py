"""What some tests need from outside the repository — PostgreSQL's server binaries, the real
CryptoDataDownload files in ../shared/data — and the one rule for when it is missing: a skip on a
developer's machine, a failure under CI (env CI set), where its absence is a broken setup that would
otherwise pass the suite with those tests silently skipped.

A module of its own under tests/ (on sys.path through tests/conftest.py), like `postgres_server`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REAL_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def missing_prerequisite(reason: str, ci_setup: str) -> NoReturn:
    """Skip locally; under CI fail, naming what CI's setup (`ci_setup`) was meant to provide."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} ({ci_setup})")
    pytest.skip(reason)


def real_data_file(name: str) -> Path:
    """A real kline file of ../shared/data (e.g. `Binance_BTCUSDT_1h.csv`), or a skip / a CI failure."""
    path = REAL_DATA_DIR / name
    if not path.is_file():
        missing_prerequisite(f"real data file {path} not present", "CI provides ../shared/data beside the clone")
    return path
