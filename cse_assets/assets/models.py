"""Model assets per symbol, built by a factory from a list of model specs: `model_<name>` (training,
orbax checkpoints) and `onnx_<name>` (export + parity), plus a blocking parity check per pair.

The specs come from `cse_assets.model_specs` (the set named by `CSE_MODEL_SET`); no asset code is copied.
"""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    asset,
    asset_check,
)

from cse_assets.charts import loss_curve_png, png_markdown
from cse_assets.failures import library_errors_as_failure
from cse_assets.io import Codec, register_codec
from cse_assets.model_specs import ModelSpec, selected_specs
from cse_assets.partitions import symbols
from cse_assets.resources import CseHomeResource, DataSettings, TrainingResource
from cse_models.errors import ExportParityError
from cse_models.export.onnx import ExportedModel, check_parity, export_trained
from cse_models.features.dataset import SplitArrays
from cse_models.features.heldout import graph_inputs
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import CLASS_NAMES
from cse_models.training.checkpoint import load_trained_model
from cse_models.training.history import EpochLog
from cse_models.training.run import TrainedModel, train_model

register_codec(
    TrainedModel,
    Codec(
        "model.json",
        lambda m, path: path.write_text(json.dumps(asdict(m), indent=2)),
        lambda path: TrainedModel(**json.loads(path.read_text())),
    ),
)
register_codec(
    ExportedModel,
    Codec(
        "onnx.json",
        lambda m, path: path.write_text(m.to_json()),
        lambda path: ExportedModel.from_json(path.read_text()),
    ),
)


def _training_metadata(trained: TrainedModel) -> dict[str, Any]:
    last = trained.history[-1] if trained.history else {}
    meta: dict[str, Any] = {
        "architecture": trained.name,
        "parameters": trained.parameters,
        "epochs_run": len(trained.history),
        "best_epoch": trained.best_epoch,
        "stopped_early": trained.stopped_early,
        "train_seconds": round(trained.seconds, 2),
        "samples_per_s": round(last.get("samples_per_s", 0.0), 1),
        "devices": trained.devices,
        "loss_curve": MetadataValue.md(png_markdown(loss_curve_png(trained.history, trained.name), "loss curve")),
    }
    for head, skill in trained.metrics["skill"].items():
        meta[f"validation_skill/{head}"] = float(skill)
    for group in ("validation", "naive_baseline"):
        for head, values in trained.metrics[group].items():
            meta.update({f"{group}/{head}/{k}": float(v) for k, v in values.items() if isinstance(v, int | float)})
    if trained.calibration is not None:
        meta.update({f"calibration/{k}": v for k, v in trained.calibration.items() if isinstance(v, int | float)})
        prior = dict(zip(CLASS_NAMES, trained.calibration["class_prior"], strict=True))
        meta["calibration/class_prior"] = MetadataValue.json(prior)
    confusion = trained.metrics["validation"].get("direction", {}).get("confusion_matrix")
    if confusion is not None:
        meta["confusion_matrix"] = MetadataValue.md(confusion_markdown(confusion, CLASS_NAMES))
    return meta


def confusion_markdown(confusion: list[list[int]], class_names: tuple[str, ...]) -> str:
    """Rows = true class, columns = predicted class."""
    header = "| true \\ predicted | " + " | ".join(class_names) + " |"
    rule = "|---" * (len(class_names) + 1) + "|"
    rows = [
        f"| {name} | " + " | ".join(str(v) for v in row) + " |"
        for name, row in zip(class_names, confusion, strict=True)
    ]
    return "\n".join([header, rule, *rows])


def onnx_path(cse_home: CseHomeResource, spec: ModelSpec, partition: str) -> Path:
    return cse_home.root / "onnx" / spec.name / partition / "model.onnx"


def build_model_assets(spec: ModelSpec) -> tuple[AssetsDefinition, AssetsDefinition, AssetChecksDefinition]:
    model_key, onnx_key = f"model_{spec.name}", f"onnx_{spec.name}"

    @asset(
        name=model_key,
        partitions_def=symbols,
        kinds={"jax"},
        description=f"{spec.architecture} ({spec.preset} preset) trained on the train segment, early-stopped and "
        "calibrated (shrinkage λ, conformal interval) on the validation segment; orbax checkpoints.",
        ins={"datasets": AssetIn("datasets"), "scaler": AssetIn("scaler")},
    )
    def model_asset(
        context: AssetExecutionContext,
        datasets: dict[str, SplitArrays],
        scaler: FittedScaler,
        data_settings: DataSettings,
        training: TrainingResource,
        cse_home: CseHomeResource,
    ) -> TrainedModel:
        directory = cse_home.root / "models" / spec.name / context.partition_key
        train_cfg = training.config()

        def log_epoch(entry: EpochLog) -> None:
            context.log.info(
                f"{spec.name} epoch {entry.epoch + 1}/{train_cfg.max_epochs}: train {entry.train_loss:.5f} "
                f"val {entry.val_loss:.5f} ({entry.samples_per_s:.0f} samples/s)"
            )

        with library_errors_as_failure():
            trained = train_model(
                spec,
                datasets,
                data_settings.data_config(),
                train_cfg,
                scaler,
                directory,
                resume=training.resume,
                devices=training.devices,
                on_epoch=log_epoch,
            )
        context.add_output_metadata(_training_metadata(trained))
        return trained

    @asset(
        name=onnx_key,
        partitions_def=symbols,
        kinds={"onnx"},
        description=f"{spec.name} exported to ONNX: raw features and last close in, the forecast card out "
        "(scaler and calibration folded into the graph), parity-checked against JAX.",
        ins={"trained": AssetIn(model_key), "datasets": AssetIn("datasets"), "scaler": AssetIn("scaler")},
    )
    def onnx_asset(
        context: AssetExecutionContext,
        trained: TrainedModel,
        datasets: dict[str, SplitArrays],
        scaler: FittedScaler,
        data_settings: DataSettings,
        cse_home: CseHomeResource,
    ) -> ExportedModel:
        config = data_settings.data_config()
        path = onnx_path(cse_home, spec, context.partition_key)
        with library_errors_as_failure():
            exported = export_trained(
                load_trained_model(trained.directory),
                spec.name,
                scaler,
                config,
                path,
                graph_inputs(datasets["test"], config),
                trained.head_calibration(),
            )
        context.add_output_metadata(
            {
                "path": MetadataValue.path(exported.path),
                "op_types": exported.op_types,
                **{f"parity/{k}": v for k, v in exported.parity.items() if k != "batches"},
            }
        )
        return exported

    @asset_check(
        asset=onnx_key,
        name="onnx_parity",
        blocking=True,
        partitions_def=symbols,
        additional_ins={"trained": AssetIn(model_key), "datasets": AssetIn("datasets"), "scaler": AssetIn("scaler")},
        description="onnxruntime agrees with JAX on held-back test windows (rtol 1e-3, atol 1e-5).",
    )
    def parity_check(
        context: AssetCheckExecutionContext,
        trained: TrainedModel,
        datasets: dict[str, SplitArrays],
        scaler: FittedScaler,
        data_settings: DataSettings,
        cse_home: CseHomeResource,
    ) -> AssetCheckResult:
        config = data_settings.data_config()
        partition = context.op_execution_context.partition_key
        path = onnx_path(cse_home, spec, partition)
        inputs = graph_inputs(datasets["test"], config)
        try:
            report = check_parity(
                load_trained_model(trained.directory), scaler, config, path, inputs, trained.head_calibration()
            )
        except ExportParityError as exc:
            return AssetCheckResult(passed=False, description=str(exc))
        return AssetCheckResult(
            passed=True, metadata={"max_abs_diff": report.max_abs_diff, "max_rel_diff": report.max_rel_diff}
        )

    return model_asset, onnx_asset, parity_check


MODEL_SPECS = selected_specs()
_BUILT = [build_model_assets(spec) for spec in MODEL_SPECS]
model_assets = [a for built in _BUILT for a in built[:2]]
model_checks = [built[2] for built in _BUILT]
