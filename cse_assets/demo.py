"""`make demo`: materialize the whole graph for the bundled symbols, publish, serve, and show a request.

Runs the `refresh` job in this process against the instance in $DAGSTER_HOME (so the runs appear in
`make ui`), creates a demo API token, starts `cse-serving serve` on 127.0.0.1:8000 in the background
(its PID in $CSE_HOME/serving.pid; `make stop` ends it), sends one real prediction and prints the curl.
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
from cse_assets.partitions import BUNDLED_SYMBOLS, ensure_symbol_partitions
from cse_assets.resources import ModelStoreResource, cse_home_from_env

HOST, PORT = "127.0.0.1", 8000
BASE_URL = f"http://{HOST}:{PORT}"
# The UI keeps the full event log; the console shows warnings only. Publication is NOT forced: a version is
# published when at least one head of the model beats its naive reference out of sample.
DEMO_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_all(instance: DagsterInstance) -> None:
    ensure_symbol_partitions(instance, BUNDLED_SYMBOLS)
    job = defs.resolve_job_def("refresh")
    for symbol in BUNDLED_SYMBOLS:
        started = time.perf_counter()
        print(f"==> refresh {symbol}: klines → features → scaler → datasets → model → onnx → evaluation → publish")
        result = job.execute_in_process(
            partition_key=symbol, instance=instance, run_config=DEMO_RUN_CONFIG, raise_on_error=False
        )
        if not result.success:
            sys.exit(f"refresh {symbol} failed; see `make ui` for the run's logs")
        published = result.asset_materializations_for_node("published_model")
        if not published:
            sys.exit(f"{symbol}: no head passed the promotion gate, nothing was published; see `make ui`")
        version = published[0].metadata["version"].value
        print(f"    published version {version} in {time.perf_counter() - started:.0f} s; heads (walk-forward):")
        manifest = ModelStoreResource().store().read_manifest(symbol, "1h", version)
        for head in manifest.heads:
            verdict = "served" if head.publish else "withheld"
            print(f"      {head.name:<10} skill {head.skill:+.2%} vs {head.reference:<18} {verdict}: {head.reason}")


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


def create_token(home: Path) -> str:
    from cse_serving.auth import TokenStore
    from cse_serving.settings import Settings

    store = TokenStore(Settings.from_env().db_path)
    try:
        return store.create(f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    finally:
        store.close()


def request_body(home: Path, symbol: str, rows: int = 256) -> dict:
    """The latest clean klines of `symbol` from the `klines` asset, in Binance's REST field names."""
    klines = pl.read_parquet(home / "assets" / "klines" / f"{symbol}.parquet").tail(rows)
    table = klines.select(
        pl.col("open_time").dt.epoch("ms"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.col("close_time").dt.epoch("ms"),
    )
    return {"symbol": symbol, "interval": "1h", "klines": table.to_dicts()}


def post_predict(body: bytes, token: str) -> dict:
    request = urllib.request.Request(
        f"{BASE_URL}/predict",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> None:
    home = cse_home_from_env().absolute()
    home.mkdir(parents=True, exist_ok=True)
    materialize_all(DagsterInstance.get())
    token = create_token(home)
    start_server(home)
    body_path = home / "demo_request.json"
    body_path.write_text(json.dumps(request_body(home, BUNDLED_SYMBOLS[0])))
    answer = post_predict(body_path.read_bytes(), token)
    print("\n==> the API answers on", BASE_URL, "(OpenAPI at /schema; `make stop` stops it)")
    print(json.dumps(answer, indent=2))
    fetched = post_predict(json.dumps({"symbol": BUNDLED_SYMBOLS[1]}).encode(), token)
    print(f"\n==> {BUNDLED_SYMBOLS[1]} without klines (fetched server-side): as of {fetched['as_of']}")
    print(json.dumps(fetched.get("forecast") or fetched["prediction"], indent=2))
    print("\nTry it yourself (this token is shown once; `cse-serving token create` makes more):")
    print(
        f"  curl -s -X POST {BASE_URL}/predict -H 'Content-Type: application/json' \\\n"
        f"       -H 'Authorization: Bearer {token}' --data @{body_path}"
    )
    print("or let the server fetch the latest candles itself (the bundled sample in the demo):")
    print(
        f"  curl -s -X POST {BASE_URL}/predict -H 'Content-Type: application/json' \\\n"
        f"""       -H 'Authorization: Bearer {token}' --data '{{"symbol": "{BUNDLED_SYMBOLS[1]}"}}'"""
    )


if __name__ == "__main__":
    main()
