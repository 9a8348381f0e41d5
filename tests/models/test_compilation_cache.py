"""The persistent compilation cache: later processes reuse what earlier ones compiled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Compiles once with the cache elsewhere (a test session or a run worker that served another $CSE_HOME),
# then enables it in the directory under test and compiles a function; prints the number of cache entries
# there and the function's result.
PROBE = """
import sys
from pathlib import Path
import jax, jax.numpy as jnp
from cse_models.training.compilation_cache import enable_compilation_cache
enable_compilation_cache(sys.argv[1])
jax.jit(lambda x: x - 1)(jnp.ones(2)).block_until_ready()
enable_compilation_cache(sys.argv[2])
enable_compilation_cache(sys.argv[2])
value = float(jax.jit(lambda x: jnp.tanh(x) * 3 + 1)(jnp.arange(4.0))[1])
print(len(list(Path(sys.argv[2]).glob("*-cache"))), value)
"""


def _run(earlier: Path, cache: Path) -> tuple[int, float]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(earlier), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == 0, result.stderr
    entries, value = result.stdout.split()
    return int(entries), float(value)


def test_compilations_after_enabling_are_written_and_reused(tmp_path: Path) -> None:
    earlier, cache = tmp_path / "earlier", tmp_path / "jax_cache"
    first_entries, first_value = _run(earlier, cache)
    assert first_entries >= 1  # written there although the process had opened another cache first
    second_entries, second_value = _run(earlier, cache)
    assert second_entries == first_entries  # the second process found it instead of adding its own
    assert second_value == first_value
