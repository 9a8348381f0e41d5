"""Training behaviour on real bundled klines with a small LSTM."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from cse_models.models import build_model
from cse_models.models.lstm import LSTMConfig
from cse_models.training.checkpoint import load_trained_model
from cse_models.training.config import budget
from cse_models.training.loop import fit, predict_windows
from cse_models.training.run import TrainedModel, train_model

SMALL = {"hidden": 16, "layers": 2}


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
    trained = train_model("lstm_regressor", datasets, data_cfg, budget("tiny"), scaler, tmp_path, **SMALL)
    restored = load_trained_model(tmp_path)
    assert TrainedModel.load(tmp_path) == trained
    assert set(trained.metrics) == {"validation", "naive_baseline", "skill"}
    assert trained.metrics["validation"]["mae"] > 0
    preds = predict_windows(restored, datasets["val"], data_cfg)
    assert preds.shape == (datasets["val"].y.shape[0], 1)
    assert np.isfinite(preds).all()


def test_classification_head_reports_accuracy_f1_and_confusion_beside_majority(btc_features, tmp_path):
    from cse_models.config import DataConfig
    from cse_models.features.dataset import build_datasets, fit_feature_scaler

    data_cfg = DataConfig(seq_len=12, task="classification")
    scaler = fit_feature_scaler(btc_features, data_cfg)
    datasets = build_datasets(btc_features, scaler, data_cfg)
    trained = train_model("lstm_regressor", datasets, data_cfg, budget("tiny"), scaler, tmp_path, preset="demo")
    validation = trained.metrics["validation"]
    confusion = np.array(validation["confusion_matrix"])
    assert confusion.shape == (3, 3) and confusion.sum() == datasets["val"].y.shape[0]
    assert np.trace(confusion) / confusion.sum() == validation["accuracy"]
    train_majority = np.bincount(datasets["train"].y, minlength=3).argmax()
    expected = np.mean(datasets["val"].y == train_majority)
    assert trained.metrics["naive_baseline"]["accuracy"] == pytest.approx(expected)
