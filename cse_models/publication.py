"""Assembling a store version from a trained, exported model: the manifest and its files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cse_models.config import DataConfig
from cse_models.features.scaling import FittedScaler
from cse_models.features.sets import get_feature_set
from cse_models.features.windows import CLASS_NAMES
from cse_models.store import MODEL_FILE, SCALER_FILE, Manifest, Member, ModelStore, TensorSpec, new_version

_PACKAGES = ("jax", "flax", "optax", "orbax-checkpoint", "jax2onnx", "onnx", "onnxruntime", "polars", "numpy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class PublishRequest:
    symbol: str
    interval: str
    data: DataConfig
    scaler: FittedScaler
    onnx_path: Path
    members: tuple[Member, ...]
    metrics: dict[str, Any]
    training: dict[str, Any]
    member_paths: dict[str, Path] = field(default_factory=dict)  # name → ONNX of each member alone


def build_manifest(request: PublishRequest, *, now: datetime | None = None) -> Manifest:
    now = now or datetime.now(UTC)
    data = request.data
    n_features = len(request.scaler.feature_names)
    classification = data.task == "classification"
    output = (
        TensorSpec("probabilities", "float32", ["batch", len(CLASS_NAMES)])
        if classification
        else TensorSpec("close", "float32", ["batch", 1])
    )
    return Manifest(
        symbol=request.symbol,
        interval=request.interval,
        version=new_version(now),
        created_at=now.isoformat(),
        task=data.task,
        feature_set=data.feature_set,
        feature_names=list(request.scaler.feature_names),
        seq_len=data.seq_len,
        horizon=data.horizon,
        warmup=get_feature_set(data.feature_set).warmup,
        inputs=[TensorSpec("features", "float32", ["batch", data.seq_len, n_features])],
        outputs=[output],
        class_names=list(CLASS_NAMES) if classification else [],
        members=list(request.members),
        metrics=request.metrics,
        training={**request.training, "data": asdict(data)},
        packages=package_versions(),
    )


def publish(store: ModelStore, request: PublishRequest, *, workdir: Path, keep: int = 5) -> Manifest:
    """Write scaler.json beside the ONNX file and publish both atomically; returns the stored manifest."""
    manifest = build_manifest(request)
    workdir.mkdir(parents=True, exist_ok=True)
    scaler_path = workdir / SCALER_FILE
    request.scaler.save(scaler_path)
    members = {f"members/{name}.onnx": path for name, path in request.member_paths.items()}
    store.publish(manifest, {MODEL_FILE: request.onnx_path, SCALER_FILE: scaler_path, **members}, keep=keep)
    return store.read_manifest(manifest.symbol, manifest.interval, manifest.version)


# Which validation metric picks the model to publish, and whether higher is better.
SELECTION_METRIC = {"regression": ("mae", False), "classification": ("accuracy", True)}


def select_best(candidates: dict[str, dict[str, Any]], task: str) -> str:
    """The candidate name whose validation metrics are best for the task (ties: first name)."""
    metric, higher_is_better = SELECTION_METRIC[task]
    scored = {name: metrics["validation"][metric] for name, metrics in candidates.items()}
    pick = max if higher_is_better else min
    return pick(sorted(scored), key=scored.__getitem__)
