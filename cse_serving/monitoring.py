"""Request counters and latency histograms, and their Prometheus text exposition (format 0.0.4).

Hand-written instead of prometheus_client: a dict of counters and a bisect per request is all the
service needs, and it keeps the dependency list and the per-request overhead small. The ASGI middleware
labels requests by route template (`/models/{symbol}/{interval}/pin`), never by raw path, so the label
set stays bounded whatever clients send.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from cse_serving.registry import ModelRegistry

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingMetrics:
    """Counters owned by one app instance (no module globals: two apps in one test never mix)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests[method, path, status] += 1
        self.latency_buckets[path][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[path] += seconds

    def mean_latency_ms(self, path: str) -> float | None:
        """Mean handling time of a route template since start, in ms (None before its first request)."""
        count = sum(self.latency_buckets[path]) if path in self.latency_buckets else 0
        return self.latency_sum[path] / count * 1e3 if count else None

    def render(self, registry: ModelRegistry) -> str:
        """Prometheus exposition of the counters plus the registry's state."""
        lines = [
            "# HELP cse_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE cse_http_requests_total counter",
        ]
        for (method, path, status), count in sorted(self.requests.items()):
            lines.append(f'cse_http_requests_total{{method="{method}",path="{_esc(path)}",status="{status}"}} {count}')
        lines += [
            "# HELP cse_http_request_duration_seconds Request latency by route template.",
            "# TYPE cse_http_request_duration_seconds histogram",
        ]
        for path, counts in sorted(self.latency_buckets.items()):
            label = _esc(path)
            total = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'cse_http_request_duration_seconds_bucket{{path="{label}",le="{le}"}} {total}')
            lines.append(f'cse_http_request_duration_seconds_sum{{path="{label}"}} {self.latency_sum[path]:.6f}')
            lines.append(f'cse_http_request_duration_seconds_count{{path="{label}"}} {total}')
        lines += [
            "# HELP cse_predictions_total Predictions served per series.",
            "# TYPE cse_predictions_total counter",
        ]
        for (symbol, interval), count in sorted(registry.served.items()):
            lines.append(f'cse_predictions_total{{symbol="{_esc(symbol)}",interval="{_esc(interval)}"}} {count}')
        models = registry.models()
        failures = registry.failures()
        lines += [
            "# HELP cse_models_loaded Models currently served.",
            "# TYPE cse_models_loaded gauge",
            f"cse_models_loaded {len(models)}",
            "# HELP cse_model_info The version served per series (value 1).",
            "# TYPE cse_model_info gauge",
        ]
        for (symbol, interval), model in sorted(models.items()):
            lines.append(
                f'cse_model_info{{symbol="{_esc(symbol)}",interval="{_esc(interval)}",'
                f'version="{model.version}",task="{model.manifest.task}"}} 1'
            )
        lines += [
            "# HELP cse_model_load_failing 1 while the newest load of a series failed (the old version serves).",
            "# TYPE cse_model_load_failing gauge",
        ]
        for symbol, interval in sorted(failures):
            lines.append(f'cse_model_load_failing{{symbol="{_esc(symbol)}",interval="{_esc(interval)}"}} 1')
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_middleware(metrics: ServingMetrics) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware factory that times every HTTP request and records its status."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_with_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_with_status)
            finally:
                path = scope.get("path_template") or "unmatched"
                metrics.observe(scope["method"], path, status, time.perf_counter() - start)

        return middleware

    return factory
