"""Training behaviour on real bundled klines with a small LSTM."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from cse_models.datasets.prepared import PreparedSeries
from cse_models.features.windows import target_rows
from cse_models.models import build_model
from cse_models.models.lstm import LSTMConfig
from cse_models.scoring.metrics import brier_losses
from cse_models.specs import ModelSpec
from cse_models.training.checkpoint import load_trained_model
from cse_models.training.config import budget
from cse_models.training.loop import fit
from cse_models.training.predict import predict_windows
from cse_models.training.run import TrainedModel, train_model

SMALL = ModelSpec("lstm_small", "lstm_regressor", overrides={"hidden": 16, "layers": 2})


def _params(model):
    return [np.asarray(x) for x in __import__("jax").tree.leaves(nnx.state(model, nnx.Param))]


def _fit_once(prepared, data_cfg, seed=0, epochs=2):
    _, datasets = prepared
    model = build_model("lstm_regressor", LSTMConfig(hidden=16), rngs=nnx.Rngs(seed))
    result = fit(model, datasets["train"], datasets["val"], data_cfg, budget("demo", max_epochs=epochs, seed=seed))
    return model, result


def test_same_seed_gives_the_same_parameters_twice(prepared, data_cfg):
    first, _ = _fit_once(prepared, data_cfg)
    second, _ = _fit_once(prepared, data_cfg)
    for a, b in zip(_params(first), _params(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_lowers_the_loss(prepared, data_cfg):
    _, result = _fit_once(prepared, data_cfg, epochs=3)
    losses = [e.train_loss for e in result.history]
    assert losses[-1] < losses[0]


def test_early_stopping_stops_after_patience_epochs_without_improvement(prepared, data_cfg):
    _, datasets = prepared
    model = build_model("lstm_regressor", LSTMConfig(hidden=8), rngs=nnx.Rngs(0))
    # A huge learning rate makes validation stop improving at once.
    cfg = budget("demo", max_epochs=20, patience=1, learning_rate=0.5)
    result = fit(model, datasets["train"], datasets["val"], data_cfg, cfg)
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 2


def test_trained_model_directory_restores_the_best_parameters(prepared, data_cfg, tmp_path):
    scaler, datasets = prepared
    trained = train_model(SMALL, PreparedSeries(datasets, data_cfg, scaler), budget("tiny"), tmp_path)
    restored = load_trained_model(tmp_path)
    assert TrainedModel.load(tmp_path) == trained
    assert trained.calibration is None  # only the forecast task calibrates heads
    assert set(trained.metrics) == {"validation", "naive_baseline", "skill"}
    assert all(set(part) == {"price"} for part in trained.metrics.values())  # regression: one price head
    val = datasets["val"]
    preds = predict_windows(restored, val, data_cfg)
    assert preds.shape == (val.y.shape[0], 1)
    assert np.isfinite(preds).all()
    # The reported scores are those of the restored (best) parameters and of persistence, on the val closes.
    rows = target_rows(val.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    actual = val.close[rows]
    mae = np.mean(np.abs(scaler.inverse_column(preds[:, 0].astype(np.float64), "close") - actual))
    naive = np.mean(np.abs(val.close[rows - data_cfg.horizon] - actual))
    price = trained.metrics["validation"]["price"]
    assert price["mae"] > 0 and price["mae"] == pytest.approx(mae, rel=1e-4)
    assert trained.metrics["naive_baseline"]["price"]["mae"] == pytest.approx(naive, rel=1e-9)
    assert trained.metrics["skill"]["price"] == pytest.approx(1 - price["mae"] / naive, rel=1e-6)


def test_classification_head_reports_accuracy_f1_and_brier_beside_class_frequencies(btc_features, tmp_path):
    import jax

    from cse_models.config import DataConfig
    from cse_models.datasets.segments import build_datasets, fit_feature_scaler

    data_cfg = DataConfig.seed(seq_len=12, task="classification")
    scaler = fit_feature_scaler(btc_features, data_cfg)
    datasets = build_datasets(btc_features, scaler, data_cfg)
    spec = ModelSpec("lstm_regressor", "lstm_regressor", "demo")
    trained = train_model(spec, PreparedSeries(datasets, data_cfg, scaler), budget("tiny"), tmp_path)
    assert all(set(part) == {"direction"} for part in trained.metrics.values())
    validation = trained.metrics["validation"]["direction"]
    labels = datasets["val"].y.astype(np.int64)
    probabilities = np.asarray(jax.nn.softmax(predict_windows(load_trained_model(tmp_path), datasets["val"], data_cfg)))
    assert validation["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels), abs=1e-9)
    assert validation["brier"] == pytest.approx(brier_losses(probabilities, labels).mean(), rel=1e-4)
    assert 0 <= validation["f1_macro"] <= 1 and np.isfinite(validation["log_loss"])
    # The reference is climatology: the train segment's class frequencies, the same for every window.
    counts = np.bincount(datasets["train"].y.astype(np.int64), minlength=3)
    frequencies = np.tile(counts / counts.sum(), (labels.size, 1))
    reference = trained.metrics["naive_baseline"]["direction"]
    assert reference["brier"] == pytest.approx(brier_losses(frequencies, labels).mean())
    assert reference["accuracy"] == pytest.approx(np.mean(labels == counts.argmax()))
    assert trained.metrics["skill"]["direction"] == pytest.approx(1 - validation["brier"] / reference["brier"])
