"""What is served, and the admin levers: reload (follow LATEST) and pin (serve a given version)."""

from __future__ import annotations

import math
from datetime import datetime

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from cse_serving.auth import require_admin, require_token
from cse_serving.registry import ModelRegistry
from cse_serving.schemas import HeadInfo, LoadError, ModelCount, ModelInfo, ModelList, PinRequest, ReloadResult


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def model_infos(registry: ModelRegistry) -> list[ModelInfo]:
    """Every served series plus every series whose load failed, sorted by (symbol, interval)."""
    models, failures, pins = registry.models(), registry.failures(), registry.pins()
    infos = []
    for key in sorted({*models, *failures}):
        failure = failures.get(key)
        error = LoadError(version=failure.version, message=failure.message, at=_iso(failure.at)) if failure else None
        model = models.get(key)
        if model is None:
            infos.append(ModelInfo(symbol=key[0], interval=key[1], version=None, last_error=error))
            continue
        manifest = model.manifest
        infos.append(
            ModelInfo(
                symbol=key[0],
                interval=key[1],
                version=model.version,
                task=manifest.task,
                feature_set=manifest.feature_set,
                seq_len=manifest.seq_len,
                min_klines=manifest.min_klines,
                class_names=list(manifest.class_names),
                heads=[
                    HeadInfo(
                        name=head.name,
                        outputs=list(head.outputs),
                        publish=head.publish,
                        passed=head.passed,
                        forced=head.forced,
                        skill=_finite(head.skill),
                        p_value=_finite(head.p_value),
                        reference=head.reference,
                        reason=head.reason,
                    )
                    for head in manifest.heads
                ],
                members=sorted(model.members),
                metrics=manifest.metrics,
                created_at=manifest.created_at,
                loaded_at=_iso(model.loaded_at),
                pinned=key in pins,
                last_error=error,
            )
        )
    return infos


class ModelsController(Controller):
    path = "/models"
    tags = ("models",)

    @get(
        "/",
        operation_id="listModels",
        summary="Loaded models",
        description=(
            "Version, manifest metrics, loaded_at, pin state and the last load error of every series; for a "
            "forecast model its heads with their walk-forward skill, reference and gate verdict (a head with "
            "`publish` false is withheld from /predict, `reason` says why)."
        ),
        guards=[require_token],
        sync_to_thread=False,
    )
    def list_models(self, registry: ModelRegistry) -> ModelList:
        return ModelList(models=model_infos(registry))

    @get(
        "/count",
        operation_id="countModels",
        summary="Number of loaded models",
        guards=[require_token],
        sync_to_thread=False,
    )
    def count(self, registry: ModelRegistry) -> ModelCount:
        return ModelCount(count=len(registry))

    @post(
        "/reload",
        operation_id="reloadModels",
        summary="Follow LATEST for every unpinned series",
        description="A version that fails to verify or load is reported and the previous one keeps serving.",
        guards=[require_admin],
        status_code=HTTP_200_OK,
        sync_to_thread=True,
    )
    def reload(self, registry: ModelRegistry) -> ReloadResult:
        swapped, failed = registry.load_latest()
        return ReloadResult(
            loaded=[f"{s} {i}" for s, i in swapped],
            failed={f"{s} {i}": message for (s, i), message in failed.items()},
            models=model_infos(registry),
        )

    @post(
        "/{symbol:str}/{interval:str}/pin",
        operation_id="pinModel",
        summary="Serve a given version (rollback)",
        description='Body `{version}`; `"latest"` unpins. 404 for an unknown version, 422 if it fails to load.',
        guards=[require_admin],
        status_code=HTTP_200_OK,
        sync_to_thread=True,
    )
    def pin(
        self,
        data: PinRequest,
        registry: ModelRegistry,
        symbol: str = Parameter(title="Symbol", description="e.g. BTCUSDT"),
        interval: str = Parameter(title="Interval", description="e.g. 1h"),
    ) -> ModelInfo:
        registry.pin(symbol, interval, data.version)
        return next(info for info in model_infos(registry) if (info.symbol, info.interval) == (symbol, interval))
