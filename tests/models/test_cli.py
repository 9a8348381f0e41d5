"""`cse-models` from a shell: real subprocesses, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cse_models.data.file_sources import SAMPLE_DIR
from cse_models.heads.layout import HEADS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cse_models.cli", *args], capture_output=True, text=True, timeout=300)


def test_clean_prints_the_cleaning_report_of_a_csv():
    result = _run("clean", "--csv", str(SAMPLE_DIR / "Binance_BTCUSDT_1h.csv"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["duplicates_removed"] > 0
    assert report["rows_out"] + report["duplicates_removed"] + report["bad_ticks"] == report["rows_in"]


def test_a_bad_csv_exits_2_with_the_reason(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT\n1,2,3\n")
    result = _run("clean", "--csv", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("cse-models: ")


def test_list_shows_registered_models_with_parameter_counts():
    result = _run("list")
    assert result.returncode == 0, result.stderr
    assert "lstm_regressor" in result.stdout and "202,369" in result.stdout


def test_train_shows_progress_and_publishes_a_verified_version(tmp_path: Path):
    from cse_models.store import open_store

    result = _run(
        "train",
        "--symbol",
        "ETHUSDT",
        "--budget",
        "tiny",
        "--preset",
        "demo",
        "--range",
        "last 60 days",
        "--out",
        str(tmp_path / "out"),
        "--publish",
        str(tmp_path / "store"),
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stderr
    summary = json.loads(result.stdout)
    manifest, _ = open_store(tmp_path / "store").verified("ETHUSDT", "1h", summary["published_version"])
    assert manifest.members[0].architecture == "lstm_regressor"
    assert manifest.task == "forecast" and manifest.feature_set == "stationary"  # DataConfig()
    # every head carries the verdict of the walk-forward gate the CLI ran before publishing
    assert [h.name for h in manifest.heads] == list(HEADS)
    assert {h.name: h.publish for h in manifest.heads} == {h: v["publish"] for h, v in summary["heads"].items()}
