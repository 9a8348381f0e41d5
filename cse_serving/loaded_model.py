"""One loaded model version and the request path through it: klines → features → window → ORT → answer.

The published contract (DESIGN.md §4, `cse_models.heads.layout`): `model.onnx` takes "features" float32
`[batch, seq_len, n_features]` of RAW feature values (scaling is folded into the graph) and returns
"close" `[batch, 1]` (regression: the next close) or "probabilities" `[batch, n_classes]` (classification,
`class_names` in the manifest). A multi-head `forecast` graph also takes "last_close" `[batch, 1]` (its
features are level-free, so the price level enters only there) and returns close, return, lower, upper,
volatility `[batch, 1]` and probabilities `[batch, 3]`. Features come from `cse_models.features.sets` —
the very function training used. The klines are checked by `cse_serving.kline_validation`; how a row
becomes an answer is `cse_serving.answers`; how a version becomes a `LoadedModel` is `cse_serving.loading`.

Per request the Python work is: one list comprehension over the klines, a handful of vectorized checks,
the feature function, one `InferenceSession.run`. Nothing per row beyond building the array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import numpy as np
import onnxruntime as ort

from cse_models.errors import DataError
from cse_models.features.sets import FeatureSet
from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT
from cse_models.store import MODEL_FILE, Manifest
from cse_serving.answers import Decoder, Row
from cse_serving.kline_validation import VALUE_COLUMNS, kline_arrays
from cse_serving.schemas import Kline, PredictResponse
from cse_serving.variant_check import FP32


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

    @property
    def graph_sha256(self) -> str:
        """The sha256 of the graph `session` runs: series serving the same graph share that session
        (`cse_serving.session_cache`)."""
        return self.manifest.files[self.model_file]

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
                f"insufficient history: {len(klines)} candles, {need} needed for {manifest.symbol} "
                f"{manifest.interval} (seq_len {manifest.seq_len} + warm-up {manifest.warmup})"
            )
        offset = len(klines) - need
        times, values = kline_arrays(klines[offset:], offset, manifest.interval)
        columns = {"open_time": times, **{name: values[:, i] for i, name in enumerate(VALUE_COLUMNS)}}
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
