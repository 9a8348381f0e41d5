"""The whole graph for one symbol — data → train → export → parity check → publish — as a real
Dagster materialization on a tiny budget, and the published version is what serving would load."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from cse_assets.definitions import defs, resources_for
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import DataSettings, EvaluationSettings, ModelStoreResource, TrainingResource
from cse_models.data.file_sources import SampleSource
from cse_models.features.dataset import kline_columns
from cse_models.features.sets import get_feature_set
from cse_models.store import ModelStore


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("cse_home")
    instance = DagsterInstance.ephemeral()
    ensure_symbol_partitions(instance, ["ETHUSDT"])
    resources = {
        **resources_for("local"),
        "data_settings": DataSettings(range_last="last 90 days"),
        "training": TrainingResource(budget="tiny"),
        "evaluation_settings": EvaluationSettings(budget="tiny", n_folds=2, force_publish=True),
        "model_store": ModelStoreResource(root=str(home / "store")),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(home))
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            partition_key="ETHUSDT",
            resources=resources,
            instance=instance,
        )
    return result, home, instance, resources


def test_whole_graph_materializes_and_every_check_passes(graph_run) -> None:
    result, *_ = graph_run
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"onnx_parity", "scaler_fit_on_train_rows_only"}
    assert all(c.passed for c in checks)


def test_training_metadata_carries_the_loss_curve_and_metrics(graph_run) -> None:
    result, *_ = graph_run
    (materialization,) = result.asset_materializations_for_node("model_lstm")
    meta = materialization.metadata
    assert "data:image/png;base64," in meta["loss_curve"].value
    assert meta["validation/mae"].value > 0
    assert meta["samples_per_s"].value > 0


def test_published_version_serves_prices_from_raw_klines(graph_run) -> None:
    _, home, *_ = graph_run
    store = ModelStore(home / "store")
    version = store.latest("ETHUSDT", "1h")
    manifest, root = store.verified("ETHUSDT", "1h", version)
    assert manifest.feature_names == list(get_feature_set("mur9").feature_names)
    assert {"model.onnx", "scaler.json"} <= set(manifest.files)
    klines = SampleSource().fetch("ETHUSDT", "1h", None, None).unique("open_time").sort("open_time").tail(24)
    features = get_feature_set(manifest.feature_set)(kline_columns(klines)).astype(np.float32)[None]
    session = ort.InferenceSession(str(root / "model.onnx"), providers=["CPUExecutionProvider"])
    (close,) = session.run(None, {"features": features})
    last_close = float(klines.get_column("close")[-1])
    assert close.shape == (1, 1)
    assert abs(float(close[0, 0]) / last_close - 1) < 0.5  # a price near the market, not a scaled value


def test_onnx_parity_check_is_blocking_upstream_of_publication() -> None:
    graph = defs.resolve_asset_graph()
    (parity,) = [c for c in graph.asset_check_keys if c.name == "onnx_parity"]
    assert parity.asset_key == AssetKey("onnx_lstm")
    assert graph.get_check_spec(parity).blocking
    assert AssetKey("published_model") in graph.get(AssetKey("onnx_lstm")).child_keys


def test_forced_publication_is_recorded_in_the_manifest(graph_run) -> None:
    _, home, *_ = graph_run
    store = ModelStore(home / "store")
    manifest = store.read_manifest("ETHUSDT", "1h", store.latest("ETHUSDT", "1h"))
    promotion = manifest.metrics["promotion"]
    assert promotion["publish"] is True
    assert promotion["forced"] is True
    assert "does not beat persistence" in promotion["reason"] or "not significantly better" in promotion["reason"]
    assert "walk_forward" in manifest.metrics["skill"]


def test_the_gate_blocks_publication_of_a_model_that_does_not_beat_persistence(graph_run) -> None:
    _, home, instance, resources = graph_run
    store = ModelStore(home / "store")
    before = store.versions("ETHUSDT", "1h")
    gated = {**resources, "evaluation_settings": EvaluationSettings(budget="tiny", n_folds=2)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(home))
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            partition_key="ETHUSDT",
            resources=gated,
            instance=instance,
            selection=["evaluation", "published_model"],
            raise_on_error=False,
        )
    (gate,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "beats_naive"]
    assert not gate.passed
    assert "persistence" in gate.description
    assert not result.asset_materializations_for_node("published_model")
    assert store.versions("ETHUSDT", "1h") == before
