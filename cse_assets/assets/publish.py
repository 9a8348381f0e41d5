"""Publication: the best parity-checked model — and every trained model as a member — with the scaler
and manifest, atomically into the model store that serving reads."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import json
from dataclasses import asdict
from pathlib import Path

from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, MetadataValue, asset

from cse_assets.assets.evaluation import gate_decisions
from cse_assets.failures import library_errors_as_failure
from cse_assets.io import Codec, register_codec
from cse_assets.model_specs import ModelSpec, selected_specs
from cse_assets.partitions import symbols
from cse_assets.resources import (
    CseHomeResource,
    DataSettings,
    EvaluationSettings,
    ModelStoreResource,
    TrainingResource,
)
from cse_models.evaluation import Leaderboard
from cse_models.export.onnx import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.publication import PublishRequest, publish, select_best
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


def build_published_model(specs: list[ModelSpec]) -> AssetsDefinition:
    # Typed ins: the IO manager picks the file format from the input's type.
    ins = {
        "scaler": AssetIn("scaler", dagster_type=FittedScaler),
        "evaluation": AssetIn("evaluation", dagster_type=Leaderboard),
    }
    for spec in specs:
        ins[f"onnx_{spec.name}"] = AssetIn(f"onnx_{spec.name}", dagster_type=ExportedModel)
        ins[f"model_{spec.name}"] = AssetIn(f"model_{spec.name}", dagster_type=TrainedModel)

    @asset(name="published_model", partitions_def=symbols, kinds={"onnx"}, ins=ins)
    def published_model(
        context: AssetExecutionContext,
        data_settings: DataSettings,
        training: TrainingResource,
        model_store: ModelStoreResource,
        cse_home: CseHomeResource,
        evaluation_settings: EvaluationSettings,
        **inputs,
    ) -> Manifest:
        """The version serving loads: the best model by validation as model.onnx (raw features in, price or
        class probabilities out), every model under members/, scaler.json and manifest.json."""
        scaler: FittedScaler = inputs["scaler"]
        trained: dict[str, TrainedModel] = {s.name: inputs[f"model_{s.name}"] for s in specs}
        exported: dict[str, ExportedModel] = {s.name: inputs[f"onnx_{s.name}"] for s in specs}
        data = data_settings.data_config()
        board: Leaderboard = inputs["evaluation"]
        decisions = gate_decisions(board, evaluation_settings)
        allowed = {name: t for name, t in trained.items() if decisions[t.name].publish}
        if not allowed:  # the blocking beats_naive check stops the run before this; kept for direct calls
            raise Failure(
                description="no model passed the promotion gate: "
                + "; ".join(f"{name}: {d.reason}" for name, d in decisions.items())
            )
        best = select_best({name: t.metrics for name, t in allowed.items()}, data.task)
        gate = decisions[trained[best].name]
        request = PublishRequest(
            symbol=context.partition_key,
            interval=data_settings.interval,
            data=data,
            scaler=scaler,
            onnx_path=Path(exported[best].path),
            members=tuple(Member(name, t.name, 1.0 if name == best else 0.0) for name, t in trained.items()),
            metrics={
                **trained[best].metrics,
                "parity": exported[best].parity,
                "selected": best,
                "walk_forward": board.row(trained[best].name).metrics,
                "skill": {
                    **trained[best].metrics.get("skill", {}),
                    "walk_forward": board.row(trained[best].name).skill,
                },
                "promotion": {"publish": gate.publish, "forced": gate.forced, "reason": gate.reason},
                "members": {name: t.metrics.get("validation", {}) for name, t in trained.items()},
            },
            training={
                "budget": asdict(training.config()),
                "model": trained[best].config,
                "epochs_run": len(trained[best].history),
                "best_epoch": trained[best].best_epoch,
                "seconds": trained[best].seconds,
                "devices": trained[best].devices,
            },
            member_paths={name: Path(e.path) for name, e in exported.items()} if len(specs) > 1 else {},
        )
        with library_errors_as_failure():
            manifest = publish(model_store.store(), request, workdir=cse_home.root / "publish" / context.partition_key)
        context.add_output_metadata(
            {
                "version": manifest.version,
                "selected": best,
                "forced": gate.forced,
                "gate": gate.reason,
                "store": MetadataValue.path(str(model_store.store().series_dir(manifest.symbol, manifest.interval))),
                "files": list(manifest.files),
            }
        )
        return manifest

    return published_model


published_model = build_published_model(selected_specs())
