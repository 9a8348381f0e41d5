"""The one path of every prediction: single, batch and concurrent requests take the same steps.

resolve the model (the series' serving version, or the `version` asked for) → the klines (the request's,
or fetched server-side) → validate them and build the window → queue it on the model's micro-batcher
(every window queued in the same loop turn shares one ORT call) → decode → record (metrics, the last
answer, the live scorecard).

A batch is validated whole before anything runs, so a bad request fails it with a message naming its
index. Scorecard writes are deduplicated here (one per series, version and predicted candle; realized
candles scored once per new candle), so a client polling the same candle costs no database work.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cse_models.errors import CseError, DataError, SourceError
from cse_serving.batching import MicroBatcher
from cse_serving.loaded_model import LoadedModel, Window
from cse_serving.model_registry import ModelRegistry, SeriesKey
from cse_serving.monitoring import ServingMetrics
from cse_serving.schemas import Kline, PredictRequest, PredictResponse

log = logging.getLogger(__name__)

KlineFetcher = Callable[[str, str, int], Sequence[Kline]]
"""(symbol, interval, limit) → the latest `limit` closed klines, oldest first (server-side fetch)."""


class LiveRecorder(Protocol):
    """What the predictor needs of the live scorecard (`cse_serving.live.LiveScorecard`)."""

    def record(self, answer: PredictResponse, model: LoadedModel, window: Window) -> None: ...

    def observe(self, symbol: str, interval: str, klines: Sequence[Kline]) -> int: ...


@dataclass(frozen=True, slots=True)
class _Resolved:
    model: LoadedModel
    klines: Sequence[Kline]
    window: Window
    members: bool


class Predictor:
    def __init__(
        self,
        registry: ModelRegistry,
        metrics: ServingMetrics,
        *,
        fetcher: KlineFetcher | None = None,
        scorecard: LiveRecorder | None = None,
        max_batch: int = 64,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.fetcher = fetcher
        self.scorecard = scorecard
        self.max_batch = max_batch
        self._batchers: dict[tuple[SeriesKey, str], MicroBatcher] = {}
        self._recorded: dict[tuple[SeriesKey, str], str] = {}
        self._observed: dict[SeriesKey, int] = {}

    async def predict(self, requests: Sequence[PredictRequest]) -> list[PredictResponse]:
        """Answers in request order; all or nothing."""
        started = time.perf_counter()
        resolved = [await self._resolve(index, request, len(requests)) for index, request in enumerate(requests)]
        runs = [self.batcher(item.model).run(item.window, item.members) for item in resolved]
        # One request awaits its run directly: gather would wrap it in a task for nothing.
        outcomes = [await runs[0]] if len(runs) == 1 else await asyncio.gather(*runs, return_exceptions=True)
        answers = []
        for index, (item, outcome) in enumerate(zip(resolved, outcomes, strict=True)):
            if isinstance(outcome, BaseException):
                raise _labelled(outcome, index, len(requests))
            row, member_rows = outcome
            answers.append(item.model.answer(item.window, row, member_rows))
        self._record(resolved, answers, time.perf_counter() - started)
        return answers

    async def _resolve(self, index: int, request: PredictRequest, count: int) -> _Resolved:
        try:
            model = self.registry.get(request.symbol, request.interval, request.version)
            klines = request.klines
            if klines is None and self.fetcher is not None:
                klines = await self._fetch(model)
            window = model.window(klines)
        except CseError as exc:
            labelled = _labelled(exc, index, count)
            if labelled is exc:
                raise
            raise labelled from exc
        return _Resolved(model, klines, window, request.members)  # type: ignore[arg-type]

    async def _fetch(self, model: LoadedModel) -> Sequence[Kline]:
        """The latest closed klines, in a worker thread (the exchange may take a while). No usable klines
        from the source is the source's failure (SourceError → 503), not the request's."""
        try:
            return await asyncio.to_thread(self.fetcher, *model.key, model.manifest.min_klines)  # type: ignore[arg-type]
        except DataError as exc:
            raise SourceError(
                f"the kline source gave no usable candles for {model.key[0]} {model.key[1]}: {exc}"
            ) from exc

    def batcher(self, model: LoadedModel) -> MicroBatcher:
        """The micro-batcher of this very model object (a swapped-in version gets a new one)."""
        slot = (model.key, model.version)
        batcher = self._batchers.get(slot)
        if batcher is None or batcher.model is not model:
            if len(self._batchers) > 4 * (len(self.registry) + 1):
                loaded = {(m.key, m.version) for s in self.registry.states().values() for m in s.loaded}
                self._batchers = {k: b for k, b in self._batchers.items() if k in loaded}
            batcher = self._batchers[slot] = MicroBatcher(
                model, max_batch=self.max_batch, on_flush=self.metrics.observe_flush
            )
        return batcher

    def _record(self, resolved: list[_Resolved], answers: list[PredictResponse], seconds: float) -> None:
        groups: dict[int, tuple[LoadedModel, list[PredictResponse]]] = {}
        for item, answer in zip(resolved, answers, strict=True):
            groups.setdefault(id(item.model), (item.model, []))[1].append(answer)
        for model, group in groups.values():
            self.metrics.observe_answers(model, group, seconds)
        if self.scorecard is not None:
            try:
                self._score(resolved, answers)
            except (sqlite3.Error, CseError):  # the scorecard must never cost a client its answer
                log.exception("the live scorecard could not record; the answers were served")

    def _score(self, resolved: list[_Resolved], answers: list[PredictResponse]) -> None:
        """Realized candles first (a request's klines may complete an earlier prediction), then the new
        prediction; each only when it is new."""
        assert self.scorecard is not None
        for item, answer in zip(resolved, answers, strict=True):
            key = item.model.key
            newest = item.window.last_open_ms
            if newest > self._observed.get(key, -1):
                self.scorecard.observe(*key, item.klines)
                self._observed[key] = newest
            slot = (key, item.model.version)
            if self._recorded.get(slot) != answer.as_of:
                self.scorecard.record(answer, item.model, item.window)
                self._recorded[slot] = answer.as_of


def _labelled(exc: BaseException, index: int, count: int) -> BaseException:
    """A library error of one request of a batch names its index; other errors pass unchanged."""
    if count > 1 and isinstance(exc, CseError):
        return type(exc)(f"requests[{index}]: {exc}")
    return exc
