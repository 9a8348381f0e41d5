"""Model assets per symbol, built by a factory from the model specs: `model_<name>` (training into a model
directory) and `onnx_<name>` (export + parity), plus a blocking parity check per pair.

The specs come from `cse_models.model_sets` (the set the definitions were built with); no asset code is
copied. Each body calls the spec's member kind (`cse_models.members.member_kind`: a Flax network or a
classical tree model), which imports its training and export code (JAX, Flax, jax2onnx, LightGBM,
scikit-learn) only when called: these definitions load in every Dagster process, most of which never train.
"""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
from collections.abc import Sequence
from pathlib import Path

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

from cse_assets.assets import DomainDefinitions
from cse_assets.catalog import MODELS, TRAINING_POOL
from cse_assets.failures import library_errors_as_failure
from cse_assets.metadata import training_metadata
from cse_assets.partitions import symbols
from cse_assets.resources import CseHomeResource, DataSettings, TrainingResource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import ExportParityError
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.members import member_kind
from cse_models.specs import ModelSpec
from cse_models.training.history import EpochLog
from cse_models.training.summary import TrainedModel


def onnx_path(cse_home: CseHomeResource, spec: ModelSpec, partition: str) -> Path:
    return cse_home.root / "onnx" / spec.name / partition / "model.onnx"


def build_model_assets(spec: ModelSpec) -> DomainDefinitions:
    """`model_<name>`, `onnx_<name>` and the `onnx_parity` check on the latter, for one spec."""
    return DomainDefinitions(assets=(model_asset_for(spec), onnx_asset_for(spec)), checks=(parity_check_for(spec),))


def model_asset_for(spec: ModelSpec) -> AssetsDefinition:
    """`model_<name>`: the spec trained by its member kind (a Flax network or a classical model)."""
    model_key = f"model_{spec.name}"
    overrides = f" with {spec.overrides}" if spec.overrides else ""
    kind = member_kind(spec.architecture)

    @asset(
        name=model_key,
        partitions_def=symbols,
        kinds=set(kind.libraries(spec.architecture)),
        group_name=MODELS.group,
        owners=MODELS.owners,
        code_version=MODELS.code_version,
        pool=TRAINING_POOL,
        description=f"{spec.architecture} ({spec.preset} preset{overrides}, {kind.name}) trained on the train "
        "segment, early-stopped and calibrated (shrinkage λ, conformal interval) on the validation segment; "
        "model directory under $CSE_HOME/models.",
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
            trained = kind.train(
                spec,
                PreparedSeries(datasets, data_settings.data_config(), scaler),
                train_cfg,
                directory,
                resume=training.resume,
                devices=training.devices,
                on_epoch=log_epoch,
            )
        context.add_output_metadata(training_metadata(trained))
        return trained

    return model_asset


def onnx_asset_for(spec: ModelSpec) -> AssetsDefinition:
    """`onnx_<name>`: the trained model exported as the forecast-card graph."""
    model_key, onnx_key = f"model_{spec.name}", f"onnx_{spec.name}"
    kind = member_kind(spec.architecture)

    @asset(
        name=onnx_key,
        partitions_def=symbols,
        kinds={"onnx"},
        group_name=MODELS.group,
        owners=MODELS.owners,
        code_version=MODELS.code_version,
        pool=TRAINING_POOL,
        description=f"{spec.name} exported to ONNX: raw features and last close in, the forecast card out "
        "(scaler and calibration folded into the graph), parity-checked against the Python model.",
        ins={"trained": AssetIn(model_key), "datasets": AssetIn("datasets"), "scaler": AssetIn("scaler")},
    )
    def onnx_asset(
        context: AssetExecutionContext,
        trained: TrainedModel,
        datasets: dict[str, SplitArrays],
        scaler: FittedScaler,
        data_settings: DataSettings,
        cse_home: CseHomeResource,
        training: TrainingResource,  # unused in the body: its setup turns the JAX compilation cache on
    ) -> ExportedModel:
        config = data_settings.data_config()
        path = onnx_path(cse_home, spec, context.partition_key)
        with library_errors_as_failure():
            exported = kind.export(
                trained, scaler, config, path, graph_inputs(datasets["test"], config), model_name=spec.name
            )
        context.add_output_metadata(
            {
                "path": MetadataValue.path(exported.path),
                "op_types": exported.op_types,
                **{f"parity/{k}": v for k, v in exported.parity.items() if k != "batches"},
            }
        )
        return exported

    return onnx_asset


def parity_check_for(spec: ModelSpec) -> AssetChecksDefinition:
    """The blocking `onnx_parity` check of `onnx_<name>` against the Python model."""
    model_key, onnx_key = f"model_{spec.name}", f"onnx_{spec.name}"
    kind = member_kind(spec.architecture)

    @asset_check(
        asset=onnx_key,
        name="onnx_parity",
        blocking=True,
        partitions_def=symbols,
        pool=TRAINING_POOL,
        additional_ins={"trained": AssetIn(model_key), "datasets": AssetIn("datasets"), "scaler": AssetIn("scaler")},
        description="onnxruntime agrees with the Python model (JAX, LightGBM or scikit-learn) on held-back test "
        "windows (rtol 1e-3, atol 1e-5).",
    )
    def parity_check(
        context: AssetCheckExecutionContext,
        trained: TrainedModel,
        datasets: dict[str, SplitArrays],
        scaler: FittedScaler,
        data_settings: DataSettings,
        cse_home: CseHomeResource,
        training: TrainingResource,  # unused in the body: its setup turns the JAX compilation cache on
    ) -> AssetCheckResult:
        config = data_settings.data_config()
        partition = context.op_execution_context.partition_key
        path = onnx_path(cse_home, spec, partition)
        inputs = graph_inputs(datasets["test"], config)
        try:
            report = kind.check_parity(trained, scaler, config, path, inputs)
        except ExportParityError as exc:
            return AssetCheckResult(passed=False, description=str(exc))
        return AssetCheckResult(
            passed=True, metadata={"max_abs_diff": report.max_abs_diff, "max_rel_diff": report.max_rel_diff}
        )

    return parity_check


def build_models(specs: Sequence[ModelSpec]) -> DomainDefinitions:
    """Every spec's asset pair and parity check."""
    built = [build_model_assets(spec) for spec in specs]
    return DomainDefinitions(
        assets=tuple(a for b in built for a in b.assets), checks=tuple(c for b in built for c in b.checks)
    )
