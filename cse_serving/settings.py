"""Serving configuration as one frozen dataclass, read once from the environment.

Environment variables (all optional):
  CSE_STORE             model store root (default $CSE_HOME/store)
  CSE_HOME              working directory of cse (default ./.cse)
  CSE_SERVING_HOST      bind address (default 127.0.0.1: never exposed unless asked)
  CSE_SERVING_PORT      port (default 8000)
  CSE_SERVING_AUTH      "0"/"false"/"off" disables token checks (local demos only)
  CSE_SERVING_DB        token database (default $CSE_HOME/serving.db)
  CSE_SERVING_MAX_BODY  request body limit in bytes (default 1 MiB)
  CSE_ORT_INTRA_THREADS / CSE_ORT_INTER_THREADS  onnxruntime threads per session (default 1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cse_models.errors import ConfigError

_FALSE = {"0", "false", "off", "no"}


def _cse_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("CSE_HOME") or ".cse")


def _default_store(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env["CSE_STORE"]) if env.get("CSE_STORE") else _cse_home(env) / "store"


def _default_db(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env["CSE_SERVING_DB"]) if env.get("CSE_SERVING_DB") else _cse_home(env) / "serving.db"


@dataclass(frozen=True)
class Settings:
    """What the service needs to start. Defaults make the local demo work with no configuration.

    One onnxruntime thread per session is the default because the request path is tiny
    ([1, 24, 9] windows): thread hand-off costs more than it saves, and uvicorn workers scale out instead.
    """

    store_root: Path = field(default_factory=_default_store)
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = True
    db_path: Path = field(default_factory=_default_db)
    max_body_bytes: int = 1_048_576
    ort_intra_op_threads: int = 1
    ort_inter_op_threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "store_root", Path(self.store_root))
        object.__setattr__(self, "db_path", Path(self.db_path))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be ≥ 1024, got {self.max_body_bytes}")
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

        values: dict[str, object] = {
            "store_root": _default_store(env),
            "host": env.get("CSE_SERVING_HOST") or "127.0.0.1",
            "port": number("CSE_SERVING_PORT", 8000),
            "auth": (env.get("CSE_SERVING_AUTH") or "1").strip().lower() not in _FALSE,
            "db_path": _default_db(env),
            "max_body_bytes": number("CSE_SERVING_MAX_BODY", 1_048_576),
            "ort_intra_op_threads": number("CSE_ORT_INTRA_THREADS", 1),
            "ort_inter_op_threads": number("CSE_ORT_INTER_THREADS", 1),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
