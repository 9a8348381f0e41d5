"""Publication: the ensemble or the parity-checked model whose heads pass the gate — and every trained
model as a member — with the scaler and manifest, atomically into the model store that serving reads.

Built by a factory from the same specs as the model assets (`build_published_model`)."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, FreshnessPolicy, MetadataValue, asset

from cse_assets.assets.evaluation import gate_decisions
from cse_assets.catalog import PUBLISH
from cse_assets.charts import forecast_chart_png, png_markdown
from cse_assets.failures import library_errors_as_failure
from cse_assets.metadata import heads_table
from cse_assets.partitions import symbols
from cse_assets.resources import (
    CseHomeResource,
    DataSettings,
    EvaluationSettings,
    ModelStoreResource,
    TrainingResource,
)
from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.segments import SplitArrays
from cse_models.ensembles import FittedEnsemble, default_ensembles
from cse_models.evaluation import Leaderboards
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import n_windows, target_rows
from cse_models.publication.ensemble_choice import EnsembleChoice, ensemble_or_member
from cse_models.publication.publish import (
    PublishRequest,
    data_range,
    head_verdicts,
    leaderboard_summary,
    publish,
    quantized_variants,
    select_best,
)
from cse_models.specs import ModelSpec
from cse_models.store import Manifest, Member
from cse_models.training.summary import TrainedModel

# `cse_hourly` refreshes five minutes past each hour and a demo-budget refresh takes minutes: a version
# older than 90 minutes means one hour was missed (warn), older than 3 hours that the automation or
# the source is down (fail). With the bundled sample nothing new arrives, so the UI rightly shows it
# going stale there too: the sample is a fixed year, not a feed.
PUBLISHED_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(minutes=90))


def build_published_model(specs: Sequence[ModelSpec]) -> AssetsDefinition:
    # Typed ins: the IO manager picks the file format from the input's type.
    ins = {
        "scaler": AssetIn("scaler", dagster_type=FittedScaler),
        "datasets": AssetIn("datasets", dagster_type=dict),
        "evaluation": AssetIn("evaluation", dagster_type=Leaderboards),
    }
    for spec in specs:
        ins[f"onnx_{spec.name}"] = AssetIn(f"onnx_{spec.name}", dagster_type=ExportedModel)
        ins[f"model_{spec.name}"] = AssetIn(f"model_{spec.name}", dagster_type=TrainedModel)
    if default_ensembles(tuple(spec.name for spec in specs)):
        ins["ensemble_weights"] = AssetIn("ensemble_weights", dagster_type=FittedEnsemble)
        ins["onnx_ensemble"] = AssetIn("onnx_ensemble", dagster_type=ExportedModel)

    @asset(
        name="published_model",
        partitions_def=symbols,
        kinds={"onnx"},
        group_name=PUBLISH.group,
        owners=PUBLISH.owners,
        code_version=PUBLISH.code_version,
        freshness_policy=PUBLISHED_FRESHNESS,
        ins=ins,
    )
    def published_model(
        context: AssetExecutionContext,
        data_settings: DataSettings,
        training: TrainingResource,
        model_store: ModelStoreResource,
        cse_home: CseHomeResource,
        evaluation_settings: EvaluationSettings,
        **inputs,
    ) -> Manifest:
        """The version serving loads: the ensemble (ONE graph holding every member) when its walk-forward
        price skill beats its best member's, else the model with the most heads through the gate, as
        model.onnx (raw features and last close in, the forecast card out), scaler.json and manifest.json
        listing each head with its walk-forward skill and verdict (serving answers only the heads that
        passed) and, for an ensemble, its method, weights and the members' outputs in the graph."""
        scaler: FittedScaler = inputs["scaler"]
        trained: dict[str, TrainedModel] = {s.name: inputs[f"model_{s.name}"] for s in specs}
        exported: dict[str, ExportedModel] = {s.name: inputs[f"onnx_{s.name}"] for s in specs}
        data = data_settings.data_config()
        boards: Leaderboards = inputs["evaluation"]
        decisions = gate_decisions(boards, evaluation_settings)
        allowed = {name: heads for name, heads in decisions.items() if any(d.publish for d in heads.values())}
        members_allowed = {name: heads for name, heads in allowed.items() if name in trained}
        fitted: FittedEnsemble | None = inputs.get("ensemble_weights")
        choice = None if fitted is None else ensemble_or_member(boards, fitted.name, tuple(trained))
        always = evaluation_settings.publish_ensemble == "always"
        use_ensemble = (
            fitted is not None and fitted.name in allowed and (choice.publish_ensemble or always or not members_allowed)
        )
        if not use_ensemble and not members_allowed:  # the blocking beats_naive check stops the run before this
            raise Failure(
                description="no head of any model passed the promotion gate: "
                + "; ".join(f"{n}/{h}: {d.reason}" for n, heads in decisions.items() for h, d in heads.items())
            )
        best = fitted.name if use_ensemble else select_best(boards, members_allowed)
        onnx_file = Path(inputs["onnx_ensemble"].path if use_ensemble else exported[best].path)
        workdir = cse_home.root / "publish" / context.partition_key
        with library_errors_as_failure():
            variants = quantized_variants(onnx_file, workdir / "variants", inputs["datasets"], data, scaler)
        context.log.info(variants.note)
        request = PublishRequest(
            symbol=context.partition_key,
            interval=data_settings.interval,
            data=data,
            scaler=scaler,
            onnx_path=onnx_file,
            members=published_members(trained, best, fitted if use_ensemble else None),
            metrics={
                **(trained[best].metrics if best in trained else {}),
                "parity": inputs["onnx_ensemble"].parity if use_ensemble else exported[best].parity,
                "selected": best,
                **({"calibration": trained[best].calibration} if best in trained else {}),
                "walk_forward": {head: boards[head].row(best).metrics for head in decisions[best]},
                "walk_forward_skill": {head: boards[head].row(best).skill for head in decisions[best]},
                "members": {name: t.metrics["validation"] for name, t in trained.items()},
                "leaderboards": leaderboard_summary(boards, tuple(decisions[best])),
                "data_range": data_range(inputs["datasets"]),
                **({"ensemble_choice": choice.reason} if choice else {}),
            },
            training={
                "budget": asdict(training.config()),
                "members": {
                    s.name: {"spec": s.as_dict(), "seconds": trained[s.name].seconds, "model": trained[s.name].config}
                    for s in specs
                },
                **(
                    {}
                    if use_ensemble
                    else {
                        "spec": next(s for s in specs if s.name == best).as_dict(),
                        "model": trained[best].config,
                        "epochs_run": len(trained[best].history),
                        "best_epoch": trained[best].best_epoch,
                        "seconds": trained[best].seconds,
                        "devices": trained[best].devices,
                    }
                ),
            },
            member_paths={} if use_ensemble or len(specs) < 2 else {n: Path(e.path) for n, e in exported.items()},
            heads=head_verdicts(boards, best, decisions[best]),
            ensemble=ensemble_entry(fitted, choice, inputs["onnx_ensemble"], always and not choice.publish_ensemble)
            if use_ensemble
            else {},
            variants=variants.variants,
            variant_files=variants.files,
        )
        with library_errors_as_failure():
            manifest = publish(model_store.store(), request, workdir=workdir)
        chart = forecast_chart(onnx_file, inputs["datasets"]["test"], data, context.partition_key)
        context.add_output_metadata(
            {
                "version": manifest.version,
                **({"predictions_vs_actual": MetadataValue.md(chart)} if chart else {}),
                "selected": best,
                **({"ensemble_choice": choice.reason} if choice else {}),
                "int8": variants.note,
                "heads": heads_table(request.heads),
                **{f"publish/{h.name}": h.publish for h in request.heads},
                **{f"forced/{h.name}": h.forced for h in request.heads},
                "store": MetadataValue.path(model_store.store().series_location(manifest.symbol, manifest.interval)),
                "files": list(manifest.files),
            }
        )
        return manifest

    return published_model


def published_members(trained: dict[str, TrainedModel], best: str, fitted: FittedEnsemble | None) -> tuple[Member, ...]:
    """Every trained model as a member: an ensemble's with its price weights (equal for a median), a single
    model's with weight 1 for the published one and 0 for the others."""
    if fitted is None:
        return tuple(Member(name, t.name, 1.0 if name == best else 0.0) for name, t in trained.items())
    price = fitted.weights().get("price", dict.fromkeys(fitted.members, 1 / len(fitted.members)))
    return tuple(Member(name, trained[name].name, price[name]) for name in fitted.members)


def ensemble_entry(fitted: FittedEnsemble, choice: EnsembleChoice, composed: ExportedModel, by_setting: bool) -> dict:
    """The manifest's `ensemble`: what it is, how it combines, where its members' outputs are, and why."""
    from cse_models.ensembles.compose import member_output
    from cse_models.heads.layout import FORECAST_OUTPUTS

    return {
        "name": fitted.name,
        "method": fitted.method,
        "members": list(fitted.members),
        "weights": fitted.weights(),
        "combiners": fitted.to_dict()["combiners"],
        "interval_scale": fitted.interval_scale,
        "member_outputs": {m: {o: member_output(m, o) for o in FORECAST_OUTPUTS} for m in fitted.members},
        "reason": choice.reason + ("; published because publish_ensemble='always'" if by_setting else ""),
        "skill": {"ensemble": choice.ensemble_skill, choice.best_member: choice.best_member_skill},
        "op_types": composed.op_types,
    }


CHART_WINDOWS = 240  # the last ten days of hourly test windows


def forecast_chart(onnx_path: Path, test: SplitArrays, data: DataConfig, symbol: str) -> str | None:
    """The published graph run by onnxruntime on the last held-back test windows, drawn against what
    happened (forecast task only: the seeds' level models have no interval to draw)."""
    if data.task != "forecast":
        return None
    import onnxruntime as ort

    count = n_windows(test.close.shape[0], data.seq_len, data.horizon)
    rows = target_rows(test.close.shape[0], data.seq_len, data.horizon)[-CHART_WINDOWS:]
    inputs = {name: values[-CHART_WINDOWS:] for name, values in graph_inputs(test, data, limit=count).items()}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    close, lower, upper = session.run(["close", "lower", "upper"], inputs)
    times = [datetime.fromtimestamp(ms / 1000, UTC) for ms in test.open_time_ms[rows]]
    png = forecast_chart_png(
        times, test.close[rows], close[:, 0], lower[:, 0], upper[:, 0], f"{symbol}: held-back test windows"
    )
    return png_markdown(png, "predictions vs actual")
