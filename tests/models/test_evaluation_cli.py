"""`cse-models evaluate` on a plain `timestamp,open,high,low,close,volume` CSV, and that format's reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from cse_models.cli import _range_text
from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.csv_archive import read_kline_csv
from cse_models.data.file_sources import SampleSource
from cse_models.errors import DataError
from cse_models.evaluation import WalkForwardConfig, rows_needed
from cse_models.features.sets import get_feature_set
from cse_models.heads.layout import HEADS


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return klines


def write_plain(path: Path, klines: pl.DataFrame, time_format: str) -> Path:
    """The real candles as a plain OHLCV file; time as ISO text, or unix s / ms."""
    times = klines.get_column("open_time")
    column = {
        "iso": times.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "s": times.dt.epoch("s").cast(pl.String),
        "ms": times.dt.epoch("ms").cast(pl.String),
    }[time_format]
    table = klines.select("open", "high", "low", "close", "volume").insert_column(0, column.alias("timestamp"))
    table.write_csv(path)
    return path


@pytest.mark.parametrize("time_format", ["iso", "s", "ms"])
def test_plain_ohlcv_csv_reads_back_the_same_candles(sample, tmp_path, time_format):
    klines = sample.tail(48)
    read = read_kline_csv(write_plain(tmp_path / "plain.csv", klines, time_format))
    cols = ["open_time", "open", "high", "low", "close", "volume"]
    assert read.select(cols).equals(klines.select(cols))


def test_plain_csv_iso_offsets_are_converted_to_utc(tmp_path):
    path = tmp_path / "offset.csv"
    path.write_text("time,open,high,low,close,volume\n2024-03-01T02:00:00+02:00,1,2,0.5,1.5,10\n")
    assert read_kline_csv(path)["open_time"][0].isoformat() == "2024-03-01T00:00:00+00:00"


def test_plain_csv_with_a_bad_time_names_its_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2024-03-01T00:00:00Z,1,2,0.5,1.5,10\nyesterday,1,2,0.5,1,1\n"
    )
    with pytest.raises(DataError, match=r"'timestamp' row 1 is neither a unix time nor ISO-8601 \('yesterday'\)"):
        read_kline_csv(path)


def test_short_ranges_read_as_last_n_units():
    assert _range_text("2y") == "last 2 years" and _range_text("90d") == "last 90 days"
    assert _range_text("last 2 years") == "last 2 years" and _range_text(None) is None


def _evaluate(*args: str) -> subprocess.CompletedProcess:
    """`cse-models evaluate` on BTCUSDT; the LSTM alone unless `--models` is given (the demo set's
    ensembles need more rows than these short files hold)."""
    models = () if "--models" in args else ("--models", "lstm_regressor")
    command = [sys.executable, "-m", "cse_models.cli", "evaluate", "--symbol", "BTCUSDT", *models, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


REFERENCES = {
    "price": "persistence",
    "interval": "trailing_quantiles",
    "volatility": "trailing_mean",
    "direction": "class_frequencies",
}


def test_evaluate_writes_every_heads_leaderboard_of_a_plain_csv(sample, tmp_path):
    csv = write_plain(tmp_path / "btc.csv", sample.tail(1000), "iso")
    result = _evaluate("--csv", str(csv), "--folds", "2", "--budget", "tiny", "--last", "60d", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "BTCUSDT"
    boards = json.loads((out / "leaderboard.json").read_text())
    assert list(boards) == list(HEADS)
    for head, board in boards.items():
        assert board["head"] == head and board["reference"] == REFERENCES[head]
        assert len(board["folds"]) == 2 and board["info"]["range"] == "last 60 days"
        assert board["info"]["task"] == "forecast" and board["info"]["feature_set"] == "stationary"
        names = {r["name"] for r in board["rows"]}
        assert {REFERENCES[head], "lstm_regressor"} <= names
        assert next(r for r in board["rows"] if r["name"] == REFERENCES[head])["skill"] == 0.0
        assert json.loads((out / head / "leaderboard.json").read_text()) == board
        assert f"| {REFERENCES[head]} | baseline |" in result.stdout
    price = {r["name"] for r in boards["price"]["rows"]}
    assert price == {"persistence", "drift", "moving_average", "ridge_returns", "lstm_regressor"}
    assert (out / "leaderboard.md").read_text() == result.stdout.rstrip("\n") + "\n"
    promotion = json.loads((out / "promotion.json").read_text())
    assert set(promotion) == {"lstm_regressor"} and set(promotion["lstm_regressor"]) == set(HEADS)
    for decision in promotion["lstm_regressor"].values():
        assert isinstance(decision["publish"], bool) and decision["max_p_value"] == 0.05
        assert decision["passed"] is (decision["publish"] and not decision["forced"])
    assert "fold 2/2: lstm_regressor" in result.stderr  # the progress display


def test_evaluate_with_too_few_rows_says_how_many_are_needed(sample, tmp_path):
    csv = write_plain(tmp_path / "short.csv", sample.tail(200), "ms")
    result = _evaluate("--csv", str(csv), "--folds", "5", "--out", str(tmp_path))
    assert result.returncode == 2
    error = result.stderr.splitlines()[-1]
    assert error.startswith("cse-models: insufficient history: 200 candles, "), result.stderr
    assert "for 5 walk-forward folds" in error
    needed = int(error.split("candles, ")[1].split()[0])
    warmup = get_feature_set("stationary").warmup  # counted in klines: the warm-up rows have no features
    assert needed == rows_needed(DataConfig(), WalkForwardConfig(n_folds=5)) + warmup > 200
