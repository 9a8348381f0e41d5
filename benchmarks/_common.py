"""Shared helpers for the benchmark scripts: the default/full sweep switch, machine info, versions,
percentiles, JSON results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SEED_DIR = ROOT.parent / "shared" / "bench" / "seed_baseline"
_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """`[  42 s] message`: which stage a run is in and how long it has taken so far."""
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {message}", flush=True)


def parse_with_sweep(parser: argparse.ArgumentParser, full: dict[str, object], adds: str) -> argparse.Namespace:
    """Parse the command line with `--full`, which switches the option defaults to `full`.

    Why: every script's default is a run of a few minutes that a newcomer can start on 2 cores; `--full`
    is the sweep the README's figures come from. Options given on the command line win either way, and
    `--help` lists what `--full` sets. `args.sweep` ("default" | "full") goes into the JSON."""
    settings = " ".join(_as_option(name, value) for name, value in full.items())
    parser.add_argument("--full", action="store_true", help=f"the full sweep: {adds} (sets {settings})")
    if parser.parse_known_args()[0].full:
        parser.set_defaults(**full)
    args = parser.parse_args()
    args.sweep = "full" if args.full else "default"
    return args


def _as_option(name: str, value: object) -> str:
    """How a `full` setting reads on a command line: `--rows 10000 100000`, `--lstm-sizes ''`, `--profile`."""
    flag = f"--{name.replace('_', '-')}"
    if isinstance(value, bool):
        return flag if value else f"(no {flag})"
    if isinstance(value, list | tuple):
        return f"{flag} {' '.join(str(v) for v in value)}"
    return f"{flag} {value if value != '' else repr(value)}"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method), q in [0, 100]."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def versions(packages: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git() -> dict[str, object]:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def machine_info() -> dict[str, object]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "timestamp_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else None,
        "mem_total_gib": _mem_gib(),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git": _git(),
    }


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def warn_if_busy(seconds: float = 1.0) -> dict[str, object]:
    """Sample how busy the CPUs are right now (not the lagging load average); warn above 20 %."""
    out: dict[str, object] = {"loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return out
    busy = 1.0 - (idle1 - idle0) / max(total1 - total0, 1)
    out["cpu_busy_before_start"] = round(busy, 3)
    if busy > 0.2:
        print(f"warning: CPUs {busy:.0%} busy before the start: other work is running, expect noise")
    return out


def write_json(name: str, payload: dict) -> Path:
    """Write `benchmarks/results/<name>.json` atomically (via a .tmp file, ignored by git)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A right-aligned plain-text table (first column left-aligned)."""
    text = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    for n, row in enumerate(text):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
