"""Global models through Dagster, as real materializations on the bundled sample: one LightGBM graph trained
on LTCUSDT and DOTUSDT (2021 to 12-06), checked on each one's rows after the cut and published for both —
the same model.onnx bytes in both versions — then SOLUSDT added as a new partition and served zero-shot by
`serve_new_symbol` (data, check, publish: no training step), and BTCUSDT (whose sample ends in 2021-06,
before the cut) reported as not checkable rather than failing its run.

One module run (`global_run`); the tests read it. The set is LightGBM alone (seconds to fit).
"""

from __future__ import annotations

import time

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, Definitions, materialize
from dagster._core.storage.defs_state.base import set_defs_state_storage

from cse_assets import jobs
from cse_assets.definitions import graph_assets, resources_for
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import DataSettings, ModelStoreResource, TrainingResource
from cse_models.specs import ModelSpec
from cse_models.store import open_store, sha256_file

SPECS = (ModelSpec("lightgbm", "lightgbm", preset="demo"),)
GRAPH = graph_assets(SPECS)
LEARNERS = ("LTCUSDT", "DOTUSDT")
DATA = ["raw_klines", "klines", "features"]
CHECK_AND_PUBLISH = ["global_evaluation", "published_global"]


@pytest.fixture(scope="module")
def global_run(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("cse_home")
    instance = DagsterInstance.ephemeral()
    ensure_symbol_partitions(instance, LEARNERS)
    resources = {
        **resources_for("local"),
        "data_settings": DataSettings(),
        "training": TrainingResource(budget="tiny"),
        "model_store": ModelStoreResource(root=str(home / "store")),
    }
    defs = Definitions(
        assets=list(GRAPH.assets), asset_checks=list(GRAPH.checks), jobs=[jobs.serve_new_symbol], resources=resources
    )
    runs = {}

    def run(selection: list[str], partition: str | None = None):
        result = materialize(
            list(GRAPH.assets), selection=selection, partition_key=partition, resources=resources, instance=instance
        )
        assert result.success
        return result

    # this instance's defs-state storage is the current one while it runs: never a stale one that an earlier
    # module's collected or deleted instance left in Dagster 1.13's ContextVar (tests/conftest.py)
    with pytest.MonkeyPatch.context() as patch, set_defs_state_storage(instance.defs_state_storage):
        patch.setenv("CSE_HOME", str(home))
        for symbol in LEARNERS:
            run(DATA, symbol)
        runs["global_model"] = run(["global_model_lightgbm"])
        for symbol in LEARNERS:
            runs[symbol] = run(CHECK_AND_PUBLISH, symbol)
        for symbol in ("SOLUSDT", "BTCUSDT"):  # new symbols: the job a new symbol runs, nothing trained
            ensure_symbol_partitions(instance, [symbol])
            started = time.perf_counter()
            runs[symbol] = defs.resolve_job_def("serve_new_symbol").execute_in_process(
                partition_key=symbol, instance=instance
            )
            runs[f"{symbol} seconds"] = time.perf_counter() - started
    print(f"\nzero-shot SOLUSDT (serve_new_symbol: data, check, publish): {runs['SOLUSDT seconds']:.1f} s")
    return runs, home, instance


def _latest(home, symbol: str):
    store = open_store(home / "store")
    return store.verified(symbol, "1h", store.latest(symbol, "1h"))


def test_one_global_graph_is_published_for_every_symbol_it_learned_from(global_run) -> None:
    runs, home, _ = global_run
    (trained,) = runs["global_model"].asset_materializations_for_node("global_model_lightgbm")
    assert trained.metadata["learners"].value == list(LEARNERS)
    graph = trained.metadata["graph_sha256"].value
    for symbol in LEARNERS:
        manifest, root = _latest(home, symbol)
        assert sha256_file(root / "model.onnx") == graph
        facts = manifest.training.extra["global"]
        assert facts["trained_on"] == list(LEARNERS) and facts["zero_shot"] is False
        (published,) = runs[symbol].asset_materializations_for_node("published_global")
        assert published.metadata["published"].value and published.metadata["graph_sha256"].value == graph
        assert published.metadata["version"].value == manifest.version


def test_the_held_out_check_is_a_leaderboard_per_head_beside_the_baselines(global_run) -> None:
    runs, *_ = global_run
    (checked,) = runs["LTCUSDT"].asset_materializations_for_node("global_evaluation")
    assert checked.metadata["checkable"].value and not checked.metadata["zero_shot"].value
    names = {r.data["forecaster"] for r in checked.metadata["leaderboard/volatility"].records}
    assert {"global:lightgbm", "har"} <= names
    rows = {r.data["head"]: r.data for r in checked.metadata["global_vs_own"].records}
    assert rows["volatility"]["best_global"] == "global:lightgbm" and rows["volatility"]["har_skill"] is not None
    assert rows["price"]["own_skill"] is None  # no per-symbol evaluation was materialized


def test_a_new_symbol_is_served_zero_shot_by_the_same_graph_without_training(global_run) -> None:
    runs, home, instance = global_run
    result = runs["SOLUSDT"]
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {*DATA, *CHECK_AND_PUBLISH}
    manifest, root = _latest(home, "SOLUSDT")
    _, learner_root = _latest(home, "LTCUSDT")
    assert sha256_file(root / "model.onnx") == sha256_file(learner_root / "model.onnx")
    assert manifest.training.extra["global"]["zero_shot"] is True
    assert manifest.training.extra["global"]["trained_on"] == list(LEARNERS)
    for key in ("model_lightgbm", "onnx_lightgbm", "scaler", "datasets", "evaluation"):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=["SOLUSDT"]), limit=1
        ).records
        assert not records, key
    assert runs["SOLUSDT seconds"] < 60


def test_a_symbol_without_rows_after_the_cut_is_reported_not_failed(global_run) -> None:
    runs, home, _ = global_run
    result = runs["BTCUSDT"]
    assert result.success
    (checked,) = result.asset_materializations_for_node("global_evaluation")
    assert checked.metadata["checkable"].value is False
    assert "cut" in checked.metadata["reason"].text
    (published,) = result.asset_materializations_for_node("published_global")
    assert published.metadata["published"].value is False
    assert "BTCUSDT has no published model" in published.metadata["keeps"].text
    assert open_store(home / "store").versions("BTCUSDT", "1h") == []
