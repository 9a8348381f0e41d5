"""The recent candles the server-side source serves (what /predict without klines predicts from), read-only:
the web page charts them as candles under the forecast card. One of the page's views (`require_reader`)."""

from __future__ import annotations

import asyncio

from litestar import Controller, get
from litestar.params import Parameter

from cse_models.errors import DataError
from cse_serving.model_registry import ModelRegistry
from cse_serving.predictor import Predictor
from cse_serving.routes.page import PUBLIC_NOTE, READER_SECURITY, reader_responses, require_reader
from cse_serving.schemas import KlineList

MAX_KLINES = 1000


class KlinesController(Controller):
    tags = ("predictions",)
    guards = (require_reader,)
    security = READER_SECURITY

    @get(
        "/klines/{symbol:str}/{interval:str}",
        operation_id="recentKlines",
        summary="Recent closed candles from the server-side source",
        description=(
            "The latest `limit` closed klines of a loaded series, oldest first, from the source /predict fetches "
            "from when a body has no klines (cached until the next candle closes). 422 when no source is "
            "configured (`CSE_SERVING_SOURCE`)." + PUBLIC_NOTE
        ),
        responses=reader_responses(422),
    )
    async def recent(
        self,
        registry: ModelRegistry,
        predictor: Predictor,
        symbol: str = Parameter(title="Symbol", description="e.g. BTCUSDT"),
        interval: str = Parameter(title="Interval", description="e.g. 1h"),
        limit: int = Parameter(query="limit", ge=1, le=MAX_KLINES, default=120, description="How many candles"),
    ) -> KlineList:
        state = registry.state(symbol, interval)  # 404 for a series the store lacks
        if predictor.fetcher is None:
            raise DataError("no kline source is configured on the server (CSE_SERVING_SOURCE)")
        symbol, interval = state.key
        klines = await asyncio.to_thread(predictor.fetcher, symbol, interval, limit)
        return KlineList(symbol=symbol, interval=interval, klines=klines)
