"""The live scorecard of one series, read-only: its scores over 24 h / 7 d and the latest predictions beside
the closes that came true, for the web page's table and its chart of predicted vs realized closes.
One of the page's views (`require_reader`)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from cse_serving.live import LiveScorecard
from cse_serving.model_registry import ModelRegistry
from cse_serving.routes.page import PUBLIC_NOTE, READER_SECURITY, reader_responses, require_reader
from cse_serving.schemas import LiveModelScore
from cse_serving.scorecard import ScoredPoint

MAX_POINTS = 500


class SeriesScorecard(msgspec.Struct, kw_only=True):
    """`windows` scores the serving `version` (as in /metrics/deep_learning); `points` are the latest scored
    predictions of every version of the series, oldest first, each with the version that served it and its
    predicted candle's open time `target_ms` (unix ms, UTC). `enabled` is false when the server runs without a
    scorecard (CSE_SERVING_SCORECARD=off); `windows` and `points` are then empty."""

    symbol: str
    interval: str
    version: str | None
    enabled: bool
    windows: dict[str, LiveModelScore]
    points: list[ScoredPoint]


class ScorecardController(Controller):
    tags = ("monitoring",)
    guards = (require_reader,)
    security = READER_SECURITY

    @get(
        "/scorecard/{symbol:str}/{interval:str}",
        operation_id="seriesScorecard",
        summary="Live scores and the latest predictions beside their realized closes",
        description=(
            "Every prediction the server served is scored once its candle has closed, beside persistence (the "
            "last close). `windows` holds the serving version's live skill, interval coverage and direction "
            "accuracy over 24 h and 7 d; `points` the latest `limit` scored predictions (predicted close, "
            "interval bounds, the last close they were made from and the realized close). A prediction whose "
            "candle has not closed yet is never listed." + PUBLIC_NOTE
        ),
        responses=reader_responses(),
        sync_to_thread=True,
    )
    def scorecard(
        self,
        registry: ModelRegistry,
        live: LiveScorecard | None,
        symbol: str = Parameter(title="Symbol", description="e.g. BTCUSDT"),
        interval: str = Parameter(title="Interval", description="e.g. 1h"),
        limit: int = Parameter(query="limit", ge=1, le=MAX_POINTS, default=48, description="How many points"),
    ) -> SeriesScorecard:
        state = registry.state(symbol, interval)  # 404 for a series the store lacks
        symbol, interval = state.key
        model = state.serving
        version = model.version if model is not None else None
        if live is None:
            return SeriesScorecard(
                symbol=symbol, interval=interval, version=version, enabled=False, windows={}, points=[]
            )
        return SeriesScorecard(
            symbol=symbol,
            interval=interval,
            version=version,
            enabled=True,
            windows=live.scores(model) if model is not None else {},
            points=live.recent_points(symbol, interval, limit=limit),
        )
