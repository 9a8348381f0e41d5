"""What the environment decides about the cse code location, read once: when `definitions` loads.

Every Dagster process (webserver, daemon, each run worker) builds the same `Definitions` from these values,
so the asset graph (which model specs exist) and the deployment's resources never depend on which module
happened to read the environment first. Nothing else in `cse_assets` reads the environment at import;
paths (`CSE_HOME`, `CSE_STORE`) are resolved by the resources when a run uses them.

| variable | field | default |
|---|---|---|
| `CSE_DEPLOYMENT` | deployment: the resources (`local`: bundled sample; `live`: Binance) | `local` |
| `CSE_MODEL_SET` | model_set: which specs become model assets (`demo`, `zoo`, `full`) | `demo` |
| `CSE_BINANCE_API_URL` | binance_api_url: the `live` source's base URL (tests, mirrors) | Binance |
| `CSE_EXECUTOR` | executor: how a run runs its steps (`in_process`; `k8s`: a pod per step) | `in_process` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CseSettings:
    """The code location's settings; unknown names fail where they are looked up, listing the known ones."""

    deployment: str = "local"
    model_set: str = "demo"
    binance_api_url: str | None = None
    executor: str = "in_process"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CseSettings:
        return cls(
            deployment=environ.get("CSE_DEPLOYMENT") or cls.deployment,
            model_set=environ.get("CSE_MODEL_SET") or cls.model_set,
            binance_api_url=environ.get("CSE_BINANCE_API_URL") or None,
            executor=environ.get("CSE_EXECUTOR") or cls.executor,
        )
