"""Serving configuration as one frozen dataclass, read once from the environment.

Each setting is declared once, below, with its default, its environment variable and what it means
(`env_fields.setting`); `Settings.from_env` and `cse-serving settings` (the table of every variable) are
derived from those declarations. Keyword overrides (the CLI's flags) win over the environment.

The store's object-store options (CSE_STORE_S3_ENDPOINT, AWS_*, the local cache CSE_STORE_CACHE) are read by
cse_models/store/objects.py, not here. A PostgreSQL token database's password may also come from PGPASSWORD
or ~/.pgpass.

CSE_SERVING_PUBLIC_PAGE opens the web page's read-only views — GET /leaderboard, /klines/{symbol}/{interval}
and /scorecard/{symbol}/{interval}: the published versions' walk-forward leaderboards, recent candles and
predictions already scored against their closed candle, i.e. history. Everything else keeps its token:
/predict (a forecast still to come is what a token buys, and each costs inference), /predictions/latest
(fresh forecasts), /models (operator detail: load errors, pins), /metrics/deep_learning and the admin routes.
A token, when sent, is still checked (a wrong one is a 401, never silently ignored); the rate limit keys
anonymous callers by address.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cse_models.errors import ConfigError
from cse_models.store import is_store_url
from cse_serving.env_fields import derived_setting, is_off, lowercase, read_env, setting, verbatim
from cse_serving.rates import Rate


def _cse_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("CSE_HOME") or ".cse")


def _store_root(root: str | Path) -> Path | str:
    """A local store root as a Path; an object-store URL (s3://...) stays a string."""
    return root if is_store_url(root) else Path(root)


def is_postgres_url(location: str | Path) -> bool:
    """Whether a token database location is a PostgreSQL URL (postgresql:// or postgres://), not a path."""
    return isinstance(location, str) and location.partition("://")[0].lower() in ("postgresql", "postgres")


def _db_location(location: str | Path) -> Path | str:
    """A SQLite path as a Path; a PostgreSQL URL stays a string (Path would fold its `//`)."""
    return location if is_postgres_url(location) else Path(location)


def _scorecard_location(text: str, variable: str) -> Path | None:
    return None if is_off(text) else Path(text)


@dataclass(frozen=True)
class Settings:
    """What the service needs to start. Defaults make the local demo work with no configuration.

    One onnxruntime thread per session is the default because the request path is tiny
    ([1, 24, 9] windows): thread hand-off costs more than it saves, and uvicorn workers scale out instead.
    """

    store_root: Path | str = derived_setting(  # noqa: RUF009 (a field with a default_factory)
        lambda env: _cse_home(env) / "store",
        "CSE_STORE",
        "model store root: a directory or an s3://bucket/prefix URL",
        parse=lambda text, _: _store_root(text),
        shown="$CSE_HOME/store",
    )
    host: str = setting("127.0.0.1", "CSE_SERVING_HOST", "bind address (never exposed unless asked)")
    port: int = setting(8000, "CSE_SERVING_PORT", "port")
    auth: bool = setting(True, "CSE_SERVING_AUTH", "token checks; 0/false/off/no disables them (local demos only)")
    db_path: Path | str = derived_setting(  # noqa: RUF009 (a field with a default_factory)
        lambda env: _cse_home(env) / "serving.db",
        "CSE_SERVING_DB",
        "token database: a SQLite file or a postgresql://user:password@host:port/database URL, whose `tokens` "
        "table (created if missing) replicas share",
        parse=lambda text, _: _db_location(text),
        shown="$CSE_HOME/serving.db",
    )
    max_body_bytes: int = setting(1_048_576, "CSE_SERVING_MAX_BODY", "request body limit in bytes", shown="1 MiB")
    ort_intra_op_threads: int = setting(
        1, "CSE_ORT_INTRA_THREADS", "onnxruntime intra-op threads per session (0 = onnxruntime's default)"
    )
    ort_inter_op_threads: int = setting(
        1, "CSE_ORT_INTER_THREADS", "onnxruntime inter-op threads per session (0 = onnxruntime's default)"
    )
    watch_interval_s: float = setting(
        5.0, "CSE_SERVING_WATCH_SECONDS", "how often the store watcher polls LATEST/PINNED, seconds (0 = off)"
    )
    keep_versions: int = setting(
        1, "CSE_SERVING_KEEP_VERSIONS", "versions kept loaded per series, addressable by `version`"
    )
    source: str = setting(
        "none",
        "CSE_SERVING_SOURCE",
        "server-side kline fetch for /predict without klines: none, sample, binance",
        parse=lowercase,
    )
    binance_api_url: str | None = setting(
        None,
        "CSE_SERVING_BINANCE_URL",
        "Binance REST root for the binance source",
        parse=verbatim,
        shown="python-binance's",
    )
    scorecard_path: Path | None = derived_setting(  # noqa: RUF009 (a field with a default_factory)
        lambda env: _cse_home(env) / "scorecard.db",
        "CSE_SERVING_SCORECARD",
        "live scorecard database (off disables it)",
        parse=_scorecard_location,
        shown="$CSE_HOME/scorecard.db",
    )
    scorecard_max_rows: int = setting(200_000, "CSE_SERVING_SCORECARD_ROWS", "predictions kept in the scorecard")
    live_skill_margin: float = setting(
        0.02, "CSE_SERVING_LIVE_MARGIN", "live skill this far below walk-forward skill flags a model"
    )
    header_timeout_s: float = setting(
        10.0, "CSE_SERVING_HEADER_TIMEOUT", "seconds for a request's headers to arrive, from connect or first byte"
    )
    body_timeout_s: float = setting(
        30.0, "CSE_SERVING_BODY_TIMEOUT", "seconds for a request's body to arrive once its headers have"
    )
    keep_alive_s: float = setting(5.0, "CSE_SERVING_KEEP_ALIVE", "seconds an idle keep-alive connection stays open")
    limit_concurrency: int = setting(
        1000, "CSE_SERVING_LIMIT_CONCURRENCY", "open connections or running requests before 503s (0 = none)"
    )
    rate_limit: str = setting(
        "600/minute",
        "CSE_SERVING_RATE_LIMIT",
        "requests per token (or per client address without one), e.g. 600/minute; off",
    )
    auth_lockout: str = setting(
        "20/minute", "CSE_SERVING_AUTH_LOCKOUT", "bad tokens from one client that lock it out, e.g. 20/minute; off"
    )
    auth_lockout_s: float = setting(300.0, "CSE_SERVING_AUTH_LOCKOUT_SECONDS", "how long a lockout lasts, seconds")
    access_log: bool = setting(False, "CSE_SERVING_ACCESS_LOG", "one log line per request")
    public_page: bool = setting(
        False,
        "CSE_SERVING_PUBLIC_PAGE",
        "the web page's read-only views answer without a token (which: cse_serving/settings.py)",
    )
    int8: bool = setting(
        False,
        "CSE_SERVING_INT8",
        "serve a version's int8 variant (model.int8.onnx, sha256-verified) when its manifest lists "
        'variants["int8"], else model.onnx',
    )

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
        Rate.parse(self.rate_limit, name="rate_limit")
        Rate.parse(self.auth_lockout, name="auth_lockout")
        for name in ("ort_intra_op_threads", "ort_inter_op_threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0 (0 = onnxruntime's default), got {getattr(self, name)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from environment variables; keyword overrides (e.g. from CLI flags) win when not None."""
        values = read_env(cls, os.environ if env is None else env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
