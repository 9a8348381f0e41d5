"""Global models end to end in the library: `cse-models evaluate --global` over real files (a symbol held
out as unseen), and one global graph trained, checked and published for several symbols — one sha256."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import compute_features
from cse_models.errors import DataError
from cse_models.evaluation.panel import GLOBAL_PREFIX
from cse_models.publication.assemble import publish_candidates
from cse_models.publication.global_model import (
    GlobalModel,
    check_global,
    global_candidates,
    keeps_current,
    train_global,
)
from cse_models.specs import ModelSpec
from cse_models.store import open_store
from cse_models.training.config import budget

SAMPLE = Path(__file__).resolve().parents[2] / "cse_models" / "data" / "sample"


def test_evaluate_global_scores_each_symbol_beside_its_own_models_and_an_unseen_one_zero_shot(tmp_path):
    files = [SAMPLE / f"Binance_{s}_1h.csv" for s in ("LTCUSDT", "DOTUSDT", "BTCUSDT")]  # BTC ends 2021-06
    command = [sys.executable, "-m", "cse_models.cli", "evaluate", "--global", "--unseen"]
    command += [str(SAMPLE / "Binance_SOLUSDT_1h.csv"), *(a for f in files for a in ("--csv", str(f)))]
    command += ["--models", "lightgbm", "--budget", "tiny", "--folds", "2", "--last", "150d", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "re-saved by a spreadsheet" in result.stderr  # the format of each file is named
    assert "models (--models): lightgbm (lightgbm, demo preset)" in result.stderr
    universe = json.loads((tmp_path / "universe.json").read_text())
    assert set(universe["symbols"]) == {"LTCUSDT", "DOTUSDT", "SOLUSDT"}
    assert universe["excluded"]["BTCUSDT"].startswith("insufficient history: 0 candles in the range, ")
    assert all("SOLUSDT" not in learners for learners in universe["learners_per_fold"].values())
    for symbol in ("LTCUSDT", "DOTUSDT"):
        boards = json.loads((tmp_path / symbol / "leaderboard.json").read_text())
        names = {row["name"] for row in boards["price"]["rows"]}
        # the global member, the symbol's own, their ensembles (learning from the panel too), the baselines
        assert {"global:lightgbm", "lightgbm", "global:ensemble_weighted", "persistence"} <= names
        assert boards["price"]["info"]["zero_shot"] is False
        summary = universe["symbols"][symbol]["heads"]
        assert summary["price"]["best_global"]["name"].startswith("global:")
        assert summary["price"]["best_own"]["name"] == "lightgbm"  # one own member: no own ensemble
    unseen = json.loads((tmp_path / "SOLUSDT" / "leaderboard.json").read_text())
    for board in unseen.values():
        assert board["info"]["zero_shot"] is True
        assert {row["name"] for row in board["rows"] if row["kind"] == "model"} == {"global:lightgbm"}
    volatility = universe["symbols"]["SOLUSDT"]["heads"]["volatility"]
    assert volatility["best_own"] is None and "global_vs_har" in volatility and "har" in volatility


def _features(symbol: str, data_cfg: DataConfig):
    klines, _ = clean_klines(SampleSource().fetch(symbol, "1h", None, None), "1h")
    return compute_features(klines.tail(3000), data_cfg.feature_set)


@pytest.fixture(scope="module")
def global_lightgbm(tmp_path_factory) -> tuple[GlobalModel, dict]:
    data_cfg = DataConfig(seq_len=12)
    features = {s: _features(s, data_cfg) for s in ("LTCUSDT", "DOTUSDT", "SOLUSDT")}
    learning = {s: features[s] for s in ("LTCUSDT", "DOTUSDT")}
    spec = ModelSpec("lightgbm", "lightgbm", "demo")
    model = train_global(spec, learning, data_cfg, budget("tiny"), tmp_path_factory.mktemp("global"))
    return model, features


def test_one_global_graph_is_published_for_learners_and_an_unseen_symbol_alike(global_lightgbm, tmp_path):
    model, features = global_lightgbm
    assert model.learners == ("LTCUSDT", "DOTUSDT")
    store = open_store(str(tmp_path / "store"))
    graphs, zero_shot = set(), {}
    for symbol, frame in features.items():
        boards = check_global([model], symbol, frame)
        assert {row.name for row in boards["price"].rows if row.kind == "model"} == {f"{GLOBAL_PREFIX}lightgbm"}
        candidates = global_candidates([model], symbol, "1h", frame, boards, budget("tiny"), force=True)
        manifest = publish_candidates(store, candidates, workdir=tmp_path / "work" / symbol).manifest
        graphs.add(manifest.files["model.onnx"])
        zero_shot[symbol] = manifest.training.extra["global"]["zero_shot"]
        assert manifest.training.extra["global"]["trained_on"] == ["LTCUSDT", "DOTUSDT"]
    assert len(graphs) == 1  # the same bytes in every symbol's version: serving opens one session
    assert zero_shot == {"LTCUSDT": False, "DOTUSDT": False, "SOLUSDT": True}


def test_a_symbol_without_rows_after_the_cut_cannot_be_checked(global_lightgbm):
    model, _ = global_lightgbm
    btc = _features("BTCUSDT", model.data_cfg)  # the sample's BTC ends 2021-06, before the panel's cut
    with pytest.raises(DataError, match="cannot be checked on rows the model never learned from"):
        check_global([model], "BTCUSDT", btc)


def test_the_global_model_record_round_trips_and_refuses_other_data_settings(global_lightgbm):
    model, _ = global_lightgbm
    assert GlobalModel.from_json(model.to_json(), model.data_cfg).to_json() == model.to_json()
    with pytest.raises(Exception, match="materialize it again"):
        GlobalModel.from_json(model.to_json(), DataConfig(seq_len=24))


def test_a_symbol_keeps_the_version_that_serves_more_heads_than_the_global_graph_would(global_lightgbm, tmp_path):
    model, features = global_lightgbm
    frame = features["LTCUSDT"]
    boards = check_global([model], "LTCUSDT", frame)
    store = open_store(str(tmp_path / "store"))
    every_head = global_candidates([model], "LTCUSDT", "1h", frame, boards, budget("tiny"), force=True)
    current = publish_candidates(store, every_head, workdir=tmp_path / "forced").manifest
    assert keeps_current(every_head, current) is None  # as many heads as now: it may replace it
    rows = [boards[head].row("global:lightgbm") for head in boards.heads]
    level = min(row.dm.p_value_model_better for row in rows if row.skill > 0)  # only the clearest head passes
    strict = global_candidates([model], "LTCUSDT", "1h", frame, boards, budget("tiny"), max_p_value=level)
    served = [head for head, d in strict.decisions["global:lightgbm"].items() if d.publish]
    assert 0 < len(served) < len(current.heads)
    reason = keeps_current(strict, current)
    assert reason is not None and f"serves {len(current.heads)}" in reason and current.version in reason
    assert keeps_current(strict, None) is None  # nothing served yet: the global graph is published


def test_a_coin_listed_after_the_cut_is_checked_zero_shot_on_its_own_rows_after_it(global_lightgbm):
    """The case a global model exists for: no row before the cut. Its own rows after the cut are split
    like one series (baselines fit on the first ones); every scored point comes after the model's data."""
    model, features = global_lightgbm
    cut = datetime.fromtimestamp(model.split.learn_stop_ms / 1000, UTC)
    listed_late = features["SOLUSDT"].filter(pl.col("open_time") >= cut)
    boards = check_global([model], "SOLUSDT", listed_late)
    board = boards["volatility"]
    assert board.info["zero_shot"] is True and board.n_points > 0
    first_test = datetime.fromisoformat(board.folds[0]["test_time"][0].replace(" ", "T")).replace(tzinfo=UTC)
    assert first_test > cut
    assert {row.name for row in board.rows if row.kind == "model"} == {"global:lightgbm"}
