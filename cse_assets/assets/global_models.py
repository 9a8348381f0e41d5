"""Global models: one graph per model spec trained on every symbol's rows before one calendar cut, checked on
each symbol's rows after it, and published for each symbol whose gate passes — a symbol never trained on
included (zero-shot: its check and publication run onnxruntime on its klines, no training).

- `global_model_<name>` (unpartitioned, group "global", pool "training"): `train_global` over the
  `features` of every symbol partition (`AllPartitionMapping`; partitions never materialized are left out
  and listed). Run by the `global_training` job, never by a symbol's `refresh`: retraining it once per
  symbol refresh would change the shared graph under every other symbol.
- `global_evaluation` (per symbol): `check_global` — the exported graphs on the symbol's held-out rows
  beside its baselines → a `GlobalCheck` (or why it is not checkable), with the symbol's own walk-forward
  skill beside it when its `evaluation` was materialized (an optional input: a new symbol has none).
- `published_global` (per symbol): `publish_candidates(global_candidates(...))`. It depends on
  `published_model` only for order (`deps`), so in a full refresh it publishes after, and when it passes
  wins over, the symbol's own model, while `serve_new_symbol` runs it without any per-symbol training.
"""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import time
from collections.abc import Sequence

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    asset,
)

from cse_assets.assets import DomainDefinitions
from cse_assets.catalog import GLOBAL_EVALUATION, GLOBAL_MODELS, GLOBAL_PUBLISH, TRAINING_POOL
from cse_assets.failures import library_errors_as_failure
from cse_assets.global_check import GlobalCheck, check_symbol, graph_hashes
from cse_assets.metadata import global_model_metadata, global_vs_own_table, heads_table, leaderboard_table, reason_table
from cse_assets.partitions import symbols
from cse_assets.resources import (
    CseHomeResource,
    DataSettings,
    EvaluationSettings,
    ModelStoreResource,
    TrainingResource,
)
from cse_models.errors import ConfigError, PublicationError
from cse_models.evaluation import Leaderboards
from cse_models.evaluation.panel import global_name
from cse_models.members import member_kind
from cse_models.publication.assemble import Candidates, publish_candidates
from cse_models.publication.global_model import GlobalModel, global_candidates, keeps_current, train_global
from cse_models.specs import ModelSpec
from cse_models.store import Manifest

NOT_MATERIALIZED = "its features were never materialized"


def global_model_key(spec: ModelSpec) -> str:
    return f"global_model_{spec.name}"


def global_model_asset_for(spec: ModelSpec) -> AssetsDefinition:
    """`global_model_<name>`: `spec` trained once on every symbol's rows before the panel's cut."""
    kind = member_kind(spec.architecture)

    @asset(
        name=global_model_key(spec),
        kinds={*kind.libraries(spec.architecture), "onnx"},
        group_name=GLOBAL_MODELS.group,
        owners=GLOBAL_MODELS.owners,
        code_version=GLOBAL_MODELS.code_version,
        pool=TRAINING_POOL,
        description=f"{spec.architecture} ({spec.preset} preset, {kind.name}) trained ONCE on the pooled train / "
        "val rows of every symbol partition before one calendar cut (one pooled scaler), exported as ONE graph "
        "that every symbol whose held-out check passes serves (`published_global`), zero-shot symbols included.",
        ins={
            "features": AssetIn(
                "features",
                partition_mapping=AllPartitionMapping(),
                metadata={"partition_set": True, "allow_missing_partitions": True},
            )
        },
    )
    def global_model(
        context: AssetExecutionContext,
        features: dict[str, pl.DataFrame],
        data_settings: DataSettings,
        training: TrainingResource,
        cse_home: CseHomeResource,
    ) -> GlobalModel:
        started = time.perf_counter()
        with library_errors_as_failure():
            if not features:
                raise ConfigError("no symbol partition has materialized features: run `data_refresh` first")
            model = train_global(
                spec,
                features,
                data_settings.data_config(),
                training.config(),
                cse_home.root / "global" / spec.name,
                resume=training.resume,
                devices=training.devices,
            )
        unseen = {
            s: NOT_MATERIALIZED for s in context.instance.get_dynamic_partitions(symbols.name) if s not in features
        }
        context.add_output_metadata(
            {
                **global_model_metadata(model, graph_hashes([model])[model.name]),
                "skipped": reason_table({**model.skipped, **unseen}, "why it was not learned from"),
                "seconds": round(time.perf_counter() - started, 2),
                "serves": MetadataValue.md(
                    f"Learned from {', '.join(model.learners)}. Serves every symbol whose `published_global` "
                    "passed the gate with this graph (its sha256 is in each version's manifest and in "
                    "`published_global`'s metadata per partition); symbols it never learned from are zero-shot."
                ),
            }
        )
        return model

    return global_model


def _global_ins(specs: Sequence[ModelSpec]) -> dict[str, AssetIn]:
    """Every global model as an optional input: before the first `global_training` there is none."""
    return {
        global_model_key(s): AssetIn(
            global_model_key(s), dagster_type=GlobalModel | None, metadata={"allow_missing": True}
        )
        for s in specs
    }


def _models(inputs: dict, specs: Sequence[ModelSpec]) -> list[GlobalModel]:
    return [model for s in specs if (model := inputs[global_model_key(s)]) is not None]


def global_evaluation_for(specs: Sequence[ModelSpec]) -> AssetsDefinition:
    """`global_evaluation`: the global graphs checked on one symbol's held-out rows, no training."""

    @asset(
        partitions_def=symbols,
        kinds={"onnx", "polars"},
        group_name=GLOBAL_EVALUATION.group,
        owners=GLOBAL_EVALUATION.owners,
        code_version=GLOBAL_EVALUATION.code_version,
        description="The global models' exported graphs (onnxruntime, as served) on the symbol's rows after the "
        "global cut, beside each head's baselines fit on its earlier rows: per-head held-out leaderboards, "
        "zero-shot for a symbol they never learned from. No training: it takes about as long as reading the "
        "features. A coin listed after the cut is checked on its own rows after it (baselines fit on the first "
        "ones); a symbol without rows after the cut is reported as not checkable (it keeps its own model). "
        "`global_vs_own` puts the best global skill beside the symbol's own walk-forward best (when "
        "its `evaluation` was materialized; other points, so a guide, not a test) and HAR's.",
        ins={
            "features": AssetIn("features"),
            "evaluation": AssetIn("evaluation", dagster_type=Leaderboards | None, metadata={"allow_missing": True}),
            **_global_ins(specs),
        },
    )
    def global_evaluation(context: AssetExecutionContext, data_settings: DataSettings, **inputs) -> GlobalCheck:
        symbol = context.partition_key
        info = {"interval": data_settings.interval}
        with library_errors_as_failure():
            check = check_symbol(_models(inputs, specs), symbol, inputs["features"], data_settings.data_config(), info)
        meta = {"checkable": check.checkable, "zero_shot": check.zero_shot, "graphs": check.graphs}
        if check.boards is None:
            context.log.warning(check.reason)
            meta["reason"] = check.reason
        else:
            boards = check.boards.boards
            meta |= {f"leaderboard/{head}": leaderboard_table(board) for head, board in boards.items()}
            meta["global_vs_own"] = global_vs_own_table(check.boards, inputs["evaluation"])
        context.add_output_metadata(meta)
        return check

    return global_evaluation


def published_global_for(specs: Sequence[ModelSpec]) -> AssetsDefinition:
    """`published_global`: the shared graph published for one symbol when its held-out check passes."""

    @asset(
        partitions_def=symbols,
        kinds={"onnx"},
        group_name=GLOBAL_PUBLISH.group,
        owners=GLOBAL_PUBLISH.owners,
        code_version=GLOBAL_PUBLISH.code_version,
        description="The global graph whose heads pass the gate on the symbol's held-out rows, published for it "
        "(the same model.onnx bytes for every symbol; manifest `training.global`: trained_on, cut, zero_shot). "
        "After `published_model` in a refresh, so a passing global version is the latest; no publication, with "
        "the reason, when the symbol is not checkable, no head passes, or the version it serves now serves more "
        "heads than the global graph would (it keeps that version).",
        ins={"features": AssetIn("features"), "global_evaluation": AssetIn("global_evaluation"), **_global_ins(specs)},
        deps=[AssetKey("published_model")],
    )
    def published_global(
        context: AssetExecutionContext,
        data_settings: DataSettings,
        training: TrainingResource,
        evaluation_settings: EvaluationSettings,
        model_store: ModelStoreResource,
        cse_home: CseHomeResource,
        **inputs,
    ) -> Manifest | None:
        check: GlobalCheck = inputs["global_evaluation"]
        symbol, store = context.partition_key, model_store.store()
        published, reason = None, check.reason
        latest = store.latest(symbol, data_settings.interval)
        if check.checkable:
            candidates = _candidates(inputs, specs, check, data_settings, training, evaluation_settings)
            workdir = cse_home.root / "publish_global" / symbol
            current = store.read_manifest(symbol, data_settings.interval, latest) if latest else None
            with library_errors_as_failure():
                try:  # the gate, and the heads served now: outcomes for this symbol, not failed runs
                    reason = keeps_current(candidates, current)
                    if reason is None:
                        published = publish_candidates(store, candidates, workdir=workdir)
                except PublicationError as exc:
                    reason = str(exc)
        if published is None:
            kept = f"{symbol} keeps its own model ({latest})" if latest else f"{symbol} has no published model"
            context.log.warning(f"global model not published: {reason}; {kept}")
            context.add_output_metadata({"published": False, "reason": reason, "keeps": kept})
            return None
        manifest = published.manifest
        selected = next(s for s in specs if global_name(s) == published.selected)
        context.add_output_metadata(
            {
                "published": True,
                "version": manifest.version,
                "global_model": MetadataValue.asset(AssetKey(global_model_key(selected))),
                "graph_sha256": check.graphs[published.selected],
                **{f"global/{k}": v for k, v in manifest.training.extra["global"].items()},
                "heads": heads_table(tuple(manifest.heads)),
                "store": MetadataValue.path(store.series_location(manifest.symbol, manifest.interval)),
            }
        )
        return manifest

    return published_global


def _candidates(
    inputs: dict,
    specs: Sequence[ModelSpec],
    check: GlobalCheck,
    data_settings: DataSettings,
    training: TrainingResource,
    settings: EvaluationSettings,
) -> Candidates:
    """The checked global graphs as the symbol's candidates (Failure when one changed since its check)."""
    models = [m for m in _models(inputs, specs) if m.name in check.graphs]
    with library_errors_as_failure():
        if graph_hashes(models) != check.graphs:
            raise ConfigError("a global model changed since `global_evaluation` checked it: materialize it again")
        return global_candidates(
            models,
            check.symbol,
            data_settings.interval,
            inputs["features"],
            check.boards,
            training.config(),
            max_p_value=settings.max_p_value,
            force=settings.force_publish,
        )


def build_global(specs: Sequence[ModelSpec]) -> DomainDefinitions:
    """Every spec's `global_model_<name>`, and the per-symbol `global_evaluation` and `published_global`."""
    return DomainDefinitions(
        assets=(
            *(global_model_asset_for(spec) for spec in specs),
            global_evaluation_for(specs),
            published_global_for(specs),
        )
    )
