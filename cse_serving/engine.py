"""One loaded model version and the request path through it: klines → features → window → ORT → answer.

The published contract (DESIGN.md §4, `cse_models.heads.layout`): `model.onnx` takes "features" float32
`[batch, seq_len, n_features]` of RAW feature values (scaling is folded into the graph) and returns
"close" `[batch, 1]` (regression: the next close) or "probabilities" `[batch, n_classes]` (classification,
`class_names` in the manifest). A multi-head `forecast` graph also takes "last_close" `[batch, 1]` (its
features are level-free, so the price level enters only there) and returns close, return, lower, upper,
volatility `[batch, 1]` and probabilities `[batch, 3]`. Features come from `cse_models.features.sets` —
the very function training used. How a row becomes an answer is `cse_serving.answers`.

With `Settings.int8` (CSE_SERVING_INT8) a version whose manifest lists `variants["int8"]` is served from
that file (`model.int8.onnx`: the same inputs and outputs, dynamically quantized, its parity and skill
against fp32 recorded beside it — `cse_models.export.quantize`), verified by sha256 like every file, once
it answers its probe windows like fp32 on this CPU (`cse_serving.variant_check`); otherwise, and for
members, `model.onnx`. `LoadedModel.encoding` says which one runs, `encoding_reason` why not int8.

Per request the Python work is: one list comprehension over the klines, a handful of vectorized checks,
the feature function, one `InferenceSession.run`. Nothing per row beyond building the array.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort

from cse_models.data.schema import interval_ms, off_grid
from cse_models.errors import ConfigError, DataError, StoreError, UnknownNameError
from cse_models.features.sets import FeatureSet, get_feature_set
from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES, input_names
from cse_models.store import MODEL_FILE, Manifest, ModelStore
from cse_serving.answers import DECODERS, Decoder, Row
from cse_serving.schemas import Kline, PredictResponse
from cse_serving.settings import Settings
from cse_serving.variant_check import FP32, served_encoding

log = logging.getLogger(__name__)

TASKS = tuple(DECODERS)
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)


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
    """A validated request window: features `[seq_len, n_features]` float32, the last kline's close and
    open time."""

    features: np.ndarray
    last_close: float
    last_open_ms: int


Feeds = dict[str, np.ndarray]
"""Graph input name → `[batch, ...]` float32 array."""
Outputs = dict[str, np.ndarray]
"""Graph output name → `[batch, width]` array."""


def batch_rows(outputs: Outputs) -> list[Row]:
    """`[batch, width]` per output → one `{name: [width]}` row per batch index."""
    names = list(outputs)
    return [dict(zip(names, values, strict=True)) for values in zip(*outputs.values(), strict=True)]


@dataclass(frozen=True)
class LoadedModel:
    """An immutable, ready-to-run model version. The registry swaps whole instances, never fields."""

    manifest: Manifest
    session: ort.InferenceSession
    feature_set: FeatureSet
    inputs: dict[str, str]
    """Input role (`features`, `last_close`) → graph input name."""
    output_names: tuple[str, ...]
    decoder: Decoder
    interval_ms: int
    loaded_at: datetime
    members: dict[str, ort.InferenceSession] = field(default_factory=dict)
    model_file: str = MODEL_FILE
    """The file `session` runs, relative to the version: model.onnx or a variant's file."""
    encoding: str = FP32
    """Which encoding runs: "fp32" (model.onnx) or the variant's name ("int8")."""
    encoding_reason: str | None = None
    """Why fp32 runs though `Settings.int8` asked for the variant (`cse_serving.variant_check`)."""

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
        try:
            times = np.fromiter(map(_OPEN_TIME, rows), dtype=np.int64, count=need)
        except TypeError:  # a None: klines sent with the seed's `timestamp`, or without a time
            times = _opened_ms(rows, offset)
        values = np.array([(k.open, k.high, k.low, k.close, k.volume) for k in rows], dtype=np.float64)
        check_klines(times, values, offset, manifest.interval)
        columns = {"open_time": times, **{name: values[:, i] for i, name in enumerate(_VALUE_COLUMNS)}}
        with np.errstate(over="ignore"):  # overflow to inf is caught just below, with a message
            features = self.feature_set(columns)[-manifest.seq_len :].astype(np.float32)
        if not np.isfinite(features).all():
            raise DataError(
                f"feature set {manifest.feature_set!r} gives non-finite float32 values for these klines "
                "(a value out of range, or too few rows after warm-up)"
            )
        return Window(features, float(values[-1, 3]), int(times[-1]))

    def feeds(self, windows: Sequence[Window]) -> Feeds:
        """Stack windows into the graph's inputs: features `[n, seq_len, n_features]`, last_close `[n, 1]`."""
        features = windows[0].features[None] if len(windows) == 1 else np.stack([w.features for w in windows])
        columns = {
            INPUT_NAME: features,
            LAST_CLOSE_INPUT: np.array([[w.last_close] for w in windows], dtype=np.float32),
        }
        return {name: columns[role] for role, name in self.inputs.items()}

    def run(self, feeds: Feeds, session: ort.InferenceSession | None = None) -> Outputs:
        """One ORT call → every output of the task, `[batch, 1]` or `[batch, n_classes]` each.

        A non-finite output (extreme inputs overflowing inside the graph) is the request's problem, not
        a server fault: it raises DataError rather than answering null."""
        values = (session or self.session).run(list(self.output_names), feeds)
        if not all(np.isfinite(v).all() for v in values):
            raise DataError("the model's output is not finite for these klines (values far outside its training range)")
        return dict(zip(self.output_names, values, strict=True))

    def answer(self, window: Window, row: Row, member_rows: dict[str, Row] | None = None) -> PredictResponse:
        """The /predict answer for one window, from its output row (and each member's, when asked).

        Member cards follow the model's head verdicts but carry no skill: only the published model as a
        whole was scored walk-forward."""
        prediction, card = self.decoder(row, window.last_close)
        members = {name: self.decoder(r, window.last_close) for name, r in (member_rows or {}).items()}
        return PredictResponse(
            symbol=self.manifest.symbol,
            interval=self.manifest.interval,
            model_version=self.version,
            as_of=self.as_of(window.last_open_ms),
            prediction=prediction,
            forecast=card,
            members={name: p for name, (p, _) in members.items()} if member_rows is not None else None,
            member_forecasts=(
                {name: msgspec.structs.replace(c, skill={}) for name, (_, c) in members.items() if c is not None}
                if member_rows is not None and card is not None
                else None
            ),
        )

    def as_of(self, last_open_ms: int) -> str:
        """ISO-8601 UTC open time of the predicted candle: `horizon` intervals after the last one sent
        (the next candle for horizon 1)."""
        moment = datetime.fromtimestamp((last_open_ms + self.manifest.horizon * self.interval_ms) / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_OPEN_TIME = operator.attrgetter("open_time")


def _opened_ms(rows: Sequence[Kline], offset: int) -> np.ndarray:
    """Open times through the `timestamp` alias; DataError naming the first kline that has no time."""
    missing = next((i for i, k in enumerate(rows) if k.opened_ms is None), None)
    if missing is not None:
        raise DataError(
            f"klines[{offset + missing}] needs `open_time` (unix ms; the seed's `timestamp` is accepted as an alias)"
        )
    return np.fromiter((k.opened_ms for k in rows), dtype=np.int64, count=len(rows))


def check_klines(times: np.ndarray, values: np.ndarray, offset: int = 0, interval: str | None = None) -> None:
    """Reject NaN/inf, prices that are not positive float32 normals, negative volume, high < low,
    non-increasing open_time and (given `interval`) open times off the interval's candle grid.

    Prices outside float32's normal range would reach the graph as 0 or inf (its inputs are float32) and
    still produce an answer, so they are refused here. One combined vectorized test on the happy path;
    the detailed search runs only when it fails, so the message can name the kline (index in the request)
    and the column."""
    prices = values[:, :4]
    off = off_grid(times, interval) if interval is not None else np.zeros(times.shape, dtype=bool)
    ok = (
        np.isfinite(values).all()
        and (prices >= _FLOAT32_TINY).all()
        and (prices <= _FLOAT32_MAX).all()
        and (values[:, 4] >= 0).all()
        and (values[:, 1] >= values[:, 2]).all()
        and (times.size < 2 or (np.diff(times) > 0).all())
        and not off.any()
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
    outside = (prices < _FLOAT32_TINY) | (prices > _FLOAT32_MAX)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise DataError(
            f"klines[{offset + row}].{_VALUE_COLUMNS[col]} is {float(values[row, col])!r}; prices must lie in "
            f"[{_FLOAT32_TINY:.3g}, {_FLOAT32_MAX:.3g}] (float32, the model's input type)"
        )
    if not (values[:, 4] >= 0).all():
        row = int(np.flatnonzero(values[:, 4] < 0)[0])
        raise DataError(f"klines[{offset + row}].volume is {float(values[row, 4])!r}; volume must be ≥ 0")
    if not (values[:, 1] >= values[:, 2]).all():
        row = int(np.flatnonzero(values[:, 1] < values[:, 2])[0])
        raise DataError(f"klines[{offset + row}] has high {float(values[row, 1])!r} < low {float(values[row, 2])!r}")
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            f"klines[{offset + row}].open_time {int(times[row])} is not the start of a {interval} candle; "
            "send the exchange's candles as they are"
        )
    row = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
    raise DataError(
        f"klines[{offset + row}].open_time {int(times[row])} is not after the previous kline's "
        f"{int(times[row - 1])}; send klines oldest first, without duplicates"
    )


def load_model(store: ModelStore, symbol: str, interval: str, version: str, settings: Settings) -> LoadedModel:
    """Verify a version's sha256s, build its session(s) and prove they run; raise StoreError otherwise.

    Everything that can fail happens here, before the registry swaps anything in."""
    manifest, root = store.verified(symbol, interval, version)
    where = f"{symbol} {interval} {version}"
    if manifest.task not in DECODERS:
        raise StoreError(f"{where}: task {manifest.task!r} is not one of {sorted(DECODERS)}")
    try:
        feature_set = get_feature_set(manifest.feature_set)
        step = interval_ms(manifest.interval)
    except (UnknownNameError, ConfigError) as exc:
        raise StoreError(f"{where}: {exc}") from exc
    if tuple(manifest.feature_names) != feature_set.feature_names:
        raise StoreError(
            f"{where}: manifest features {manifest.feature_names} differ from "
            f"feature set {feature_set.name!r} {list(feature_set.feature_names)}"
        )
    try:
        decoder = DECODERS[manifest.task](manifest)
    except StoreError as exc:
        raise StoreError(f"{where}: {exc}") from exc
    inputs = _input_roles(manifest, root / MODEL_FILE)
    output_names = _output_names(manifest, root / MODEL_FILE)
    served = served_encoding(manifest, root, settings, inputs, output_names, lambda path: make_session(path, settings))
    _check_io(served.session, manifest, inputs, output_names, root / served.file)
    members = {
        Path(rel).stem: make_session(root / rel, settings)
        for rel in sorted(manifest.files)
        if rel.startswith("members/") and rel.endswith(".onnx")
    }
    for name, member in members.items():
        _check_io(member, manifest, inputs, output_names, root / f"members/{name}.onnx")
    model = LoadedModel(
        manifest=manifest,
        session=served.session,
        feature_set=feature_set,
        inputs=inputs,
        output_names=output_names,
        decoder=decoder,
        interval_ms=step,
        loaded_at=datetime.now(UTC),
        members=members,
        model_file=served.file,
        encoding=served.encoding,
        encoding_reason=served.reason,
    )
    _smoke_test(model)
    return model


def _input_roles(manifest: Manifest, path: Path) -> dict[str, str]:
    """Input role → graph input name: the manifest's input specs in the contract's order (`input_names`);
    a manifest without input specs means the contract's names."""
    roles = input_names(manifest.task)
    names = [spec.name for spec in manifest.inputs] or list(roles)
    if len(names) != len(roles):
        raise StoreError(f"{path}: a {manifest.task} model takes inputs {list(roles)}; the manifest lists {names}")
    return dict(zip(roles, names, strict=True))


def _output_names(manifest: Manifest, path: Path) -> tuple[str, ...]:
    """The graph outputs to run: the manifest's `outputs` (the contract), which must include what the
    task's decoder reads (`OUTPUT_NAMES[task]`). A manifest may list more (a new head, ensemble members'
    outputs): they are run and passed to the decoder, which reads what it knows, so a new head needs no
    serving change. A manifest without output specs means the task's contract names."""
    names = tuple(spec.name for spec in manifest.outputs) or OUTPUT_NAMES[manifest.task]
    missing = [name for name in OUTPUT_NAMES[manifest.task] if name not in names]
    if missing:
        raise StoreError(f"{path}: a {manifest.task} model needs output(s) {missing}; the manifest lists {list(names)}")
    return names


def _expected_shapes(manifest: Manifest) -> dict[str, list[int | None]]:
    """Input role → shape with None for the batch axis."""
    return {INPUT_NAME: [None, manifest.seq_len, len(manifest.feature_names)], LAST_CLOSE_INPUT: [None, 1]}


def _check_io(
    session: ort.InferenceSession,
    manifest: Manifest,
    roles: dict[str, str],
    output_names: tuple[str, ...],
    path: Path,
) -> None:
    """The graph has every input of the task, with the manifest's window shape, and every listed output."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    expected_shapes = _expected_shapes(manifest)
    missing = [name for name in roles.values() if name not in inputs]
    if missing:
        raise StoreError(f"{path}: no input {missing[0]!r}; it has {sorted(inputs)}")
    for role, name in roles.items():
        shape, expected = inputs[name].shape, expected_shapes[role]
        if len(shape) != len(expected) or any(
            isinstance(d, int) and e is not None and d != e for d, e in zip(shape, expected, strict=True)
        ):
            shown = ", ".join(["batch", *(str(e) for e in expected[1:])])
            raise StoreError(f"{path}: input {name!r} has shape {shape}, expected [{shown}]")
    for name in output_names:
        if name not in outputs:
            raise StoreError(f"{path}: the manifest lists output {name!r}; the graph has {sorted(outputs)}")


def _smoke_test(model: LoadedModel) -> None:
    """Run a zero window (last close 1.0) through every session: a graph that loads but cannot run fails
    here, not live."""
    manifest = model.manifest
    probe = Window(np.zeros((manifest.seq_len, len(manifest.feature_names)), dtype=np.float32), 1.0, 0)
    feeds = model.feeds([probe])
    # The manifest's output shapes with the batch axis at 1 (the contract); the task's widths without them.
    shapes = {spec.name: [1, *spec.shape[1:]] for spec in manifest.outputs}
    for name, session in [("model", model.session), *model.members.items()]:
        try:
            outputs = model.run(feeds, session)
        except Exception as exc:  # onnxruntime's runtime errors are untyped
            raise StoreError(
                f"{manifest.symbol} {manifest.interval} {manifest.version} {name}: run fails: {exc}"
            ) from exc
        for output, value in outputs.items():
            expected = shapes.get(output) or [1, len(manifest.class_names) if output == "probabilities" else 1]
            if len(value.shape) != len(expected) or any(
                isinstance(e, int) and d != e for d, e in zip(value.shape, expected, strict=True)
            ):
                raise StoreError(
                    f"{manifest.symbol} {manifest.interval} {manifest.version} {name}: output {output!r} has "
                    f"shape {list(value.shape)} for one window, expected {expected}"
                )
