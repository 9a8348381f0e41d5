"""One loaded model version and the request path through it: klines → features → window → ORT → answer.

The published contract (DESIGN.md §4): `model.onnx` takes "features" float32 `[batch, seq_len, n_features]`
of RAW feature values (scaling is folded into the graph) and returns either "close" `[batch, 1]`
(regression: the next close) or "probabilities" `[batch, n_classes]` (classification, `class_names` in
the manifest). Features come from `cse_models.features.sets` — the very function training used.

Per request the Python work is: one list comprehension over the klines, a handful of vectorized checks,
the feature function, one `InferenceSession.run`. Nothing per row beyond building the array.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cse_models.data.schema import interval_ms
from cse_models.errors import ConfigError, DataError, StoreError, UnknownNameError
from cse_models.features.sets import FeatureSet, get_feature_set
from cse_models.store import MODEL_FILE, Manifest, ModelStore
from cse_serving.schemas import Kline, Prediction
from cse_serving.settings import Settings

log = logging.getLogger(__name__)

TASKS = {"regression": "close", "classification": "probabilities"}
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


def make_session(path: Path, settings: Settings) -> ort.InferenceSession:
    """A CPU session with explicit threads: the service sizes parallelism with workers, not ORT pools."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_intra_op_threads
    options.inter_op_num_threads = settings.ort_inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        raise StoreError(f"{path}: onnxruntime cannot load it: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Window:
    """A validated request window: features `[seq_len, n_features]` float32 and the last open time."""

    features: np.ndarray
    last_open_ms: int


@dataclass(frozen=True)
class LoadedModel:
    """An immutable, ready-to-run model version. The registry swaps whole instances, never fields."""

    manifest: Manifest
    session: ort.InferenceSession
    feature_set: FeatureSet
    input_name: str
    output_name: str
    interval_ms: int
    loaded_at: datetime
    members: dict[str, ort.InferenceSession] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def key(self) -> tuple[str, str]:
        return self.manifest.symbol, self.manifest.interval

    def window(self, klines: Sequence[Kline] | None) -> Window:
        """Validate the last `min_klines` klines and compute their feature window (DataError → 422)."""
        manifest = self.manifest
        need = manifest.min_klines
        if klines is None:
            raise DataError(
                "klines are required: server-side fetching of the latest candles is not configured; "
                f"send the last {need} closed klines of {manifest.symbol} {manifest.interval}"
            )
        if len(klines) < need:
            raise DataError(
                f"{need} klines are needed for {manifest.symbol} {manifest.interval} "
                f"(seq_len {manifest.seq_len} + warm-up {manifest.warmup}), got {len(klines)}"
            )
        offset = len(klines) - need
        rows = klines[offset:]
        times = np.fromiter((k.open_time for k in rows), dtype=np.int64, count=need)
        values = np.array([(k.open, k.high, k.low, k.close, k.volume) for k in rows], dtype=np.float64)
        check_klines(times, values, offset)
        columns = {"open_time": times, **{name: values[:, i] for i, name in enumerate(_VALUE_COLUMNS)}}
        with np.errstate(over="ignore"):  # overflow to inf is caught just below, with a message
            features = self.feature_set(columns)[-manifest.seq_len :].astype(np.float32)
        if not np.isfinite(features).all():
            raise DataError(
                f"feature set {manifest.feature_set!r} gives non-finite float32 values for these klines "
                "(a value out of range, or too few rows after warm-up)"
            )
        return Window(features, int(times[-1]))

    def run(self, batch: np.ndarray, session: ort.InferenceSession | None = None) -> np.ndarray:
        """One ORT call over `[batch, seq_len, n_features]` → `[batch, 1]` or `[batch, n_classes]`.

        A non-finite output (extreme inputs overflowing inside the graph) is the request's problem, not
        a server fault: it raises DataError rather than answering null."""
        out = (session or self.session).run([self.output_name], {self.input_name: batch})[0]
        if not np.isfinite(out).all():
            raise DataError("the model's output is not finite for these klines (values far outside its training range)")
        return out

    def decode(self, row: np.ndarray) -> Prediction:
        """Turn one output row into the response's prediction."""
        if self.output_name == "close":
            return Prediction(close=float(row[0]))
        probabilities = row.astype(np.float64)
        best = int(probabilities.argmax())
        return Prediction(
            label=self.manifest.class_names[best],
            confidence=float(probabilities[best]),
            probabilities=dict(zip(self.manifest.class_names, probabilities.tolist(), strict=True)),
        )

    def as_of(self, last_open_ms: int) -> str:
        """ISO-8601 UTC open time of the predicted candle (one interval after the last one sent)."""
        moment = datetime.fromtimestamp((last_open_ms + self.interval_ms) / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_klines(times: np.ndarray, values: np.ndarray, offset: int = 0) -> None:
    """Reject NaN/inf, non-positive prices, negative volume, high < low, non-increasing open_time.

    One combined vectorized test on the happy path; the detailed search runs only when it fails, so the
    message can name the kline (index in the request) and the column."""
    prices = values[:, :4]
    ok = (
        np.isfinite(values).all()
        and (prices > 0).all()
        and (values[:, 4] >= 0).all()
        and (values[:, 1] >= values[:, 2]).all()
        and (times.size < 2 or (np.diff(times) > 0).all())
    )
    if ok:
        return
    finite = np.isfinite(values)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise DataError(
            f"klines[{offset + row}].{_VALUE_COLUMNS[col]} is {float(values[row, col])!r}; values must be finite"
        )
    if not (prices > 0).all():
        row, col = np.argwhere(prices <= 0)[0]
        raise DataError(
            f"klines[{offset + row}].{_VALUE_COLUMNS[col]} is {float(values[row, col])!r}; prices must be > 0"
        )
    if not (values[:, 4] >= 0).all():
        row = int(np.flatnonzero(values[:, 4] < 0)[0])
        raise DataError(f"klines[{offset + row}].volume is {float(values[row, 4])!r}; volume must be ≥ 0")
    if not (values[:, 1] >= values[:, 2]).all():
        row = int(np.flatnonzero(values[:, 1] < values[:, 2])[0])
        raise DataError(f"klines[{offset + row}] has high {float(values[row, 1])!r} < low {float(values[row, 2])!r}")
    row = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
    raise DataError(
        f"klines[{offset + row}].open_time {int(times[row])} is not after the previous kline's "
        f"{int(times[row - 1])}; send klines oldest first, without duplicates"
    )


def load_model(store: ModelStore, symbol: str, interval: str, version: str, settings: Settings) -> LoadedModel:
    """Verify a version's sha256s, build its session(s) and prove they run; raise StoreError otherwise.

    Everything that can fail happens here, before the registry swaps anything in."""
    manifest, root = store.verified(symbol, interval, version)
    if manifest.task not in TASKS:
        raise StoreError(f"{symbol} {interval} {version}: task {manifest.task!r} is not one of {sorted(TASKS)}")
    try:
        feature_set = get_feature_set(manifest.feature_set)
        step = interval_ms(manifest.interval)
    except (UnknownNameError, ConfigError) as exc:
        raise StoreError(f"{symbol} {interval} {version}: {exc}") from exc
    if tuple(manifest.feature_names) != feature_set.feature_names:
        raise StoreError(
            f"{symbol} {interval} {version}: manifest features {manifest.feature_names} differ from "
            f"feature set {feature_set.name!r} {list(feature_set.feature_names)}"
        )
    if manifest.task == "classification" and not manifest.class_names:
        raise StoreError(f"{symbol} {interval} {version}: a classification model needs class_names")
    session = make_session(root / MODEL_FILE, settings)
    input_name, output_name = _check_io(session, manifest, root / MODEL_FILE)
    members = {
        Path(rel).stem: make_session(root / rel, settings)
        for rel in sorted(manifest.files)
        if rel.startswith("members/") and rel.endswith(".onnx")
    }
    model = LoadedModel(
        manifest=manifest,
        session=session,
        feature_set=feature_set,
        input_name=input_name,
        output_name=output_name,
        interval_ms=step,
        loaded_at=datetime.now(UTC),
        members=members,
    )
    _smoke_test(model)
    return model


def _check_io(session: ort.InferenceSession, manifest: Manifest, path: Path) -> tuple[str, str]:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    input_name = manifest.inputs[0].name if manifest.inputs else "features"
    output_name = TASKS[manifest.task]
    if input_name not in inputs:
        raise StoreError(f"{path}: no input {input_name!r}; it has {sorted(inputs)}")
    if output_name not in outputs:
        raise StoreError(f"{path}: a {manifest.task} model needs output {output_name!r}; it has {sorted(outputs)}")
    shape = inputs[input_name].shape
    expected = [None, manifest.seq_len, len(manifest.feature_names)]
    if len(shape) != 3 or any(
        isinstance(d, int) and e is not None and d != e for d, e in zip(shape, expected, strict=True)
    ):
        raise StoreError(
            f"{path}: input {input_name!r} has shape {shape}, expected [batch, {expected[1]}, {expected[2]}]"
        )
    return input_name, output_name


def _smoke_test(model: LoadedModel) -> None:
    """Run a zero window through every session: a graph that loads but cannot run fails here, not live."""
    manifest = model.manifest
    width = 1 if model.output_name == "close" else len(manifest.class_names)
    probe = np.zeros((1, manifest.seq_len, len(manifest.feature_names)), dtype=np.float32)
    for name, session in [("model", model.session), *model.members.items()]:
        try:
            out = model.run(probe, session)
        except Exception as exc:  # onnxruntime's runtime errors are untyped
            raise StoreError(
                f"{manifest.symbol} {manifest.interval} {manifest.version} {name}: run fails: {exc}"
            ) from exc
        if name == "model" and out.shape != (1, width):
            raise StoreError(
                f"{manifest.symbol} {manifest.interval} {manifest.version}: output {model.output_name!r} has "
                f"shape {list(out.shape)} for one window, expected [1, {width}]"
            )
