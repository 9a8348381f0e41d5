"""Micro-batching: concurrent /predict requests share one ORT call, and each still gets its own answer."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from serving_helpers import make_klines

from cse_models.errors import DataError
from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics
from cse_serving.predictor import Predictor
from cse_serving.schemas import Kline, PredictRequest


def _klines(seed: int) -> list[Kline]:
    return msgspec.convert(make_klines(seed=seed), list[Kline])


def _predictor(store, settings) -> Predictor:
    registry = ModelRegistry(store, settings)
    registry.sync()
    return Predictor(registry, ServingMetrics())


async def _one(predictor: Predictor, klines: list[Kline]):
    return (await predictor.predict([PredictRequest(symbol="BTCUSDT", klines=klines)]))[0]


async def _predict_all(predictor: Predictor, seeds: list[int]) -> list:
    calls = [_one(predictor, _klines(seed)) for seed in seeds]
    return await asyncio.gather(*calls, return_exceptions=True)


def test_concurrent_predictions_share_one_inference_call(publish, store, settings):
    publish("BTCUSDT", offset=0.5)
    predictor = _predictor(store, settings)
    seeds = list(range(8))
    answers = asyncio.run(_predict_all(predictor, seeds))
    batcher = predictor.batcher(predictor.registry.get("BTCUSDT", "1h"))
    assert (batcher.calls, batcher.rows) == (1, 8)
    for seed, answer in zip(seeds, answers, strict=True):
        expected = make_klines(seed=seed)[-1]["close"] + 0.5  # the fixture model: last close + offset
        assert answer.prediction.close == pytest.approx(expected, rel=1e-6)


def test_a_request_whose_output_is_not_finite_fails_alone(publish, store, settings):
    publish("BTCUSDT", offset=1e38)  # output = last close + 1e38: finite for normal prices
    predictor = _predictor(store, settings)
    bad = make_klines(seed=3)
    bad[-1]["close"] = bad[-1]["high"] = 3.0e38  # a valid float32 input whose output overflows to inf

    async def run() -> list:
        good = [_one(predictor, _klines(seed)) for seed in (1, 2)]
        worst = _one(predictor, msgspec.convert(bad, list[Kline]))
        return await asyncio.gather(*good, worst, return_exceptions=True)

    first, second, third = asyncio.run(run())
    assert first.prediction.close > 0 and second.prediction.close > 0
    assert isinstance(third, DataError)
