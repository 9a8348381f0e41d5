"""`cse-demo` (`make demo`): materialize the whole graph for the bundled symbols, train the global models
over them, serve a symbol they never saw with no training, publish, serve, and show a request — each part
used the way its users use it.

- the graph through Dagster's API, run in this process against the instance in $DAGSTER_HOME (so the runs
  appear in `make ui`): `data_refresh` for BTCUSDT, ETHUSDT, LTCUSDT and DOTUSDT, `global_training` (one
  graph per spec learning from all four), the `refresh` job for each (its own models, then the global
  graphs checked on its rows after the global cut and published where they serve as many heads), and
  `serve_new_symbol` for SOLUSDT, added last — data, zero-shot check and publication, nothing trained.
  Everything printed is read from the materializations' metadata;
- the API through its command: `cse-serving token create` for a demo token, `cse-serving serve` on
  127.0.0.1:8000 in the background (its PID in $CSE_HOME/serving.pid; `make stop` ends it);
- predictions over HTTP, as a client: one with the latest klines of the bundled sample, cleaned by the same
  `clean_klines` the klines asset applies, and one without klines that the server fetches itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from dagster import DagsterInstance

from cse_assets.definitions import defs
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import cse_home_from_env
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource

HOST, PORT = "127.0.0.1", 8000
BASE_URL = f"http://{HOST}:{PORT}"
INTERVAL = "1h"
# The UI keeps the full event log; the console shows warnings only. Publication is NOT forced: a version is
# published when at least one head of the model beats its naive reference out of sample.
DEMO_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
HEAD_STATES = {"yes": "served", "no": "withheld", "forced": "forced"}
# Each trains its own models, and the global models learn from all four; SOLUSDT (eight months, 2021) is added
# afterwards and served by the global models with no training — the case a global model exists for.
OWN_SYMBOLS = ("BTCUSDT", "ETHUSDT", "LTCUSDT", "DOTUSDT")
NEW_SYMBOL = "SOLUSDT"


def run_job(name: str, instance: DagsterInstance, partition: str | None = None):
    """One run of a `cse_assets` job in this process; exits with a pointer to the UI when it fails."""
    result = defs.resolve_job_def(name).execute_in_process(
        partition_key=partition, instance=instance, run_config=DEMO_RUN_CONFIG, raise_on_error=False
    )
    if not result.success:
        sys.exit(f"{name} {partition or ''} failed; see `make ui` for the run's logs")
    return result


def refresh(instance: DagsterInstance, symbol: str) -> None:
    """The whole per-symbol graph: its own models trained, walked forward and published, then the global
    graphs checked on its rows after the global cut and published in their place where they serve as many
    heads."""
    started = time.perf_counter()
    print(f"==> refresh {symbol}: klines → features → models → onnx → evaluation → publish, then the global check")
    result = run_job("refresh", instance, symbol)
    published = result.asset_materializations_for_node("published_model")
    if not published:
        sys.exit(f"{symbol}: no head passed the promotion gate, nothing was published; see `make ui`")
    metadata = published[0].metadata
    elapsed = time.perf_counter() - started
    print(f"    own model: version {metadata['version'].value} in {elapsed:.0f} s: {metadata['selected'].value}")
    if "ensemble_choice" in metadata:
        print(f"    {metadata['ensemble_choice'].value}")
    print("    heads (walk-forward):")
    for row in (record.data for record in metadata["heads"].records):
        head, reference, state = row["head"], row["reference"], HEAD_STATES[row["served"]]
        print(f"      {head:<10} skill {row['skill']:+.2%} vs {reference:<18} {state}: {row['verdict']}")
    print_global(result)


def train_global(instance: DagsterInstance) -> None:
    started = time.perf_counter()
    print(f"==> global models: one graph per model spec, learning from {', '.join(OWN_SYMBOLS)} at once")
    for symbol in OWN_SYMBOLS:
        run_job("data_refresh", instance, symbol)
    result = run_job("global_training", instance)
    for materialization in result.get_asset_materialization_events():
        metadata = materialization.materialization.metadata
        key = materialization.asset_key.to_user_string()
        learners = ", ".join(metadata["learners"].value)
        print(f"    {key}: learned from {learners} before {metadata['learned_before'].value}")
    print(f"    data and global models in {time.perf_counter() - started:.0f} s")


def _skill(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2%}"


def print_global(result) -> None:
    """What a run's `global_evaluation` and `published_global` say: global vs own vs HAR per head (the global
    graphs held out after the cut, the own models walked forward), and what was published."""
    check = result.asset_materializations_for_node("global_evaluation")[0].metadata
    published = result.asset_materializations_for_node("published_global")[0].metadata
    if not check["checkable"].value:
        print(f"    global models: {check['reason'].value}; {published['keeps'].value}")
        return
    print(f"    {'head':<10} {'best global (held out)':<40} {'own (walk-forward)':<30} HAR")
    for row in (record.data for record in check["global_vs_own"].records):
        best = f"{_skill(row['global_skill'])} {row['best_global']} (p {row['global_dm_p']:.3g})"
        own = f"{_skill(row['own_skill'])} {row['best_own'] or ''}"
        print(f"    {row['head']:<10} {best:<40} {own:<30} {_skill(row['har_skill'])}")
    if published["published"].value:
        heads = [f"{r['head']} {HEAD_STATES[r['served']]}" for r in (x.data for x in published["heads"].records)]
        graph = published["graph_sha256"].value[:12]
        print(f"    global model published: version {published['version'].value} (graph {graph}…): {', '.join(heads)}")
    else:
        print(f"    global model not published: {published['reason'].value}")


def serve_new_symbol(instance: DagsterInstance, symbol: str) -> None:
    """A symbol the global models never saw: its data, their held-out check on it, publication — no training."""
    ensure_symbol_partitions(instance, [symbol])
    started = time.perf_counter()
    result = run_job("serve_new_symbol", instance, symbol)
    print(f"==> {symbol} added: served zero-shot by the global models in {time.perf_counter() - started:.1f} s")
    print_global(result)


def materialize_all(instance: DagsterInstance) -> None:
    ensure_symbol_partitions(instance, OWN_SYMBOLS)
    train_global(instance)
    for symbol in OWN_SYMBOLS:
        refresh(instance, symbol)
    serve_new_symbol(instance, NEW_SYMBOL)


def create_token(name: str) -> str:
    """A user token from `cse-serving token create`, which prints it once on stdout."""
    command = [sys.executable, "-m", "cse_serving", "token", "create", "--name", name]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"`cse-serving token create` failed (code {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def stop_previous_server(pid_file: Path) -> None:
    if not pid_file.is_file():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


def start_server(home: Path) -> subprocess.Popen:
    pid_file = home / "serving.pid"
    stop_previous_server(pid_file)
    log = (home / "serving.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "cse_serving", "serve", "--host", HOST, "--port", str(PORT)],
        # /predict without klines fetches them server-side: from the bundled sample here, offline.
        env={"CSE_SERVING_SOURCE": "sample", **os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    for _ in range(150):
        if process.poll() is not None:
            sys.exit(f"the API server exited (code {process.returncode}); see {home / 'serving.log'}")
        try:
            with urllib.request.urlopen(f"{BASE_URL}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    sys.exit(f"the API server did not become ready; see {home / 'serving.log'}")


def request_body(symbol: str, rows: int = 256) -> dict:
    """A /predict body as a client builds it: the latest `rows` klines of `symbol` from the bundled sample (the
    demo's source), cleaned as the klines asset cleans them, times as unix ms in Binance's REST field names."""
    clean, _ = clean_klines(SampleSource().fetch(symbol, INTERVAL, None, None), INTERVAL)
    table = clean.tail(rows).select(
        pl.col("open_time").dt.epoch("ms"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.col("close_time").dt.epoch("ms"),
    )
    return {"symbol": symbol, "interval": INTERVAL, "klines": table.to_dicts()}


def post_predict(body: bytes, token: str) -> dict:
    request = urllib.request.Request(
        f"{BASE_URL}/predict",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def print_curls(token: str, body_path: Path, fetched_symbol: str) -> None:
    print("\nTry it yourself (this token is shown once; `cse-serving token create` makes more):")
    print(
        f"  curl -s -X POST {BASE_URL}/predict -H 'Content-Type: application/json' \\\n"
        f"       -H 'Authorization: Bearer {token}' --data @{body_path}"
    )
    print("or let the server fetch the latest candles itself (the bundled sample in the demo):")
    print(
        f"  curl -s -X POST {BASE_URL}/predict -H 'Content-Type: application/json' \\\n"
        f"""       -H 'Authorization: Bearer {token}' --data '{{"symbol": "{fetched_symbol}"}}'"""
    )


def main() -> int:
    home = cse_home_from_env().absolute()
    home.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.get() as instance:
        materialize_all(instance)
    token = create_token(f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    start_server(home)
    given, fetched_symbol = OWN_SYMBOLS[0], NEW_SYMBOL
    body_path = home / "demo_request.json"
    body_path.write_text(json.dumps(request_body(given)))
    answer = post_predict(json.dumps({**json.loads(body_path.read_text()), "members": True}).encode(), token)
    print("\n==> the API answers on", BASE_URL, "(OpenAPI at /schema; `make stop` stops it)")
    print(json.dumps(answer, indent=2))
    fetched = post_predict(json.dumps({"symbol": fetched_symbol}).encode(), token)
    print(f"\n==> {fetched_symbol} without klines (fetched server-side): as of {fetched['as_of']}")
    print(json.dumps(fetched.get("forecast") or fetched["prediction"], indent=2))
    print_curls(token, body_path, fetched_symbol)
    return 0
