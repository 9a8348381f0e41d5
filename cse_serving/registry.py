"""The models being served, one per (symbol, interval), swapped whole and only after a successful load.

Triton/BentoML's version policy in a few lines: `load_latest` follows each series' LATEST pointer,
`pin` holds a series at a chosen version (rollback) until it is unpinned. A new version is verified
(sha256), opened and smoke-run before it replaces the old one; if anything fails, the old version keeps
serving and the failure is kept per series for GET /models and the log.

Readers never lock: they take one reference from a dict whose values are immutable `LoadedModel`s.
Loads are serialized by one lock, so two reloads cannot interleave.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cse_models.data.schema import interval_ms, validate_symbol
from cse_models.errors import CseError, UnknownNameError
from cse_models.store import ModelStore
from cse_serving.batching import MicroBatcher
from cse_serving.engine import LoadedModel, Window, batch_rows, load_model
from cse_serving.schemas import Kline, PredictRequest, PredictResponse
from cse_serving.settings import Settings

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str]
LATEST_ALIAS = "latest"

KlineFetcher = Callable[[str, str, int], Sequence[Kline]]
"""(symbol, interval, limit) → the latest `limit` closed klines, oldest first.

The hook behind "/predict without klines" (the seed fetched from Binance per request). It is called
inline on the request path, so a real one should serve from a cache refreshed in the background."""


@dataclass(frozen=True)
class LoadFailure:
    version: str | None
    message: str
    at: datetime


class ModelRegistry:
    """Loaded models per (symbol, interval), their pins and their last load failure."""

    def __init__(self, store: ModelStore, settings: Settings, fetcher: KlineFetcher | None = None) -> None:
        self.store = store
        self.settings = settings
        self.fetcher = fetcher
        self._models: dict[SeriesKey, LoadedModel] = {}
        self._pins: dict[SeriesKey, str] = {}
        self._failures: dict[SeriesKey, LoadFailure] = {}
        self.served: dict[SeriesKey, int] = {}
        self.latest: dict[SeriesKey, PredictResponse] = {}
        """The last answer per series (GET /predictions/latest)."""
        self.confidence_sum: dict[SeriesKey, float] = {}
        """Summed confidence of classification answers per series (mean = sum / served)."""
        """Predictions answered per series (for /metrics), counted here so handlers need one dependency."""
        self._lock = threading.Lock()
        self._batchers: dict[SeriesKey, MicroBatcher] = {}

    # ----------------------------------------------------------------- state
    def get(self, symbol: str, interval: str) -> LoadedModel:
        """The served model of a series; UnknownNameError (→ 404) lists what is loaded."""
        model = self._models.get((symbol, interval))
        if model is None:
            model = self._models.get((symbol.upper(), interval))
        if model is None:
            loaded = ", ".join(f"{s} {i}" for s, i in sorted(self._models)) or "none"
            raise UnknownNameError(f"no model is loaded for {symbol} {interval}; loaded: {loaded}")
        return model

    def models(self) -> dict[SeriesKey, LoadedModel]:
        return dict(self._models)

    def failures(self) -> dict[SeriesKey, LoadFailure]:
        return dict(self._failures)

    def pins(self) -> dict[SeriesKey, str]:
        return dict(self._pins)

    def __len__(self) -> int:
        return len(self._models)

    # ----------------------------------------------------------------- loading
    def load_latest(self) -> tuple[list[SeriesKey], dict[SeriesKey, str]]:
        """Follow LATEST for every unpinned series in the store → (series swapped, series failed)."""
        swapped: list[SeriesKey] = []
        failed: dict[SeriesKey, str] = {}
        with self._lock:
            for key in self.store.series():
                if key in self._pins:
                    continue
                version: str | None = None
                try:
                    version = self.store.latest(*key)
                    if version is None:
                        continue
                    if self._swap_in(key, version):
                        swapped.append(key)
                except CseError as exc:
                    failed[key] = str(exc)
                    self._record_failure(key, version, exc)
        return swapped, failed

    def pin(self, symbol: str, interval: str, version: str) -> LoadedModel:
        """Serve `version` of a series until unpinned; "latest" unpins and loads LATEST.

        Raises UnknownNameError (→ 404) for a version the store lacks, StoreError (→ 422) when it fails
        to load — in both cases the series keeps serving what it served before."""
        validate_symbol(symbol)
        interval_ms(interval)  # ConfigError (→ 400) for anything but a Binance interval
        key = (symbol, interval)
        with self._lock:
            if version.lower() == LATEST_ALIAS:
                target = self.store.latest(symbol, interval)
                if target is None:
                    raise UnknownNameError(f"{symbol} {interval} has no LATEST version in the store")
            else:
                known = self.store.versions(symbol, interval)
                if version not in known:
                    raise UnknownNameError(
                        f"{symbol} {interval} has no version {version!r}; versions: {', '.join(known) or 'none'}"
                    )
                target = version
            try:
                self._swap_in(key, target)
            except CseError as exc:
                self._record_failure(key, target, exc)
                raise
            if version.lower() == LATEST_ALIAS:
                self._pins.pop(key, None)
            else:
                self._pins[key] = target
            log.info("%s %s pinned to %s", symbol, interval, self._pins.get(key, "LATEST"))
            return self._models[key]

    def unpin(self, symbol: str, interval: str) -> LoadedModel:
        return self.pin(symbol, interval, LATEST_ALIAS)

    def _swap_in(self, key: SeriesKey, version: str) -> bool:
        current = self._models.get(key)
        if current is not None and current.version == version:
            self._failures.pop(key, None)
            return False
        model = load_model(self.store, key[0], key[1], version, self.settings)
        self._models[key] = model
        self._failures.pop(key, None)
        log.info("%s %s now serves %s (was %s)", *key, version, current.version if current else "nothing")
        return True

    def _record_failure(self, key: SeriesKey, version: str | None, exc: Exception) -> None:
        serving = self._models.get(key)
        self._failures[key] = LoadFailure(version, str(exc), datetime.now(UTC))
        log.error(
            "loading %s %s version %s failed; still serving %s: %s",
            *key,
            version,
            serving.version if serving else "nothing",
            exc,
        )

    # ----------------------------------------------------------------- inference
    def predict(
        self, symbol: str, interval: str, klines: Sequence[Kline] | None, members: bool = False
    ) -> PredictResponse:
        """One request → one ORT call (plus one per member when `members` is asked)."""
        return self.predict_batch([PredictRequest(symbol=symbol, interval=interval, klines=klines, members=members)])[0]

    async def predict_async(
        self, symbol: str, interval: str, klines: Sequence[Kline] | None, members: bool = False
    ) -> PredictResponse:
        """The /predict path: like `predict`, but concurrent requests for one model share an ORT call."""
        if members:
            return self.predict(symbol, interval, klines, members)
        model = self.get(symbol, interval)
        if klines is None and self.fetcher is not None:
            klines = self.fetcher(*model.key, model.manifest.min_klines)
        window = model.window(klines)
        batcher = self._batchers.get(model.key)
        if batcher is None or batcher.model is not model:
            batcher = self._batchers[model.key] = MicroBatcher(model)
        answer = model.answer(window, await batcher.run(window))
        self._record(model.key, [answer])
        return answer

    def _record(self, key: SeriesKey, answers: Sequence[PredictResponse]) -> None:
        """Count answers, keep the last one, and sum classification confidences for the monitoring views."""
        self.served[key] = self.served.get(key, 0) + len(answers)
        self.latest[key] = answers[-1]
        confidences = [a.prediction.confidence for a in answers if a.prediction.confidence is not None]
        if confidences:
            self.confidence_sum[key] = self.confidence_sum.get(key, 0.0) + sum(confidences)

    def predict_batch(self, requests: Sequence[PredictRequest]) -> list[PredictResponse]:
        """Several requests; those for the same model share one ORT call. Order is kept.

        Every request is validated before any runs, so one bad request fails the whole batch with a
        message naming its index — a batch answers all or nothing."""
        groups: dict[SeriesKey, tuple[LoadedModel, list[int], list[Window]]] = {}
        for index, request in enumerate(requests):
            try:
                model = self.get(request.symbol, request.interval)
                klines = request.klines
                if klines is None and self.fetcher is not None:
                    klines = self.fetcher(*model.key, model.manifest.min_klines)
                window = model.window(klines)
            except CseError as exc:
                if len(requests) > 1:
                    raise type(exc)(f"requests[{index}]: {exc}") from exc
                raise
            group = groups.setdefault(model.key, (model, [], []))
            group[1].append(index)
            group[2].append(window)
        answers: list[PredictResponse | None] = [None] * len(requests)
        for model, indices, windows in groups.values():
            feeds = model.feeds(windows)
            rows = batch_rows(model.run(feeds))
            member_rows = (
                {name: batch_rows(model.run(feeds, session)) for name, session in model.members.items()}
                if any(requests[i].members for i in indices)
                else {}
            )
            for position, (index, window) in enumerate(zip(indices, windows, strict=True)):
                asked = requests[index].members
                answers[index] = model.answer(
                    window,
                    rows[position],
                    {name: out[position] for name, out in member_rows.items()} if asked else None,
                )
        for model, indices, _ in groups.values():
            self._record(model.key, [answers[i] for i in indices])  # type: ignore[misc]
        return answers  # type: ignore[return-value]
