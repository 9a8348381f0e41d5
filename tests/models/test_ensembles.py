"""Ensembles: what each kind learns on constructed cases, the stacking purge, voting by hand, the ONE
composed graph against Python for every kind, and the bad inputs refused before anything is published."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from flax import nnx

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.ensembles import (
    EnsembleConfig,
    EnsembleLeakageError,
    FitRows,
    FittedEnsemble,
    check_after_training,
    fit_ensemble,
    segment_fit_rows,
)
from cse_models.ensembles.combiners import Linear
from cse_models.ensembles.compose import (
    RETURN_ATOL,
    EnsembleMemberError,
    check_composed,
    compose_ensemble,
    run_graph,
)
from cse_models.ensembles.spaces import Stacks
from cse_models.ensembles.stacking import MetaFold, check_purged, purged_folds
from cse_models.errors import ConfigError, ExportParityError
from cse_models.export.onnx import export_onnx
from cse_models.features.windows import n_windows
from cse_models.heads import HeadCalibration
from cse_models.heads.layout import outputs_by_head
from cse_models.models import build_model
from cse_models.training.run import model_config_for

HOUR_MS = 3_600_000
KINDS = [("weighted", {}), ("stacking", {}), ("voting", {}), ("voting", {"vote": "hard", "average": "median"})]


def _rows(returns: np.ndarray, true_return: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> FitRows:
    n, m = returns.shape
    start = np.arange(n, dtype=np.int64) * HOUR_MS
    return FitRows(
        stacks=Stacks(returns, np.log(np.full((n, m), 0.01)), probabilities, np.full((n, m), 0.01)),
        true_return=true_return,
        true_log_range=np.log(np.full(n, 0.01)),
        labels=labels,
        window_start_ms=start,
        target_time_ms=start + 12 * HOUR_MS,
        interval_level=0.8,
    )


@pytest.fixture(scope="module")
def constructed() -> FitRows:
    """Member "good" sees the next return with small noise and the right class; "bad" is noise."""
    rng = np.random.default_rng(0)
    n = 600
    truth = rng.normal(0, 0.01, n)
    returns = np.stack([truth + rng.normal(0, 0.002, n), rng.normal(0, 0.01, n)], axis=1)
    labels = rng.integers(0, 3, n)
    good = np.full((n, 3), 0.05) + 0.85 * np.eye(3)[labels]
    probabilities = np.stack([good, np.full((n, 3), 1 / 3)], axis=1)
    return _rows(returns, truth, probabilities, labels)


def test_weights_move_toward_the_clearly_better_member(constructed):
    fitted = fit_ensemble(EnsembleConfig("e", ("good", "bad"), "weighted"), constructed)
    weights = fitted.weights()
    assert weights["price"]["good"] > 0.8 and weights["direction"]["good"] > 0.8
    assert sum(weights["price"].values()) == pytest.approx(1.0)
    equal = fit_ensemble(EnsembleConfig("v", ("good", "bad"), "voting"), constructed)
    mae = {
        name: np.abs(f.combiners["price"].apply(constructed.stacks.returns) - constructed.true_return).mean()
        for name, f in (("weighted", fitted), ("voting", equal))
    }
    assert mae["weighted"] < 0.7 * mae["voting"]


def test_stacking_leans_on_the_better_member_and_its_folds_hold_no_future_rows(constructed):
    fitted = fit_ensemble(EnsembleConfig("s", ("good", "bad"), "stacking"), constructed)
    price = fitted.weights()["price"]
    assert price["good"] > 0.3 and price["good"] > 5 * abs(price["bad"])  # ridge shrinks toward persistence
    folds = purged_folds(constructed)
    assert len(folds) == 4
    for fold in folds:  # every training target opened before the test block's first window starts
        assert constructed.target_time_ms[fold.train].max() < constructed.window_start_ms[fold.test].min()
        assert not set(fold.train) & set(fold.test)
    # positive control: a fold that trains on rows after its test block is caught
    leaky = [MetaFold(train=np.arange(300, 600), test=np.arange(0, 100))]
    with pytest.raises(EnsembleLeakageError):
        check_purged(constructed, leaky)


def test_voting_matches_a_hand_count():
    # three members, two windows: member argmaxes (buy, buy, sell) then (hold, sell, sell)
    p = np.array(
        [
            [[0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]],
            [[0.2, 0.5, 0.3], [0.5, 0.4, 0.1], [0.7, 0.2, 0.1]],
        ]
    )
    returns = np.array([[0.01, 0.02, -0.03], [0.0, 0.04, 0.01]])
    rng = np.random.default_rng(1)  # fitting rows: the two windows five times (voting learns only the interval)
    rows = _rows(np.tile(returns, (5, 1)), rng.normal(0, 0.01, 10), np.tile(p, (5, 1, 1)), np.tile([2, 0], 5))
    hard = fit_ensemble(EnsembleConfig("h", ("a", "b", "c"), "voting", {"vote": "hard", "average": "median"}), rows)
    np.testing.assert_allclose(hard.combiners["direction"].apply(p), [[1 / 3, 0, 2 / 3], [2 / 3, 1 / 3, 0]])
    np.testing.assert_allclose(hard.combiners["price"].apply(returns), [0.01, 0.01])
    soft = fit_ensemble(EnsembleConfig("s", ("a", "b", "c"), "voting"), rows)
    np.testing.assert_allclose(soft.combiners["direction"].apply(p)[0], [0.3, 0.8 / 3, 1.3 / 3])
    np.testing.assert_allclose(soft.combiners["price"].apply(returns), [0.0, 0.05 / 3], atol=1e-15)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two small untrained forecast networks exported as the graph exports them, and real validation rows."""
    klines, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    data_cfg = DataConfig(seq_len=12)
    features = compute_features(klines.tail(1200), data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    datasets = build_datasets(features, scaler, data_cfg)
    root = tmp_path_factory.mktemp("members")
    paths = {}
    for seed, (name, arch) in enumerate((("lstm", "lstm_regressor"), ("cnn", "financial_cnn1d"))):
        cfg = model_config_for(arch, data_cfg, len(scaler.feature_names), "demo")
        model = build_model(arch, cfg, rngs=nnx.Rngs(seed))
        calibration = HeadCalibration(shrink=0.5, direction_weight=0.7)
        paths[name] = str(export_onnx(model, scaler, data_cfg, root / f"{name}.onnx", calibration))
    val = datasets["val"]
    inputs = graph_inputs(val, data_cfg, limit=n_windows(val.close.shape[0], data_cfg.seq_len, data_cfg.horizon))
    forecasts = {
        name: outputs_by_head("forecast", list(run_graph(path, inputs).values())) for name, path in paths.items()
    }
    rows = segment_fit_rows(forecasts, tuple(paths), val, data_cfg, scaler.feature_names)
    return paths, rows, graph_inputs(datasets["test"], data_cfg, limit=16), root


@pytest.mark.parametrize(("method", "options"), KINDS, ids=[f"{m}-{o}" for m, o in KINDS])
def test_the_composed_graph_equals_the_ensemble_computed_in_python(members, method, options):
    paths, rows, inputs, root = members
    fitted = fit_ensemble(EnsembleConfig("ens", tuple(paths), method, options), rows)
    composed = compose_ensemble(fitted, paths, root / f"ens-{method}-{len(options)}.onnx")
    parity = check_composed(fitted, composed, paths, inputs)  # raises beyond rtol 1e-3 / atol 1e-5
    assert parity.max_rel_diff < 1e-3
    got = run_graph(composed.path, inputs, ("close", "return"))
    last_close = inputs["last_close"].astype(np.float64)
    np.testing.assert_allclose(got["return"], np.log(got["close"] / last_close), rtol=0, atol=RETURN_ATOL)
    assert set(composed.outputs) >= {"close", "lstm/close", "cnn/probabilities"}
    # one run returns the ensemble and every member: the members' outputs are theirs alone
    alone = run_graph(paths["cnn"], inputs)
    together = run_graph(composed.path, inputs, ("cnn/close", "close"))
    np.testing.assert_allclose(together["cnn/close"], alone["close"], rtol=1e-5)


def test_a_composed_graph_whose_price_combiner_answers_persistence_fails_the_parity_check(members):
    """Positive control: the graph's price combiner replaced by one that answers a zero return (persistence)
    while Python combines the members; its closes stay within rtol 1e-3, its `return` does not."""
    paths, rows, inputs, root = members
    fitted = fit_ensemble(EnsembleConfig("ens", tuple(paths), "voting"), rows)
    persistence = Linear(weights=(0.0,) * len(paths))
    wrong = dataclasses.replace(fitted, combiners={**fitted.combiners, "price": persistence})
    composed = compose_ensemble(wrong, paths, root / "ens-persistence.onnx")
    combined = fitted.combiners["price"].apply(rows.stacks.returns)
    assert np.abs(combined).max() > 100 * RETURN_ATOL  # the members do move: persistence is wrong here
    with pytest.raises(ExportParityError, match="'return'"):
        check_composed(fitted, composed, paths, inputs)


def test_a_stored_ensemble_round_trips_and_refuses_weights_that_do_not_sum_to_one(members):
    _, rows, *_ = members
    fitted = fit_ensemble(EnsembleConfig("ens", ("lstm", "cnn"), "weighted"), rows)
    assert FittedEnsemble.from_json(fitted.to_json()) == fitted
    data = json.loads(fitted.to_json())
    data["combiners"]["price"]["weights"] = [0.9, 0.3]
    with pytest.raises(ConfigError, match="sum to 1"):
        FittedEnsemble.from_dict(data)


def test_members_that_do_not_fit_together_are_refused(members, tmp_path):
    paths, rows, *_ = members
    fitted = fit_ensemble(EnsembleConfig("ens", ("lstm", "cnn"), "voting"), rows)
    with pytest.raises(EnsembleMemberError, match="'cnn' has no graph"):
        compose_ensemble(fitted, {"lstm": paths["lstm"], "cnn": str(tmp_path / "gone.onnx")}, tmp_path / "e.onnx")
    other_cfg = DataConfig(seq_len=16)  # another window length: the graphs' inputs differ
    klines, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    features = compute_features(klines.tail(600), other_cfg.feature_set)
    scaler = fit_feature_scaler(features, other_cfg)
    cfg = model_config_for("financial_cnn1d", other_cfg, len(scaler.feature_names), "demo")
    longer = export_onnx(
        build_model("financial_cnn1d", cfg, rngs=nnx.Rngs(0)), scaler, other_cfg, tmp_path / "c.onnx", HeadCalibration()
    )
    with pytest.raises(EnsembleMemberError, match="share the feature set, window length"):
        compose_ensemble(fitted, {"lstm": paths["lstm"], "cnn": str(longer)}, tmp_path / "e.onnx")


def test_a_meta_model_on_a_members_training_rows_is_refused(members):
    _, rows, *_ = members
    first = int(rows.window_start_ms.min())
    check_after_training(rows, {"lstm": first - HOUR_MS, "cnn": first - HOUR_MS})
    with pytest.raises(EnsembleLeakageError, match="cnn"):
        check_after_training(rows, {"lstm": first - HOUR_MS, "cnn": first + 5 * HOUR_MS})


def test_an_ensemble_config_is_checked():
    with pytest.raises(ConfigError, match="at least 2"):
        EnsembleConfig("e", ("lstm",), "weighted")
    with pytest.raises(ConfigError, match="twice"):
        EnsembleConfig("e", ("lstm", "lstm"), "weighted")
    with pytest.raises(ConfigError, match="unknown ensemble method"):
        fit_ensemble(
            EnsembleConfig("e", ("a", "b"), "bagging"),
            _rows(np.zeros((10, 2)), np.zeros(10), np.full((10, 2, 3), 1 / 3), np.zeros(10, int)),
        )
