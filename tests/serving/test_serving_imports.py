"""The serving process must not load the training stack (DESIGN.md §1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("jax", "jaxlib", "flax", "optax", "orbax", "dagster")

PROBE = f"""
import sys
from cse_serving.app import create_app
from cse_serving.cli import main
from cse_serving.settings import Settings
create_app(Settings(store_root="missing-store", db_path="unused.db"))
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print(",".join(loaded))
assert "jax" not in sys.modules, loaded
assert not loaded, loaded
"""


def test_importing_the_app_leaves_jax_and_dagster_out(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
