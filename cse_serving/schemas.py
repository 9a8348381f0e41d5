"""Request and response bodies as msgspec Structs: Litestar decodes and encodes them without pydantic.

Klines follow Binance's REST kline fields by name. The seed's names are accepted too (`timestamp` for
`open_time`; `quote_av`, `tb_base_av`, `tb_quote_av`, `ignore` are read past), so a client of the seed
API can send the same rows. Value checks (finite, positive, ordered) happen in `cse_serving.kline_validation`,
vectorized over the whole window, not here per field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

# Candle times between 1970 and 3000: far wider than any market, narrow enough that the predicted
# candle's time always converts to a date (a year-292-million timestamp would otherwise crash as_of).
UnixMs = Annotated[int, msgspec.Meta(ge=0, le=32_503_680_000_000, description="unix milliseconds (UTC)")]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="e.g. BTCUSDT")]
Version = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{8}T\d{6}Z-[0-9a-f]{8}$",
        description="a loaded store version (see GET /models); default: the version the series serves",
    ),
]
Interval = Annotated[str, msgspec.Meta(min_length=1, max_length=8, description="Binance interval, e.g. 1h")]


def finite_or_null(value: float | None) -> float | None:
    """A number for a JSON answer: JSON has no NaN or infinity, so a skill or p-value that is not finite
    (or not recorded) is answered as null."""
    return value if value is not None and math.isfinite(value) else None


class Kline(msgspec.Struct, kw_only=True, gc=False):
    """One closed candle. `open_time` (or the seed's `timestamp`) is unix milliseconds."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    open_time: UnixMs | None = None
    timestamp: UnixMs | None = None
    close_time: int | None = None
    quote_volume: float | None = None
    trades: int | None = None
    taker_buy_base: float | None = None
    taker_buy_quote: float | None = None

    @property
    def opened_ms(self) -> int | None:
        """The open time, from `open_time` or the seed's `timestamp` (None when the kline has neither).

        A property, not a `__post_init__` copy: a hook per kline cost more than the rest of decoding a
        192-kline body, and only the window builder needs the time of every kline."""
        return self.open_time if self.open_time is not None else self.timestamp


class PredictRequest(msgspec.Struct, kw_only=True):
    """One prediction: the klines of one series, oldest first (the last `min_klines` are used)."""

    symbol: Symbol
    interval: Interval = "1h"
    klines: list[Kline] | None = None
    members: bool = False
    version: Version | None = None


class PredictBody(msgspec.Struct, kw_only=True):
    """Either a single request (symbol, interval, klines, members) or a batch (`requests`).

    One Struct instead of a union because two object-shaped Structs cannot share a JSON union untagged."""

    symbol: Symbol | None = None
    interval: Interval = "1h"
    klines: list[Kline] | None = None
    members: bool = False
    version: Version | None = None
    requests: list[PredictRequest] | None = None


class Prediction(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Regression fills `close`; classification fills `class`, `confidence` and `probabilities`.

    For a forecast model this is the legacy view of its card, so clients of the seed API keep working:
    `close` when its price head is published, `class`/`confidence`/`probabilities` when its direction
    head is; a withheld head leaves its fields out."""

    close: float | None = None
    label: str | None = msgspec.field(default=None, name="class")
    confidence: float | None = None
    probabilities: dict[str, float] | None = None


class ForecastInterval(msgspec.Struct, kw_only=True):
    """The next close lies in [lower, upper] with probability `level` (split-conformal, from training)."""

    lower: float
    upper: float
    level: float


class ForecastDirection(msgspec.Struct, kw_only=True):
    """The most probable of the manifest's classes (sell/hold/buy) and its probability."""

    label: str = msgspec.field(name="class")
    confidence: float
    probabilities: dict[str, float]


class ForecastCard(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer of a multi-head `forecast` model for the next candle.

    Each head's part is null when the head did not pass its publication gate (see GET /models for its
    reason): price → `close` and `return`, interval → `interval`, volatility → `volatility`, direction →
    `direction`. `return` is the predicted log return log(close / last_close); `volatility` the predicted
    log(high / low) of the next candle; `skill` the walk-forward skill of each published head against its
    reference baseline (1 − model error / reference error); `other` (absent when empty) the numbers of
    each published head without a field of its own (`HeadSpec.render` "values"). A member's card shows the
    same heads as the model's, with an empty `skill` (members were not scored alone)."""

    last_close: float
    close: float | None
    log_return: float | None = msgspec.field(name="return")
    interval: ForecastInterval | None
    volatility: float | None
    direction: ForecastDirection | None
    skill: dict[str, float]
    other: dict[str, list[float]] = msgspec.field(default_factory=dict)  # heads without a field of their own


class PredictResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`as_of` is the open time (ISO-8601 UTC) of the candle predicted: the last kline's + `horizon`
    intervals (one interval for the usual next-candle models).

    `forecast` (and `member_forecasts` with `members: true`) is present only for forecast models;
    `prediction` (and `members`) is there for every model."""

    symbol: str
    interval: str
    model_version: str
    as_of: str
    prediction: Prediction
    forecast: ForecastCard | None = None
    members: dict[str, Prediction] | None = None
    member_forecasts: dict[str, ForecastCard] | None = None


class BatchPredictResponse(msgspec.Struct, kw_only=True):
    predictions: list[PredictResponse]


class DeepLearningRequest(msgspec.Struct, kw_only=True):
    """The seed's ensemble endpoint body: `data` holds the klines."""

    data: list[Kline]
    symbol: Symbol | None = None
    interval: Interval = "1h"


class DeepLearningResponse(msgspec.Struct, kw_only=True):
    """`predictions` holds the price (regression) or the class name (classification); `confidence` is the
    class's probability, null for a price. A forecast model answers its close when its price head is
    published, else its direction class, else null."""

    predictions: list[float | str | None]
    confidence: list[float | None]
    symbol: str
    interval: str
    model_version: str


class LoadError(msgspec.Struct, kw_only=True):
    version: str | None
    message: str
    at: str


class HeadInfo(msgspec.Struct, kw_only=True):
    """One head of a forecast model and its publication verdict (from the manifest). A head with `publish`
    false is withheld: /predict answers null for it, and `reason` says why. `passed` is false for a head
    published only because publication was forced. `skill` (walk-forward, against baseline `reference`)
    and `p_value` are null when not finite."""

    name: str
    outputs: list[str]
    publish: bool
    passed: bool
    forced: bool
    skill: float | None
    p_value: float | None
    reference: str
    reason: str


class GlobalModelInfo(msgspec.Struct, kw_only=True):
    """The served version is a global model's graph (manifest `training.global`): the symbols it learned
    from, the calendar cut, and whether this symbol was among them (`zero_shot` when it never was)."""

    trained_on: list[str]
    learned_before: str | None = None
    held_out_from: str | None = None
    zero_shot: bool = False


class ModelInfo(msgspec.Struct, kw_only=True):
    """A series as served. `version` is null while no version of it loads (see `last_error`);
    `loaded_versions` are those a /predict request may name (newest load first); `pinned` is true while
    the store's PINNED holds the series at `version`. `last_error` is the raw load error for admin
    tokens and a stable sentence for user tokens. `encoding` is the graph that runs ("fp32", or a
    variant such as "int8"), `encoding_reason` why fp32 runs where the server was set to serve int8 (no
    variant, no probe windows, or the variant's answers differ from fp32 on this server's CPU); `ensemble`
    the method when the served graph is an ensemble of `members`. `graph_sha256` is the sha256 of the
    served graph file: series with the same one share a single onnxruntime session (a global model
    published for many symbols, described in `global_model`)."""

    symbol: str
    interval: str
    version: str | None
    task: str | None = None
    feature_set: str | None = None
    seq_len: int | None = None
    min_klines: int | None = None
    class_names: list[str] = msgspec.field(default_factory=list)
    heads: list[HeadInfo] = msgspec.field(default_factory=list)
    members: list[str] = msgspec.field(default_factory=list)
    ensemble: str | None = None
    encoding: str | None = None
    encoding_reason: str | None = None
    graph_sha256: str | None = None
    global_model: GlobalModelInfo | None = None
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    created_at: str | None = None
    loaded_at: str | None = None
    pinned: bool = False
    loaded_versions: list[str] = msgspec.field(default_factory=list)
    last_error: LoadError | None = None
    readiness: SeriesReadiness | None = None


class ModelList(msgspec.Struct, kw_only=True):
    models: list[ModelInfo]


class ModelCount(msgspec.Struct, kw_only=True):
    count: int


class ReloadResult(msgspec.Struct, kw_only=True):
    """Series whose served version changed, and series whose newest version failed to load."""

    loaded: list[str]
    failed: dict[str, str]
    models: list[ModelInfo]


class PinRequest(msgspec.Struct, kw_only=True):
    """A store version, or "latest" to unpin and follow LATEST again."""

    version: str


class Health(msgspec.Struct, kw_only=True):
    status: str
    models: int = 0


class ErrorBody(msgspec.Struct, kw_only=True):
    status_code: int
    detail: str


class LatestPredictions(msgspec.Struct, kw_only=True):
    """The last answer served per series, as it was served."""

    predictions: list[PredictResponse]


class LiveModelScore(msgspec.Struct, kw_only=True):
    """How the serving version did on the candles that closed after it answered (the live scorecard),
    over one window. `skill` = 1 − `mae` / `mae_persistence` on the same candles, to read against the
    `walk_forward_skill` it was published on; `degraded` is true when it fell below that by more than the
    configured margin (with enough scored predictions). Null fields: a head the model did not serve, or
    nothing scored yet."""

    n: int
    mae: float | None
    mae_persistence: float | None
    skill: float | None
    walk_forward_skill: float | None
    degraded: bool
    direction_accuracy: float | None
    brier: float | None
    coverage: float | None
    coverage_level: float | None


class ModelMonitoring(msgspec.Struct, kw_only=True):
    """One model in the seed's monitoring view: its measured quality (from the manifest: validation and
    walk-forward metrics), live latency and confidence of what it served."""

    symbol: str
    interval: str
    model_version: str
    model_accuracy: dict[str, Any]
    predictions_served: int
    model_confidence: float | None
    live: dict[str, LiveModelScore] = msgspec.field(default_factory=dict)


class DeepLearningMetrics(msgspec.Struct, kw_only=True):
    """`prediction_latency` is the mean /predict handling time in ms since start (null before any)."""

    models: list[ModelMonitoring]
    prediction_latency: float | None


class SeriesReadiness(msgspec.Struct, kw_only=True):
    """One series' readiness: `ready` (serving what the store asks for), `degraded` (serving another
    version: the one asked for failed to load or its pointer is unreadable; `reason` says which) or
    `unavailable` (nothing loads). `target` is the version the store asks for (PINNED, else LATEST)."""

    symbol: str
    interval: str
    state: str
    version: str | None
    target: str | None
    pinned: bool
    reason: str | None = None


class ReadinessReport(msgspec.Struct, kw_only=True):
    """GET /readyz: `status` is "ready" when every series is ready, "degraded" when some serve another
    version than the store asks for or none at all (listed in `series`), "no model loaded" when none
    serves (503)."""

    status: str
    models: int
    series: list[SeriesReadiness] = msgspec.field(default_factory=list)


class KlineList(msgspec.Struct, kw_only=True):
    """The latest closed candles of a series as the server-side source serves them, oldest first."""

    symbol: str
    interval: str
    klines: list[Kline]
