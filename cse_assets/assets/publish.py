"""Publication: the parity-checked ONNX model, its scaler and manifest, atomically into the model store."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import json
from dataclasses import asdict
from pathlib import Path

from dagster import AssetExecutionContext, AssetIn, MetadataValue, asset

from cse_assets.failures import library_errors_as_failure
from cse_assets.io import Codec, register_codec
from cse_assets.partitions import symbols
from cse_assets.resources import CseHomeResource, DataSettings, ModelStoreResource, TrainingResource
from cse_models.export.onnx import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.publication import PublishRequest, publish
from cse_models.store import Manifest, Member
from cse_models.training.run import TrainedModel

register_codec(
    Manifest,
    Codec(
        "manifest.json",
        lambda m, path: path.write_text(json.dumps(m.to_dict(), indent=2)),
        lambda path: Manifest.from_dict(json.loads(path.read_text())),
    ),
)


@asset(
    partitions_def=symbols,
    kinds={"onnx"},
    ins={"exported": AssetIn("onnx_lstm"), "trained": AssetIn("model_lstm"), "scaler": AssetIn("scaler")},
)
def published_model(
    context: AssetExecutionContext,
    exported: ExportedModel,
    trained: TrainedModel,
    scaler: FittedScaler,
    data_settings: DataSettings,
    training: TrainingResource,
    model_store: ModelStoreResource,
    cse_home: CseHomeResource,
) -> Manifest:
    """The version serving loads: model.onnx (raw features in, price out) + scaler.json + manifest.json."""
    request = PublishRequest(
        symbol=context.partition_key,
        interval=data_settings.interval,
        data=data_settings.data_config(),
        scaler=scaler,
        onnx_path=Path(exported.path),
        members=(Member("lstm", trained.name, 1.0),),
        metrics={**trained.metrics, "parity": exported.parity},
        training={
            "budget": asdict(training.config()),
            "model": trained.config,
            "epochs_run": len(trained.history),
            "best_epoch": trained.best_epoch,
            "seconds": trained.seconds,
            "devices": trained.devices,
        },
    )
    with library_errors_as_failure():
        manifest = publish(model_store.store(), request, workdir=cse_home.root / "publish" / context.partition_key)
    context.add_output_metadata(
        {
            "version": manifest.version,
            "store": MetadataValue.path(str(model_store.store().series_dir(manifest.symbol, manifest.interval))),
            "files": list(manifest.files),
        }
    )
    return manifest
