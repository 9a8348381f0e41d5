"""The persistent XLA compilation cache: compiled train, evaluation and serving functions written to disk
and reused by every later process and run on the machine.

On small budgets about half of a training step's time is XLA compilation, not training, and an hourly
refresh compiles the same functions at the same shapes as the hour before. With the cache the next
BTCUSDT refresh on the demo budget took 31–37 s instead of the first one's 59–75 s
(benchmarks/bench_refresh.py, 2 CPU cores). JAX keys each entry by the computation, the compile
options and the backend, so a changed model or a new JAX version simply misses.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MAX_BYTES = 2 * 2**30  # least recently used entries are evicted past this


def enable_compilation_cache(directory: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Cache every later compilation of this process in `directory` (created if missing); idempotent.

    JAX opens its cache once, at the first compilation of the process: when the directory changes, the
    cache is reset so that the new one is used even after earlier compilations (tests, a long-lived run
    worker). The directory must be writable only by its owner: JAX runs what it finds there."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = Path(directory).absolute()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # small steps add up on CPU
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    if jax.config.jax_compilation_cache_dir != str(path):
        jax.config.update("jax_compilation_cache_dir", str(path))
        compilation_cache.reset_cache()
    return path
