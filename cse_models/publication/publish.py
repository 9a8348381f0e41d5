"""Assembling a store version from a trained, exported model: the manifest and its files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import QuantizationError
from cse_models.evaluation.report import Leaderboards, PromotionDecision
from cse_models.features.scaling import FittedScaler
from cse_models.features.sets import get_feature_set
from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.layout import HEAD_OUTPUTS, INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES, input_names
from cse_models.heads.tasks import task_spec
from cse_models.store import (
    MODEL_FILE,
    SCALER_FILE,
    HeadVerdict,
    Manifest,
    Member,
    ModelStore,
    TensorSpec,
    new_version,
)

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
    heads: tuple[HeadVerdict, ...] = ()
    # The manifest's `ensemble` when onnx_path is a composed ensemble: its `member_outputs` (member → card
    # output → graph output) become extra graph outputs, so members come out of the same run.
    ensemble: dict[str, Any] = field(default_factory=dict)
    # Other encodings of onnx_path (the manifest's `variants`) and their files, stored beside model.onnx.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_files: dict[str, Path] = field(default_factory=dict)  # file name in the version → local path


def graph_outputs(task: str, ensemble: dict[str, Any] | None = None) -> list[TensorSpec]:
    """The task's outputs, then each ensemble member's card outputs inside the composed graph."""
    members = (ensemble or {}).get("member_outputs", {})
    names = [(name, name) for name in OUTPUT_NAMES[task]]
    names += [(graph, output) for outputs in members.values() for output, graph in outputs.items()]
    return [
        TensorSpec(graph, "float32", ["batch", len(CLASS_NAMES) if output == "probabilities" else 1])
        for graph, output in names
    ]


def graph_input_specs(data: DataConfig, n_features: int) -> list[TensorSpec]:
    shapes = {INPUT_NAME: ["batch", data.seq_len, n_features], LAST_CLOSE_INPUT: ["batch", 1]}
    return [TensorSpec(name, "float32", shapes[name]) for name in input_names(data.task)]


def head_verdicts(boards: Leaderboards, model: str, decisions: dict[str, PromotionDecision]) -> tuple[HeadVerdict, ...]:
    """The manifest's `heads`: each head's outputs, walk-forward skill vs its reference and verdict."""
    verdicts = []
    for head, decision in decisions.items():
        board = boards[head]
        row = board.row(model)
        verdicts.append(
            HeadVerdict(
                name=head,
                outputs=list(HEAD_OUTPUTS[head]),
                reference=board.reference,
                skill=row.skill,
                p_value=row.dm.p_value_model_better,
                publish=decision.publish,
                passed=decision.passed,
                forced=decision.forced,
                reason=decision.reason,
            )
        )
    return tuple(verdicts)


def leaderboard_summary(boards: Leaderboards, heads: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each head's walk-forward leaderboard, every forecaster beside its baselines, compact enough for the
    manifest (the web page and operators read it without the Dagster instance)."""
    return {
        head: {
            "reference": boards[head].reference,
            "n_points": boards[head].n_points,
            "first_target": boards[head].info.get("first_target"),
            "last_target": boards[head].info.get("last_target"),
            "rows": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "skill": r.skill,
                    "p_value": r.dm.p_value_model_better,
                    "metrics": r.metrics,
                }
                for r in boards[head].rows
            ],
        }
        for head in heads
    }


def data_range(datasets: dict[str, SplitArrays]) -> dict[str, str]:
    """The span of candles the published model learned from and was checked on (train → test)."""

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat()

    return {"start": iso(datasets["train"].open_time_ms[0]), "end": iso(datasets["test"].open_time_ms[-1])}


def build_manifest(request: PublishRequest, *, now: datetime | None = None) -> Manifest:
    now = now or datetime.now(UTC)
    data = request.data
    n_features = len(request.scaler.feature_names)
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
        inputs=graph_input_specs(data, n_features),
        outputs=graph_outputs(data.task, request.ensemble),
        class_names=list(task_spec(data.task).class_names),
        members=list(request.members),
        heads=list(request.heads),
        metrics=request.metrics,
        training={**request.training, "data": asdict(data)},
        packages=package_versions(),
        ensemble=request.ensemble,
        variants=request.variants,
    )


def publish(store: ModelStore, request: PublishRequest, *, workdir: Path, keep: int = 5) -> Manifest:
    """Write scaler.json beside the ONNX file and publish both atomically; returns the stored manifest."""
    manifest = build_manifest(request)
    workdir.mkdir(parents=True, exist_ok=True)
    scaler_path = workdir / SCALER_FILE
    request.scaler.save(scaler_path)
    members = {f"members/{name}.onnx": path for name, path in request.member_paths.items()}
    files = {MODEL_FILE: request.onnx_path, SCALER_FILE: scaler_path, **members, **request.variant_files}
    store.publish(manifest, files, keep=keep)
    return store.read_manifest(manifest.symbol, manifest.interval, manifest.version)


@dataclass(frozen=True)
class Variants:
    """What `quantized_variants` adds to a publish request, or why it adds nothing."""

    variants: dict[str, dict[str, Any]]
    files: dict[str, Path]
    note: str


def quantized_variants(onnx_path: Path, workdir: Path, data: PreparedSeries) -> Variants:
    """The int8 variant of the graph to publish, proved against fp32 on the held-back test windows. A
    variant that breaks its tolerance is left out (the fp32 graph is still published) and the note says
    why: the int8 file is an option serving may take, never a reason to withhold a model. Its probe
    windows (`PROBE_FILE`) ship beside it, sha256-listed like every file: serving checks the variant
    against fp32 on them, on its own CPU, before serving it."""
    from cse_models.export.quantize import INT8_FILE, PROBE_FILE, VARIANT, int8_variant  # onnx: only here

    workdir.mkdir(parents=True, exist_ok=True)
    try:
        entry = int8_variant(
            onnx_path,
            workdir / INT8_FILE,
            inputs=graph_inputs(data.test, data.config),
            test_split=data.test,
            train_split=data.train,
            data_cfg=data.config,
            scaler=data.scaler,
        )
    except QuantizationError as exc:
        return Variants({}, {}, f"no int8 variant: {exc}")
    files = {INT8_FILE: workdir / INT8_FILE, PROBE_FILE: workdir / PROBE_FILE}
    return Variants({VARIANT: entry}, files, f"int8 variant in {INT8_FILE}, probe windows in {PROBE_FILE}")


def select_best(boards: Leaderboards, decisions: dict[str, dict[str, PromotionDecision]]) -> str:
    """The model to publish: most heads that passed the gate honestly, then the highest mean walk-forward
    skill over its heads (ties: first name)."""

    def score(name: str) -> tuple[int, float]:
        passed = sum(d.passed for d in decisions[name].values())
        skills = [boards[head].row(name).skill for head in decisions[name]]
        return passed, sum(skills) / max(len(skills), 1)

    return max(sorted(decisions), key=score)
