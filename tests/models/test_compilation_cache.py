"""The persistent compilation cache: later processes reuse what earlier ones compiled — read back from
disk (JAX's cache-hit events, the entries' files untouched), not compiled again and rewritten under the
same key, which would leave the number of entries unchanged just the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Compiles once with the cache elsewhere (a test session or a run worker that served another $CSE_HOME),
# then enables it in the directory under test and compiles a function, counting JAX's persistent-cache
# events from there on: `cache_hits` (an executable read back) and `cache_misses` (one compiled and
# written). Prints them, the function's result and each entry file's (inode, mtime_ns, size) as JSON.
PROBE = """
import json, sys
from collections import Counter
from pathlib import Path
import jax, jax.numpy as jnp
from cse_models.training.compilation_cache import enable_compilation_cache
enable_compilation_cache(sys.argv[1])
jax.jit(lambda x: x - 1)(jnp.ones(2)).block_until_ready()
enable_compilation_cache(sys.argv[2])
enable_compilation_cache(sys.argv[2])
events = Counter()
jax.monitoring.register_event_listener(lambda event, **kwargs: events.update([event.rsplit("/", 1)[-1]]))
value = float(jax.jit(lambda x: jnp.tanh(x) * 3 + 1)(jnp.arange(4.0))[1])
files = {p.name: [p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size] for p in Path(sys.argv[2]).glob("*-cache")}
print(json.dumps({"hits": events["cache_hits"], "writes": events["cache_misses"], "value": value, "files": files}))
"""


def _run(earlier: Path, cache: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(earlier), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compilations_after_enabling_are_written_and_reused(tmp_path: Path) -> None:
    earlier, cache = tmp_path / "earlier", tmp_path / "jax_cache"
    first = _run(earlier, cache)
    # written there although the process had opened another cache first
    assert first["hits"] == 0 and first["writes"] >= 1 and len(first["files"]) == first["writes"], first
    second = _run(earlier, cache)
    # the second process read every executable back: no compilation, no entry rewritten or added
    assert second["hits"] == first["writes"] and second["writes"] == 0, second
    assert second["files"] == first["files"]
    assert second["value"] == first["value"]
