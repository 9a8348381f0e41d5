"""The whole graph for one symbol — data → train → export → parity check → walk-forward → gate per head →
publish — as a real Dagster materialization on a tiny budget, and the published version is what serving
would load.

The module materializes once (`graph_run`) and its tests only read that run; a test that re-materializes
with other settings does so in its own copy of CSE_HOME with its own instance (`rerun`), which also
checks that the module's home is untouched afterwards — so the tests pass in any order, or alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, ExecuteInProcessResult, materialize
from serving_helpers_by_path import serving_helpers

from cse_assets.definitions import build_definitions, resources_for
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import DataSettings, EvaluationSettings, ModelStoreResource, TrainingResource
from cse_assets.settings import CseSettings
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import kline_columns
from cse_models.ensembles import ENSEMBLE_METHODS, FittedEnsemble
from cse_models.ensembles.compose import run_graph
from cse_models.features.sets import get_feature_set
from cse_models.heads import HEADS
from cse_models.heads.layout import outputs_by_head
from cse_models.model_sets import MODEL_SETS
from cse_models.scoring.baselines import REFERENCE
from cse_models.store import open_store

defs = build_definitions(CseSettings(model_set="demo"))
REFRESH = sorted(defs.resolve_job_def("refresh").asset_layer.selected_asset_keys)  # all but global training
STRICT_P = 1e-3  # strict enough that a next-hour price edge fails, loose enough for the volatility head


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("cse_home")
    instance = DagsterInstance.ephemeral()
    ensure_symbol_partitions(instance, ["ETHUSDT"])
    resources = {
        **resources_for("local"),
        "data_settings": DataSettings(range_last="last 150 days"),
        "training": TrainingResource(budget="tiny"),
        "evaluation_settings": EvaluationSettings(budget="tiny", n_folds=2, max_p_value=STRICT_P),
        "model_store": ModelStoreResource(root=str(home / "store")),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(home))
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            selection=REFRESH,
            partition_key="ETHUSDT",
            resources=resources,
            instance=instance,
        )
    return result, home, instance, resources


def _manifest(home):
    store = open_store(home / "store")
    return store.verified("ETHUSDT", "1h", store.latest("ETHUSDT", "1h"))


def test_whole_graph_materializes_and_every_check_passes(graph_run) -> None:
    result, *_ = graph_run
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"onnx_parity", "scaler_fit_on_train_rows_only", "beats_naive"}
    assert all(c.passed for c in checks)


def test_a_refresh_before_any_global_training_keeps_the_own_model(graph_run) -> None:
    result, home, *_ = graph_run
    (checked,) = result.asset_materializations_for_node("global_evaluation")
    assert checked.metadata["checkable"].value is False and "global_training" in checked.metadata["reason"].text
    (published,) = result.asset_materializations_for_node("published_global")
    manifest, _ = _manifest(home)
    assert published.metadata["published"].value is False
    assert published.metadata["keeps"].text == f"ETHUSDT keeps its own model ({manifest.version})"
    assert "global" not in manifest.training.extra


def test_training_metadata_and_run_log_carry_progress_and_per_head_metrics(graph_run) -> None:
    result, _, instance, _ = graph_run
    (materialization,) = result.asset_materializations_for_node("model_lstm")
    meta = materialization.metadata
    assert "data:image/png;base64," in meta["loss_curve"].value
    assert {f"validation_skill/{h}" for h in HEADS} <= set(meta)
    assert meta["validation/volatility/mae"].value > 0
    assert 0 <= meta["calibration/shrink"].value <= 1
    messages = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any(m.startswith("lstm epoch 1/1: train") for m in messages)
    assert any(m.startswith("fold 2: lstm epoch 1/1") for m in messages)


def test_jax_steps_fill_the_compilation_cache_under_cse_home(graph_run) -> None:
    _, home, *_ = graph_run
    assert list((home / "jax_cache").glob("*-cache"))


def test_evaluation_metadata_has_a_table_per_head(graph_run) -> None:
    result, *_ = graph_run
    (materialization,) = result.asset_materializations_for_node("evaluation")
    for head in HEADS:
        table = materialization.metadata[f"leaderboard/{head}"]
        names = {record.data["forecaster"] for record in table.records}
        assert {"lstm", REFERENCE[head]} <= names


def test_published_version_serves_the_forecast_card_from_raw_klines(graph_run) -> None:
    result, home, *_ = graph_run
    (published,) = result.asset_materializations_for_node("published_model")
    assert "data:image/png;base64," in published.metadata["predictions_vs_actual"].value
    manifest, root = _manifest(home)
    assert manifest.task == "forecast" and manifest.feature_set == "stationary"
    assert [t.name for t in manifest.inputs] == ["features", "last_close"]
    klines = SampleSource().fetch("ETHUSDT", "1h", None, None).unique("open_time").sort("open_time")
    klines = klines.tail(manifest.min_klines)
    features = get_feature_set(manifest.feature_set)(kline_columns(klines))[-manifest.seq_len :]
    last_close = float(klines.get_column("close")[-1])
    session = ort.InferenceSession(str(root / "model.onnx"), providers=["CPUExecutionProvider"])
    close, ret, lower, upper, vol, probabilities = session.run(
        [t.name for t in manifest.outputs],
        {"features": features.astype(np.float32)[None], "last_close": np.array([[last_close]], np.float32)},
    )
    assert abs(float(close[0, 0]) / last_close - 1) < 0.05  # a price near the market, not a scaled value
    assert lower[0, 0] < close[0, 0] < upper[0, 0]
    assert float(vol[0, 0]) > 0 and abs(float(probabilities.sum()) - 1) < 1e-5
    assert abs(float(np.log(close[0, 0] / last_close)) - float(ret[0, 0])) < 1e-5


def test_published_heads_are_a_table_of_verdicts(graph_run) -> None:
    result, home, *_ = graph_run
    (published,) = result.asset_materializations_for_node("published_model")
    rows = {record.data["head"]: record.data for record in published.metadata["heads"].records}
    manifest, _ = _manifest(home)
    assert list(rows) == [h.name for h in manifest.heads]
    for head in manifest.heads:
        assert rows[head.name]["served"] == ("yes" if head.publish else "no")
        assert rows[head.name]["verdict"] == head.reason


def test_gate_publishes_heads_that_pass_and_withholds_the_others(graph_run) -> None:
    _, home, *_ = graph_run
    manifest, _ = _manifest(home)
    assert [h.name for h in manifest.heads] == list(HEADS)
    for head in manifest.heads:
        assert head.publish is head.passed is (head.skill > 0 and head.p_value <= STRICT_P), head
        assert not head.forced
    verdicts = {h.publish for h in manifest.heads}
    assert verdicts == {True, False}, [(h.name, h.skill, h.p_value) for h in manifest.heads]


def test_the_evaluated_spec_is_the_published_spec(graph_run) -> None:
    """Every spec of the set (a network and a classical member) is trained as it was scored, and the selected
    forecaster's walk-forward skill is the manifest's."""
    result, home, *_ = graph_run
    manifest, _ = _manifest(home)
    specs = {spec.name: spec for spec in MODEL_SETS.get("demo")}
    assert {name: member["spec"] for name, member in manifest.training.extra["members"].items()} == {
        name: spec.as_dict() for name, spec in specs.items()
    }
    selected = manifest.metrics.selected
    if selected in specs:
        assert manifest.training.extra["spec"] == specs[selected].as_dict()
    (evaluated,) = result.asset_materializations_for_node("evaluation")
    for head in manifest.heads:
        assert evaluated.metadata[f"skill/{head.name}/{selected}"].value == head.skill


def test_onnx_parity_check_is_blocking_upstream_of_publication() -> None:
    graph = defs.resolve_asset_graph()
    checks = [c for c in graph.asset_check_keys if c.name == "onnx_parity"]
    assert {c.asset_key for c in checks} == {AssetKey(f"onnx_{s.name}") for s in MODEL_SETS.get("demo")}
    for parity in checks:  # the network's and the classical member's alike
        assert graph.get_check_spec(parity).blocking
        assert AssetKey("published_model") in graph.get(parity.asset_key).child_keys


Rerun = Callable[..., tuple[ExecuteInProcessResult, Path]]


def _files(home: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(home)): (p.stat().st_size, p.stat().st_mtime_ns) for p in home.rglob("*") if p.is_file()}


@pytest.fixture
def rerun(graph_run, tmp_path: Path) -> Iterator[Rerun]:
    """Re-materializes a selection with other evaluation settings in a copy of the module's CSE_HOME (its
    assets, store and compilation cache) with a fresh instance → (result, that home). The module's home
    must be as it was afterwards: what a rerun publishes never reaches the store the other tests read."""
    _, home, _, resources = graph_run
    before = _files(home)

    def run(settings: EvaluationSettings, selection=("evaluation", "published_model")):
        own = tmp_path / "cse_home"
        shutil.copytree(home, own, symlinks=True)
        instance = DagsterInstance.ephemeral()
        ensure_symbol_partitions(instance, ["ETHUSDT"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CSE_HOME", str(own))
            result = materialize(
                [*defs.assets, *defs.asset_checks],
                partition_key="ETHUSDT",
                resources={
                    **resources,
                    "evaluation_settings": settings,
                    "model_store": ModelStoreResource(root=str(own / "store")),
                },
                instance=instance,
                selection=list(selection),
                raise_on_error=False,
            )
        return result, own

    yield run
    assert _files(home) == before, "a rerun changed the module's CSE_HOME"


IMPOSSIBLE_P = 1e-300  # no head of any model is that significant


def test_the_gate_blocks_publication_when_no_head_passes(graph_run, rerun: Rerun) -> None:
    _, home, *_ = graph_run
    before = open_store(home / "store").versions("ETHUSDT", "1h")
    result, home = rerun(EvaluationSettings(budget="tiny", n_folds=2, max_p_value=IMPOSSIBLE_P))
    (gate,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "beats_naive"]
    assert not gate.passed and gate.severity == AssetCheckSeverity.ERROR
    assert "persistence" in gate.description
    assert not result.asset_materializations_for_node("published_model")
    assert open_store(home / "store").versions("ETHUSDT", "1h") == before


def test_forced_heads_are_published_but_their_check_stays_failed(rerun: Rerun) -> None:
    forced = EvaluationSettings(budget="tiny", n_folds=2, max_p_value=IMPOSSIBLE_P, force_publish=True)
    result, home = rerun(forced)
    (gate,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "beats_naive"]
    assert not gate.passed and gate.severity == AssetCheckSeverity.WARN
    assert result.asset_materializations_for_node("published_model")
    manifest, _ = _manifest(home)
    assert all(h.publish and h.forced and not h.passed for h in manifest.heads)
    assert all(h.reason.startswith("forced publication; the gate said:") for h in manifest.heads)


def test_the_ensemble_is_published_as_one_graph_the_api_serves_with_its_members(rerun: Rerun) -> None:
    """With `publish_ensemble='always'` the ensemble of the demo set (LSTM + LightGBM) is published as ONE
    graph; the real API answers `members: true` from that one run, and every number equals the member
    graphs run alone combined in Python by the fitted ensemble."""
    # forced: every head is served, so every number of the answer can be compared
    settings = EvaluationSettings(budget="tiny", n_folds=2, force_publish=True, publish_ensemble="always")
    result, home = rerun(settings, ("ensemble_weights", "onnx_ensemble", "published_model"))
    assert result.success
    (weights,) = result.asset_materializations_for_node("ensemble_weights")
    table = {record.data["forecaster"] for record in weights.metadata["weights"].records}
    manifest, _ = _manifest(home)
    ensemble = manifest.ensemble
    assert table == {"lstm", "lightgbm", ensemble.name}
    assert ensemble.method in ENSEMBLE_METHODS and ensemble.members == ("lstm", "lightgbm")
    assert manifest.metrics.selected == ensemble.name and "walk-forward price skill" in ensemble.reason
    assert {"lstm/close", "lightgbm/probabilities"} <= {t.name for t in manifest.outputs}
    assert not any(f.startswith("members/") for f in manifest.files)  # the members live inside model.onnx

    klines = SampleSource().fetch("ETHUSDT", "1h", None, None).unique("open_time").sort("open_time")
    klines = klines.tail(manifest.min_klines)
    body = [
        {
            "open_time": int(row["open_time"].timestamp() * 1000),
            **{c: row[c] for c in ("open", "high", "low", "close", "volume")},
        }
        for row in klines.iter_rows(named=True)
    ]
    env = {
        "CSE_STORE": str(home / "store"),
        "CSE_SERVING_AUTH": "0",
        "CSE_SERVING_WATCH_SECONDS": "0",
        "CSE_SERVING_SCORECARD": "off",
        "CSE_HOME": str(home / "serving"),
    }
    with serving_helpers().real_server(env) as url:
        answer = httpx.post(f"{url}/predict", json={"symbol": "ETHUSDT", "klines": body, "members": True}).json()
        (served,) = [m for m in httpx.get(f"{url}/models").json()["models"] if m["symbol"] == "ETHUSDT"]
    assert (served["ensemble"], served["members"], served["encoding"]) == (
        ensemble.method,
        list(ensemble.members),
        "fp32",
    )
    assert answer["model_version"] == manifest.version
    assert set(answer["member_forecasts"]) == {"lstm", "lightgbm"}

    features = get_feature_set(manifest.feature_set)(kline_columns(klines))[-manifest.seq_len :]
    feed = {"features": features.astype(np.float32)[None], "last_close": np.array([[body[-1]["close"]]], np.float32)}
    alone = {
        name: outputs_by_head(
            "forecast", list(run_graph(home / "onnx" / name / "ETHUSDT" / "model.onnx", feed).values())
        )
        for name in ensemble.members
    }
    fitted = FittedEnsemble.from_dict({**ensemble.to_dict(), "info": {}})
    expected = fitted.combine(alone, feed["last_close"][:, 0].astype(np.float64))
    assert answer["forecast"]["close"] == pytest.approx(float(expected["price"][0]), rel=1e-5)
    for name in ensemble.members:
        assert answer["member_forecasts"][name]["close"] == pytest.approx(float(alone[name]["price"][0]), rel=1e-5)
