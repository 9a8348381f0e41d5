"""Refresh benchmark: the `refresh` job for one symbol on the demo budget, end to end, from a fresh instance.

Two ways a refresh runs, each timed as wall clock around a fresh Python process (imports included), with
the CPU time of that process and its children (steady where wall clock suffers from other load):
- `run`: as a run launched from the UI executes it — `dagster job execute -m cse_assets.definitions -a defs
  -j refresh`, with the job's own executor (before issue 14: the default multiprocess executor, every
  step a spawned subprocess that imports the definitions, and JAX with them).
- `in_process`: as `make demo` does it — `defs.resolve_job_def("refresh").execute_in_process(...)`.

Each mode gets its own temporary CSE_HOME and DAGSTER_HOME (the repository's dagster.yaml), the symbol
added as a partition first, and refreshes `--runs` times there: the first run starts from nothing, the
next ones are the next hourly refresh (same data; whatever the first left behind, such as the JAX
compilation cache in $CSE_HOME/jax_cache, is reused). Per-step durations come from each run's event log;
`overhead_s` is the wall time not spent inside any step (process starts, imports, the executor's own
bookkeeping; negative when steps ran in parallel).

    .venv/bin/python benchmarks/bench_refresh.py [--full] [--symbol BTCUSDT] [--modes in_process] [--runs 1]
        [--src DIR] [--label NAME] [--run-config FILE]

Default run (a few minutes on 2 cores): one `in_process` refresh from nothing. `--full` runs both modes twice
each (the first refresh and the next hourly one), the sweep the README's figures come from.

`--src` puts another checkout first on PYTHONPATH (e.g. `git archive HEAD~3 | tar -x -C /tmp/before`), so
the same script measures the code before and after a change; `--run-config` runs the `run` mode with
another executor's config, as far as the definitions allow it. Writes benchmarks/results/bench_refresh.json
(one entry per label, mode and run, merged with what is there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, ROOT, machine_info, parse_with_sweep, print_table, warn_if_busy, write_json

IN_PROCESS = """
import sys
from dagster import DagsterInstance
from cse_assets.definitions import defs
with DagsterInstance.get() as instance:
    result = defs.resolve_job_def("refresh").execute_in_process(
        partition_key=sys.argv[1], instance=instance, raise_on_error=False
    )
sys.exit(0 if result.success else 1)
"""

STEP_STATS = """
import json
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    (run,) = instance.get_runs(limit=1)
    steps = {
        s.step_key: round(s.end_time - s.start_time, 2)
        for s in instance.get_run_step_stats(run.run_id)
        if s.start_time and s.end_time
    }
    print(json.dumps({"steps": steps}))
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--modes", nargs="+", choices=("run", "in_process"), default=["in_process"])
    p.add_argument("--src", type=Path, help="checkout to import cse from (default: this one)")
    p.add_argument("--label", default="current")
    p.add_argument("--run-config", type=Path, help="run config (YAML) for the `run` mode, e.g. another executor")
    p.add_argument("--runs", type=int, default=1, help="refreshes per mode in the same homes")
    full = {"modes": ["run", "in_process"], "runs": 2}
    return parse_with_sweep(p, full, "both modes, and a second refresh in each mode's homes")


def environment(src: Path | None, home: Path) -> dict[str, str]:
    env = {**os.environ, "CSE_HOME": str(home / "cse"), "DAGSTER_HOME": str(home / "dagster")}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def python(code_or_args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], env=env, cwd=cwd, capture_output=True, text=True)


def refresh_command(mode: str, symbol: str, run_config: Path | None) -> list[str]:
    if mode == "in_process":
        return [sys.executable, "-c", IN_PROCESS, symbol]
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "job", "execute", "-m", "cse_assets.definitions", "-a", "defs", "-j", "refresh"]
    command += ["--tags", json.dumps({"dagster/partition": symbol})]
    return command + (["-c", str(run_config.absolute())] if run_config else [])


def refresh(mode: str, symbol: str, src: Path | None, run_config: Path | None, runs: int) -> list[dict]:
    """`runs` refreshes of `symbol` in one fresh pair of homes."""
    cwd = src or ROOT
    results = []
    with tempfile.TemporaryDirectory(prefix="cse-bench-refresh-") as tmp:
        home = Path(tmp)
        (home / "dagster").mkdir()
        shutil.copy(cwd / "dagster.yaml", home / "dagster" / "dagster.yaml")
        env = environment(src, home)
        added = python(["-m", "cse_assets.partitions", "add", symbol], env, cwd)
        if added.returncode:
            raise SystemExit(f"adding the partition failed:\n{added.stderr[-3000:]}")
        where = python(["-c", "import cse_assets; print(cse_assets.__file__)"], env, cwd).stdout.strip()
        for index in range(runs):
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(
                refresh_command(mode, symbol, run_config), env=env, cwd=cwd, capture_output=True, text=True
            )
            wall = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            if done.returncode:
                print(done.stdout[-3000:], done.stderr[-6000:], sep="\n")
                raise SystemExit(f"{mode} refresh of {symbol} failed (exit {done.returncode})")
            steps = json.loads(python(["-c", STEP_STATS], env, cwd).stdout or "{}").get("steps", {})
            results.append(
                {
                    "mode": mode,
                    "run": index + 1,
                    "symbol": symbol,
                    "cse_assets": where,
                    "run_config": run_config.read_text() if run_config and mode == "run" else None,
                    "wall_s": round(wall, 1),
                    "cpu_s": round(cpu, 1),
                    "steps_s": round(sum(steps.values()), 1),
                    "overhead_s": round(wall - sum(steps.values()), 1),
                    "steps": steps,
                }
            )
    return results


def main() -> None:
    args = parse_args()
    busy = warn_if_busy()
    results = [
        {**r, "sweep": args.sweep}
        for mode in args.modes
        for r in refresh(mode, args.symbol, args.src, args.run_config, args.runs)
    ]
    print_table(
        ["mode", "run", "wall s", "cpu s", "in steps s", "overhead s", "steps"],
        [
            (r["mode"], r["run"], r["wall_s"], r["cpu_s"], r["steps_s"], r["overhead_s"], len(r["steps"]))
            for r in results
        ],
    )
    path = RESULTS_DIR / "bench_refresh.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    runs = {**previous.get("runs", {}), **{f"{args.label}/{r['mode']}/{r['run']}": r for r in results}}
    write_json("bench_refresh", {**previous, "runs": runs, "machine": {**machine_info(), **busy}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
