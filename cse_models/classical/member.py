"""The classical member kind: fit tree models on window summaries, calibrate them like the networks, train
them into a model directory, export and parity-check their one-graph ONNX (`members.MemberKind`).

Only the forecast task: the trees learn the networks' forecast targets (z, range ratio, class) and the card
turns them into prices; the seeds' level regression and fixed-band classification have no classical
member. Fitting imports LightGBM or scikit-learn and no JAX; the card (forecasts, export, parity) is
`heads.graph.forecast_card`, so those import JAX — one implementation of the card for every kind.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.classical.architectures import CLASSICAL, TreeModels
from cse_models.classical.summary import segment_summaries, summarise_windows, summary_names
from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import ConfigError, StoreError
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import n_windows
from cse_models.heads.calibration import HeadCalibration
from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES, outputs_by_head
from cse_models.heads.tasks import card_tasks, task_spec
from cse_models.scoring.segment import score_segment
from cse_models.specs import ModelSpec, preset_config
from cse_models.training.calibrate import calibrate_outputs
from cse_models.training.config import TrainingConfig
from cse_models.training.summary import TrainedModel

SPEC_FILE = "model.json"  # the architecture and its config, as the Flax model directories have it
PARITY_BATCHES = (1, 7)


def classical_config_for(spec: ModelSpec) -> Any:
    """The registered config (its defaults, or its small `demo()` preset) plus the spec's overrides."""
    entry = CLASSICAL.get(spec.architecture)
    return preset_config(spec.architecture, entry.config_cls, spec.preset, dict(spec.overrides))


def require_forecast(architecture: str, data_cfg: DataConfig) -> None:
    if not task_spec(data_cfg.task).card:
        tasks = " or ".join(repr(name) for name in card_tasks())
        raise ConfigError(
            f"classical model {architecture!r} needs task {tasks} (it learns the forecast heads' targets), "
            f"got task {data_cfg.task!r}"
        )


@dataclass(frozen=True)
class ClassicalMember:
    """Tree models with their calibration, the data they read, and the card that turns them into forecasts."""

    architecture: str
    config: Any
    trees: TreeModels
    data_cfg: DataConfig
    scaler: FittedScaler
    calibration: HeadCalibration | None = None

    def raw_outputs(self, split: SplitArrays) -> np.ndarray:
        """Raw outputs `[n_windows, 5]` of every window of a segment (what `calibrate_outputs` takes)."""
        return self.trees.raw_outputs(segment_summaries(split, self.data_cfg, self.scaler))

    def card(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The forecast card (`OUTPUT_NAMES["forecast"]`) of graph inputs: the Python side of the parity check."""
        features = np.asarray(inputs[INPUT_NAME], dtype=np.float32)
        raw = self.trees.raw_outputs(summarise_windows(features, self.scaler))
        return self._card(raw.astype(np.float32), features, inputs[LAST_CLOSE_INPUT])

    def forecast(self, split: SplitArrays) -> dict[str, np.ndarray]:
        """Head forecasts of every window of a segment (`outputs_by_head`), as the exported graph gives them."""
        count = n_windows(split.close.shape[0], self.data_cfg.seq_len, self.data_cfg.horizon)
        inputs = graph_inputs(split, self.data_cfg, limit=count)
        return outputs_by_head("forecast", self.card(inputs))

    def _card(self, raw: np.ndarray, features: np.ndarray, last_close: np.ndarray) -> list[np.ndarray]:
        import jax.numpy as jnp

        from cse_models.classical.graph import raw_card

        if self.calibration is None:
            raise ConfigError(f"classical member {self.architecture!r} is not calibrated yet")
        fn = raw_card(self.calibration, self.scaler.feature_names, self.data_cfg.horizon)
        last_rows = jnp.asarray(features[:, -1:, :])  # the card reads σ and the mean range off the last row
        outputs = fn(jnp.asarray(raw), last_rows, jnp.asarray(last_close, dtype=jnp.float32))
        return [np.asarray(o) for o in outputs]


def fit_member(spec: ModelSpec, data: PreparedSeries, train_cfg: TrainingConfig) -> ClassicalMember:
    """Fit the spec's tree models on the train segment's window summaries (early-stopped on val where the
    kind has rounds), then calibrate their raw validation outputs with the networks' recipe."""
    data_cfg, scaler = data.config, data.scaler
    require_forecast(spec.architecture, data_cfg)
    entry = CLASSICAL.get(spec.architecture)
    cfg = classical_config_for(spec)
    train, val = data.train, data.val
    rows = {name: split.valid_windows(data_cfg) for name, split in (("train", train), ("val", val))}
    weights = None
    if train.weights is not None or val.weights is not None:
        weights = (train.window_weights(data_cfg)[rows["train"]], val.window_weights(data_cfg)[rows["val"]])
    trees = entry.fit(
        cfg,
        segment_summaries(train, data_cfg, scaler)[rows["train"]],
        train.y[rows["train"]],
        segment_summaries(val, data_cfg, scaler)[rows["val"]],
        val.y[rows["val"]],
        train_cfg.seed,
        weights=weights,
    )
    member = ClassicalMember(spec.architecture, cfg, trees, data_cfg, scaler)
    calibration = calibrate_outputs(member.raw_outputs(val), data)
    return dataclasses.replace(member, calibration=calibration)


def load_member(trained: TrainedModel, scaler: FittedScaler, data_cfg: DataConfig) -> ClassicalMember:
    """A trained classical member back from its model directory (no pickle: see each kind's module)."""
    directory = Path(trained.directory)
    try:
        spec = json.loads((directory / SPEC_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{directory / SPEC_FILE} is missing or unreadable: {exc}") from exc
    entry = CLASSICAL.get(spec["name"])
    return ClassicalMember(
        spec["name"],
        entry.config_cls(**spec["config"]),
        entry.load(directory),
        data_cfg,
        scaler,
        trained.head_calibration(),
    )


class ClassicalKind:
    """Tree models from `CLASSICAL` (LightGBM, scikit-learn) on window summaries."""

    name = "classical"

    def libraries(self, architecture: str) -> frozenset[str]:
        return frozenset({CLASSICAL.get(architecture).library})

    def validate(self, spec: ModelSpec) -> None:
        classical_config_for(spec)

    def fit(self, spec, data, train_cfg, **options) -> ClassicalMember:
        """`options` (on_epoch, checkpoints, …) belong to the networks' loop: trees have no epochs."""
        return fit_member(spec, data, train_cfg)

    def train(self, spec, data, train_cfg, directory, **options) -> TrainedModel:
        """Fit, then write `model.json`, the trees (each kind's own format) and `summary.json` into
        `directory`. A fit takes seconds, so `resume` starts over; `devices` and `on_epoch` do not apply."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        member = fit_member(spec, data, train_cfg)
        seconds = time.perf_counter() - started
        member.trees.save(directory)
        config = dataclasses.asdict(member.config)
        (directory / SPEC_FILE).write_text(json.dumps({"name": spec.architecture, "config": config}, indent=2))
        forecasts = member.forecast(data.val)
        trained = TrainedModel(
            directory=str(directory),
            name=spec.architecture,
            config=config,
            parameters=member.trees.node_count,
            history=[],
            best_epoch=0,
            stopped_early=False,
            metrics=score_segment(forecasts, data.train, data.val, data.config, data.scaler),
            seconds=seconds,
            devices=1,
            calibration=dataclasses.asdict(member.calibration),
        )
        trained.save()
        return trained

    def export(self, trained, scaler, data_cfg, path, parity_inputs, *, model_name=None) -> ExportedModel:
        import onnx

        from cse_models.classical.graph import member_graph

        require_forecast(trained.name, data_cfg)
        member = load_member(trained, scaler, data_cfg)
        n_inputs = len(summary_names(scaler.feature_names))
        model = member_graph(
            member.trees.tree_graph(n_inputs), scaler, member.calibration, data_cfg.seq_len, data_cfg.horizon
        )
        onnx.checker.check_model(model, full_check=True)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        report = self._parity(member, path, parity_inputs)
        op_types = sorted({node.op_type for node in model.graph.node})
        return ExportedModel(
            str(path), model_name or trained.name, data_cfg.task, data_cfg.seq_len, op_types, report.as_dict()
        )

    def check_parity(self, trained, scaler, data_cfg, path, inputs):
        return self._parity(load_member(trained, scaler, data_cfg), Path(path), inputs)

    def _parity(self, member: ClassicalMember, path: Path, inputs: dict[str, np.ndarray]):
        """onnxruntime against the Python member (trees + `forecast_card`) at batch 1 and 7, every output."""
        import onnxruntime as ort

        from cse_models.export.parity import ParityCheck, require_windows

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        check = ParityCheck(f"ONNX and {member.architecture}")
        for batch in PARITY_BATCHES:
            require_windows(inputs[INPUT_NAME].shape[0], batch)
            feed = {
                n: np.ascontiguousarray(inputs[n][:batch], dtype=np.float32) for n in (INPUT_NAME, LAST_CLOSE_INPUT)
            }
            expected = member.card(feed)
            got = session.run(list(OUTPUT_NAMES["forecast"]), feed)
            for name, want, have in zip(OUTPUT_NAMES["forecast"], expected, got, strict=True):
                check.compare(name, have, want, batch)
        return check.report()
