"""Predictions. Handlers are `async` and run inline on the event loop on purpose: the work is ~100 µs of
numpy + one ORT call, cheaper than a hop to a worker thread; concurrent single predictions are
micro-batched into one ORT call (`cse_serving.batching`)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.status_codes import HTTP_200_OK

from cse_models.errors import DataError
from cse_serving.auth import require_token
from cse_serving.model_registry import ModelRegistry
from cse_serving.predictor import Predictor
from cse_serving.schemas import (
    BatchPredictResponse,
    DeepLearningRequest,
    DeepLearningResponse,
    PredictBody,
    PredictRequest,
    PredictResponse,
)


class PredictController(Controller):
    tags = ("predictions",)
    guards = (require_token,)

    @post(
        "/predict",
        operation_id="predict",
        summary="Predict the next candle",
        description=(
            "Body: `symbol`, `interval` (default 1h), `klines` (at least the model's min_klines, oldest first; "
            "the last min_klines are used; without `klines` the server fetches the latest closed candles when "
            "a source is configured), optional `members: true`, optional `version` (one of the series' loaded "
            "versions, see GET /models; default: the version it serves). Or a batch: `{requests: [...]}` → "
            "`{predictions: [...]}`; requests for the same model share one inference call. A forecast model "
            "answers a forecast card (`forecast`; null parts for heads withheld by their gate) and the legacy "
            "`prediction` view of it."
        ),
        status_code=HTTP_200_OK,
    )
    async def predict(self, data: PredictBody, predictor: Predictor) -> PredictResponse | BatchPredictResponse:
        if data.requests is not None:
            if not data.requests:
                raise DataError("`requests` is empty")
            return BatchPredictResponse(predictions=await predictor.predict(data.requests))
        if data.symbol is None:
            raise DataError("`symbol` is required (or send a batch as `requests`)")
        single = PredictRequest(
            symbol=data.symbol, interval=data.interval, klines=data.klines, members=data.members, version=data.version
        )
        return (await predictor.predict([single]))[0]

    @post(
        "/predictions/deep_learning",
        operation_id="predictDeepLearning",
        summary="The seed's ensemble endpoint",
        description=(
            "Body `{data: [klines], symbol?, interval?}` → `{predictions, confidence}`. Same engine as /predict; "
            "without `symbol` the only loaded model is used (422 when several are loaded). A forecast model "
            "answers its close when its price head is published, else its direction class (with its "
            "confidence), else null."
        ),
        status_code=HTTP_200_OK,
    )
    async def deep_learning(
        self, data: DeepLearningRequest, registry: ModelRegistry, predictor: Predictor
    ) -> DeepLearningResponse:
        symbol = data.symbol
        if symbol is None:
            loaded = sorted(key for key in registry.models() if key[1] == data.interval)
            if len(loaded) != 1:
                raise DataError(
                    f"`symbol` is required when {len(loaded)} models are loaded for interval {data.interval}"
                )
            symbol = loaded[0][0]
        [answer] = await predictor.predict([PredictRequest(symbol=symbol, interval=data.interval, klines=data.data)])
        prediction = answer.prediction
        is_price = prediction.close is not None
        return DeepLearningResponse(
            predictions=[prediction.close if is_price else prediction.label],
            confidence=[None if is_price else prediction.confidence],
            symbol=answer.symbol,
            interval=answer.interval,
            model_version=answer.model_version,
        )
