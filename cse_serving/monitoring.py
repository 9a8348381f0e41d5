"""What an operator scrapes and watches: `ServingMetrics` owns every counter of one app instance.

Prometheus series come from prometheus_client on a registry of the app's own (two apps in one test
never mix): HTTP requests and latency by route template, prediction latency and counts per model
version, the micro-batcher's batch sizes, queue time and compute time, model loads with their outcome
and time, and the process collectors (CPU, memory, file descriptors, GC). Served state that changes
without a request (which version serves, readiness, the ORT sessions held, the live scorecard) is read
at scrape time by `StateCollector`, so it is never stale. The monitoring views (/predictions/latest,
/metrics/deep_learning) read the same object through methods, never its dicts.

The ASGI middleware labels requests by route template (`/models/{symbol}/{interval}/pin`), never by raw
path, so the label set stays bounded whatever clients send. A client that disconnects before its
response is counted with status "disconnected", not as a server error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from cse_serving.batching import FlushStats
from cse_serving.loaded_model import LoadedModel
from cse_serving.model_registry import ModelRegistry, Readiness, SeriesKey
from cse_serving.schemas import PredictResponse

disable_created_metrics()  # the `_created` twin of every counter doubles the scrape for nothing here

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
DISCONNECTED = "disconnected"
ROUTE = ("method", "path", "status")
SERIES = ("symbol", "interval")
VERSION = (*SERIES, "version")
OUTCOME = (*SERIES, "outcome")


class ServingMetrics:
    """Counters, histograms and the last answer per series, for one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry

        def histogram(name: str, text: str, labels: Sequence[str], buckets: Sequence[float] = BUCKETS) -> Histogram:
            return Histogram(name, text, labels, buckets=buckets, registry=r)

        self._requests = Counter(
            "cse_http_requests", "HTTP requests by method, route template and status.", ROUTE, registry=r
        )
        self._latency = histogram("cse_http_request_duration_seconds", "Request latency by route template.", ["path"])
        self._predictions = Counter("cse_predictions", "Predictions served per model version.", VERSION, registry=r)
        self._prediction_latency = histogram(
            "cse_prediction_duration_seconds",
            "Time from a validated request to its answer, per model version.",
            VERSION,
        )
        self._batch_size = histogram(
            "cse_batch_size", "Rows per onnxruntime call of the micro-batcher.", SERIES, BATCH_BUCKETS
        )
        self._batch_queue = histogram(
            "cse_batch_queue_seconds", "How long the oldest window of a batch waited for its flush.", SERIES
        )
        self._batch_compute = histogram(
            "cse_batch_compute_seconds", "onnxruntime time of one micro-batch (every session it ran).", SERIES
        )
        self._loads = Counter(
            "cse_model_loads", "Model version loads by outcome (loaded / failed).", OUTCOME, registry=r
        )
        self._last_load = Gauge(
            "cse_model_last_load_timestamp_seconds", "Unix time of the last load per outcome.", OUTCOME, registry=r
        )
        self._confidence_sum: dict[SeriesKey, float] = {}
        self._latest: dict[SeriesKey, PredictResponse] = {}

    # ----------------------------------------------------------------- recording
    def observe_request(self, method: str, path: str, status: str, seconds: float) -> None:
        self._requests.labels(method, path, status).inc()
        self._latency.labels(path).observe(seconds)

    def observe_answers(self, model: LoadedModel, answers: Sequence[PredictResponse], seconds: float) -> None:
        """Count answers of one model version, keep the last one, sum direction confidences."""
        key = model.key
        labels = (*key, model.version)
        self._predictions.labels(*labels).inc(len(answers))
        self._prediction_latency.labels(*labels).observe(seconds)
        self._latest[key] = answers[-1]
        confidences = [a.prediction.confidence for a in answers if a.prediction.confidence is not None]
        if confidences:
            self._confidence_sum[key] = self._confidence_sum.get(key, 0.0) + sum(confidences)

    def observe_flush(self, model: LoadedModel, stats: FlushStats) -> None:
        self._batch_size.labels(*model.key).observe(stats.rows)
        self._batch_queue.labels(*model.key).observe(stats.queued_s)
        self._batch_compute.labels(*model.key).observe(stats.compute_s)

    def observe_load(self, key: SeriesKey, version: str | None, loaded: bool) -> None:
        outcome = "loaded" if loaded else "failed"
        self._loads.labels(*key, outcome).inc()
        self._last_load.labels(*key, outcome).set(time.time())

    # ----------------------------------------------------------------- reading
    def served(self, key: SeriesKey) -> int:
        """Predictions answered for a series since start, every version together (read off the counter)."""
        return int(_total(self._predictions, "_total", {"symbol": key[0], "interval": key[1]}))

    def mean_confidence(self, key: SeriesKey) -> float | None:
        """Mean max-probability of the direction answers of a series since start (None without any)."""
        total, served = self._confidence_sum.get(key), self.served(key)
        return total / served if total is not None and served else None

    def latest(self) -> list[PredictResponse]:
        return [self._latest[key] for key in sorted(self._latest)]

    def mean_latency_ms(self, path: str) -> float | None:
        """Mean handling time of a route template since start, in ms (None before its first request),
        read off the latency histogram."""
        count = _total(self._latency, "_count", {"path": path})
        return _total(self._latency, "_sum", {"path": path}) / count * 1e3 if count else None

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _total(metric: Counter | Histogram, suffix: str, labels: dict[str, str]) -> float:
    """The sum of a metric's `suffix` samples (`_total`, `_sum`, `_count`) whose labels include `labels`."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith(suffix) and labels.items() <= sample.labels.items()
    )


class LiveScores(Protocol):
    """What the state collector needs of the live scorecard: gauge name → value per series and window."""

    def gauges(self, registry: ModelRegistry) -> Iterator[tuple[str, str, dict[str, str], float]]: ...


class StateCollector:
    """Gauges read at scrape time: served versions, readiness per series, ORT sessions alive, live
    scorecard figures."""

    def __init__(self, registry: ModelRegistry, live: LiveScores | None = None) -> None:
        self._registry = registry
        self.live = live
        """Set by the app's lifespan, which opens the scorecard."""

    def collect(self) -> Iterator[Metric]:
        states = self._registry.states()
        loaded = GaugeMetricFamily("cse_models_loaded", "Series with a serving model.")
        loaded.add_metric([], sum(1 for s in states.values() if s.serving is not None))
        sessions = GaugeMetricFamily(
            "cse_serving_ort_sessions",
            "Distinct onnxruntime sessions alive: one per graph (sha256), however many series and versions run it.",
        )
        sessions.add_metric([], len(self._registry.sessions))
        info = GaugeMetricFamily(
            "cse_model_info",
            "The version served per series (value 1).",
            labels=["symbol", "interval", "version", "task"],
        )
        ready = GaugeMetricFamily(
            "cse_series_ready", "1 for the readiness state of each series.", labels=["symbol", "interval", "state"]
        )
        failing = GaugeMetricFamily(
            "cse_model_load_failing",
            "1 while the version the store asks for failed to load (another version, or none, serves).",
            labels=["symbol", "interval"],
        )
        for (symbol, interval), state in sorted(states.items()):
            if state.serving is not None:
                info.add_metric([symbol, interval, state.serving.version, state.serving.manifest.task], 1)
            for readiness in Readiness:
                ready.add_metric([symbol, interval, readiness.value], float(state.readiness is readiness))
            if state.failure is not None:
                failing.add_metric([symbol, interval], 1)
        yield from (loaded, sessions, info, ready, failing)
        if self.live is not None:
            families: dict[str, GaugeMetricFamily] = {}
            for name, help_text, labels, value in self.live.gauges(self._registry):
                family = families.get(name)
                if family is None:
                    family = families[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
                family.add_metric(list(labels.values()), value)
            yield from families.values()


def metrics_middleware(metrics: ServingMetrics) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware factory that times every HTTP request and records its status.

    A request whose client went away (an `http.disconnect` before the response started) is counted as
    "disconnected": the 500 that the framework then tries to send reaches nobody and is no server fault."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status: int | None = None
            disconnected = False

            async def receive_watching() -> Message:
                nonlocal disconnected
                message = await receive()
                if message["type"] == "http.disconnect" and status is None:
                    disconnected = True
                return message

            async def send_with_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive_watching, send_with_status)
            finally:
                path = scope.get("path_template") or "unmatched"
                label = DISCONNECTED if disconnected else str(status or 500)
                metrics.observe_request(scope["method"], path, label, time.perf_counter() - start)

        return middleware

    return factory
