"""Publication: the ensemble or the parity-checked model whose heads pass the gate — and every trained
model as a member — with the scaler and manifest, atomically into the model store that serving reads.

Built by a factory from the same specs as the model assets (`build_published_model`)."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, FreshnessPolicy, MetadataValue, asset

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
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.ensembles import FittedEnsemble, default_ensembles
from cse_models.evaluation import Leaderboards
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import n_windows, target_rows
from cse_models.heads.tasks import task_spec
from cse_models.publication.assemble import Candidates, publish_candidates
from cse_models.specs import ModelSpec
from cse_models.store import Manifest
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
        candidates = Candidates(
            symbol=context.partition_key,
            interval=data_settings.interval,
            prepared=PreparedSeries(inputs["datasets"], data_settings.data_config(), inputs["scaler"]),
            specs=tuple(specs),
            trained={s.name: inputs[f"model_{s.name}"] for s in specs},
            exported={s.name: inputs[f"onnx_{s.name}"] for s in specs},
            boards=inputs["evaluation"],
            decisions=gate_decisions(inputs["evaluation"], evaluation_settings),
            budget=asdict(training.config()),
            ensemble=inputs.get("ensemble_weights"),
            composed=inputs.get("onnx_ensemble"),
            publish_ensemble=evaluation_settings.publish_ensemble,
        )
        workdir = cse_home.root / "publish" / context.partition_key
        with library_errors_as_failure():
            published = publish_candidates(model_store.store(), candidates, workdir=workdir)
        context.log.info(published.variants_note)
        manifest = published.manifest
        chart = forecast_chart(
            published.onnx_path, candidates.prepared.test, candidates.prepared.config, context.partition_key
        )
        context.add_output_metadata(
            {
                "version": manifest.version,
                **({"predictions_vs_actual": MetadataValue.md(chart)} if chart else {}),
                "selected": published.selected,
                **({"ensemble_choice": published.choice.reason} if published.choice else {}),
                "int8": published.variants_note,
                "heads": heads_table(tuple(manifest.heads)),
                **{f"publish/{h.name}": h.publish for h in manifest.heads},
                **{f"forced/{h.name}": h.forced for h in manifest.heads},
                "store": MetadataValue.path(model_store.store().series_location(manifest.symbol, manifest.interval)),
                "files": list(manifest.files),
            }
        )
        return manifest

    return published_model


CHART_WINDOWS = 240  # the last ten days of hourly test windows


def forecast_chart(onnx_path: Path, test: SplitArrays, data: DataConfig, symbol: str) -> str | None:
    """The published graph run by onnxruntime on the last held-back test windows, drawn against what
    happened (a task with the forecast card only: the seeds' level models have no interval to draw)."""
    if not task_spec(data.task).card:
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
