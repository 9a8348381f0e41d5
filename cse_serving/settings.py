"""Serving configuration as one frozen dataclass, read once from the environment.

Environment variables (all optional):
  CSE_STORE             model store root: a directory (default $CSE_HOME/store) or an s3://bucket/prefix URL
                        (endpoint and credentials: CSE_STORE_S3_ENDPOINT, AWS_*; local cache CSE_STORE_CACHE —
                        see cse_models/store_objects.py)
  CSE_HOME              working directory of cse (default ./.cse)
  CSE_SERVING_HOST      bind address (default 127.0.0.1: never exposed unless asked)
  CSE_SERVING_PORT      port (default 8000)
  CSE_SERVING_AUTH      "0"/"false"/"off" disables token checks (local demos only)
  CSE_SERVING_DB        token database: a SQLite file (default $CSE_HOME/serving.db) or a
                        postgresql://user:password@host:port/database URL, whose `tokens` table (created if
                        missing) replicas share; a password may also come from PGPASSWORD or ~/.pgpass
  CSE_SERVING_MAX_BODY  request body limit in bytes (default 1 MiB)
  CSE_ORT_INTRA_THREADS / CSE_ORT_INTER_THREADS  onnxruntime threads per session (default 1)
  CSE_SERVING_WATCH_SECONDS  how often the store watcher polls LATEST/PINNED (default 5; 0 = off)
  CSE_SERVING_KEEP_VERSIONS  versions kept loaded per series, addressable by `version` (default 1)
  CSE_SERVING_SOURCE    server-side kline fetch for /predict without klines: none (default), sample, binance
  CSE_SERVING_BINANCE_URL  Binance REST root for the binance source (default: python-binance's)
  CSE_SERVING_SCORECARD live scorecard database (default $CSE_HOME/scorecard.db; "off" disables it)
  CSE_SERVING_SCORECARD_ROWS  predictions kept in the scorecard (default 200000)
  CSE_SERVING_LIVE_MARGIN  live skill this far below walk-forward skill flags a model (default 0.02)
  CSE_SERVING_HEADER_TIMEOUT  seconds for a request's headers to arrive, from connect or first byte (default 10)
  CSE_SERVING_BODY_TIMEOUT  seconds for a request's body to arrive once its headers have (default 30)
  CSE_SERVING_KEEP_ALIVE  seconds an idle keep-alive connection stays open (default 5)
  CSE_SERVING_LIMIT_CONCURRENCY  open connections or running requests before 503s (default 1000; 0 = none)
  CSE_SERVING_RATE_LIMIT  requests per token (or per client address without one), e.g. 600/minute; off
  CSE_SERVING_AUTH_LOCKOUT  bad tokens from one client that lock it out, e.g. 20/minute (default); off
  CSE_SERVING_AUTH_LOCKOUT_SECONDS  how long a lockout lasts (default 300)
  CSE_SERVING_ACCESS_LOG  "1"/"true"/"on": one log line per request (default off)
  CSE_SERVING_PUBLIC_PAGE  "1"/"true"/"on": the web page's read-only views answer without a token (default
                        off): GET /leaderboard, /klines/{symbol}/{interval} and /scorecard/{symbol}/{interval}
  CSE_SERVING_INT8      "1"/"true"/"on": serve a version's int8 variant (model.int8.onnx, sha256-verified) when
                        its manifest lists variants["int8"], else model.onnx (default off: model.onnx)
                        — the published versions' walk-forward leaderboards, recent candles and predictions
                        already scored against their closed candle, i.e. history. Everything else keeps its
                        token: /predict (a forecast still to come is what a token buys, and each costs
                        inference), /predictions/latest (fresh forecasts), /models (operator detail: load
                        errors, pins), /metrics/deep_learning and the admin routes. A token, when sent, is
                        still checked (a wrong one is a 401, never silently ignored); the rate limit keys
                        anonymous callers by address.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cse_models.errors import ConfigError
from cse_models.store import is_store_url

_FALSE = {"0", "false", "off", "no"}


def _cse_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("CSE_HOME") or ".cse")


def _store_root(root: str | Path) -> Path | str:
    """A local store root as a Path; an object-store URL (s3://...) stays a string."""
    return root if is_store_url(root) else Path(root)


def _default_store(env: Mapping[str, str] | None = None) -> Path | str:
    env = os.environ if env is None else env
    return _store_root(env["CSE_STORE"]) if env.get("CSE_STORE") else _cse_home(env) / "store"


def _default_scorecard(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    raw = env.get("CSE_SERVING_SCORECARD")
    if raw and raw.strip().lower() in _FALSE:
        return None
    return Path(raw) if raw else _cse_home(env) / "scorecard.db"


def is_postgres_url(location: str | Path) -> bool:
    """Whether a token database location is a PostgreSQL URL (postgresql:// or postgres://), not a path."""
    return isinstance(location, str) and location.partition("://")[0].lower() in ("postgresql", "postgres")


def _db_location(location: str | Path) -> Path | str:
    """A SQLite path as a Path; a PostgreSQL URL stays a string (Path would fold its `//`)."""
    return location if is_postgres_url(location) else Path(location)


def _default_db(env: Mapping[str, str] | None = None) -> Path | str:
    env = os.environ if env is None else env
    return _db_location(env["CSE_SERVING_DB"]) if env.get("CSE_SERVING_DB") else _cse_home(env) / "serving.db"


@dataclass(frozen=True)
class Settings:
    """What the service needs to start. Defaults make the local demo work with no configuration.

    One onnxruntime thread per session is the default because the request path is tiny
    ([1, 24, 9] windows): thread hand-off costs more than it saves, and uvicorn workers scale out instead.
    """

    store_root: Path | str = field(default_factory=_default_store)  # a directory or an s3:// URL
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = True
    db_path: Path | str = field(default_factory=_default_db)  # a SQLite file or a postgresql:// URL
    max_body_bytes: int = 1_048_576
    ort_intra_op_threads: int = 1
    ort_inter_op_threads: int = 1
    watch_interval_s: float = 5.0
    keep_versions: int = 1
    source: str = "none"
    binance_api_url: str | None = None
    scorecard_path: Path | None = field(default_factory=_default_scorecard)
    scorecard_max_rows: int = 200_000
    live_skill_margin: float = 0.02
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    limit_concurrency: int = 1000
    rate_limit: str = "600/minute"
    auth_lockout: str = "20/minute"
    auth_lockout_s: float = 300.0
    access_log: bool = False
    public_page: bool = False
    int8: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "store_root", _store_root(self.store_root))
        object.__setattr__(self, "db_path", _db_location(self.db_path))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be ≥ 1024, got {self.max_body_bytes}")
        if self.scorecard_path is not None:
            object.__setattr__(self, "scorecard_path", Path(self.scorecard_path))
        if self.watch_interval_s < 0:
            raise ConfigError(f"watch_interval_s must be ≥ 0 (0 = no watcher), got {self.watch_interval_s}")
        if self.keep_versions < 1:
            raise ConfigError(f"keep_versions must be ≥ 1, got {self.keep_versions}")
        if self.scorecard_max_rows < 1:
            raise ConfigError(f"scorecard_max_rows must be ≥ 1, got {self.scorecard_max_rows}")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "auth_lockout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.limit_concurrency < 0:
            raise ConfigError(f"limit_concurrency must be ≥ 0 (0 = no limit), got {self.limit_concurrency}")
        from cse_serving.ratelimit import Rate  # the parser lives with the limiter; imported only here

        Rate.parse(self.rate_limit, name="rate_limit")
        Rate.parse(self.auth_lockout, name="auth_lockout")
        for name in ("ort_intra_op_threads", "ort_inter_op_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0 (0 = onnxruntime's default), got {getattr(self, name)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from environment variables; keyword overrides (e.g. from CLI flags) win when not None."""
        env = os.environ if env is None else env

        def number(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None

        def decimal(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None

        values: dict[str, object] = {
            "store_root": _default_store(env),
            "host": env.get("CSE_SERVING_HOST") or "127.0.0.1",
            "port": number("CSE_SERVING_PORT", 8000),
            "auth": (env.get("CSE_SERVING_AUTH") or "1").strip().lower() not in _FALSE,
            "db_path": _default_db(env),
            "max_body_bytes": number("CSE_SERVING_MAX_BODY", 1_048_576),
            "ort_intra_op_threads": number("CSE_ORT_INTRA_THREADS", 1),
            "ort_inter_op_threads": number("CSE_ORT_INTER_THREADS", 1),
            "watch_interval_s": decimal("CSE_SERVING_WATCH_SECONDS", 5.0),
            "keep_versions": number("CSE_SERVING_KEEP_VERSIONS", 1),
            "source": (env.get("CSE_SERVING_SOURCE") or "none").strip().lower(),
            "binance_api_url": env.get("CSE_SERVING_BINANCE_URL") or None,
            "scorecard_path": _default_scorecard(env),
            "scorecard_max_rows": number("CSE_SERVING_SCORECARD_ROWS", 200_000),
            "live_skill_margin": decimal("CSE_SERVING_LIVE_MARGIN", 0.02),
            "header_timeout_s": decimal("CSE_SERVING_HEADER_TIMEOUT", 10.0),
            "body_timeout_s": decimal("CSE_SERVING_BODY_TIMEOUT", 30.0),
            "keep_alive_s": decimal("CSE_SERVING_KEEP_ALIVE", 5.0),
            "limit_concurrency": number("CSE_SERVING_LIMIT_CONCURRENCY", 1000),
            "rate_limit": env.get("CSE_SERVING_RATE_LIMIT") or "600/minute",
            "auth_lockout": env.get("CSE_SERVING_AUTH_LOCKOUT") or "20/minute",
            "auth_lockout_s": decimal("CSE_SERVING_AUTH_LOCKOUT_SECONDS", 300.0),
            "access_log": (env.get("CSE_SERVING_ACCESS_LOG") or "0").strip().lower() not in _FALSE,
            "public_page": (env.get("CSE_SERVING_PUBLIC_PAGE") or "0").strip().lower() not in _FALSE,
            "int8": (env.get("CSE_SERVING_INT8") or "0").strip().lower() not in _FALSE,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
