"""What is served, and the admin levers: reload (follow LATEST) and pin (serve a given version)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from cse_models.store import Manifest
from cse_serving.auth import require_admin, require_token, token_role
from cse_serving.model_registry import LoadFailure, ModelRegistry, Readiness, SeriesState
from cse_serving.openapi import unready_response
from cse_serving.schemas import (
    GlobalModelInfo,
    HeadInfo,
    LoadError,
    ModelCount,
    ModelInfo,
    ModelList,
    PinRequest,
    ReloadResult,
    SeriesReadiness,
    finite_or_null,
)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _load_error(failure: LoadFailure, admin: bool) -> LoadError:
    """Admins see the raw error (store paths, onnxruntime's words); users a stable sentence."""
    message = failure.message if admin else public_failure(failure.version)
    return LoadError(version=failure.version, message=message, at=_iso(failure.at))


def public_failure(version: str | None) -> str:
    what = f"version {version}" if version else "the store pointer"
    return f"{what} failed to load; the details are in the server log and in GET /models for admin tokens"


def series_readiness(state: SeriesState, admin: bool) -> SeriesReadiness:
    reason = state.reason
    if reason is not None and not admin:
        serving = f"serving {state.serving.version}" if state.serving else "nothing serves"
        reason = f"{public_failure(state.failure.version if state.failure else state.target)}; {serving}"
    return SeriesReadiness(
        symbol=state.key[0],
        interval=state.key[1],
        state=state.readiness.value,
        version=state.serving.version if state.serving else None,
        target=state.target,
        pinned=state.pinned,
        reason=reason,
    )


def global_model_info(manifest: Manifest) -> GlobalModelInfo | None:
    """`training.global` of a global model's manifest (None for a symbol's own model). Read leniently: a
    manifest is the publisher's record, and a field it lacks is shown as absent, not refused at load."""
    facts = manifest.training.extra.get("global")
    if not isinstance(facts, dict):
        return None

    def text(key: str) -> str | None:
        return facts[key] if isinstance(facts.get(key), str) else None

    return GlobalModelInfo(
        trained_on=[str(symbol) for symbol in facts.get("trained_on") or []],
        learned_before=text("learned_before"),
        held_out_from=text("held_out_from"),
        zero_shot=facts.get("zero_shot") is True,
    )


def model_infos(registry: ModelRegistry, admin: bool) -> list[ModelInfo]:
    """Every series of the store, served or not, sorted by (symbol, interval)."""
    return [model_info(state, admin) for _, state in sorted(registry.states().items())]


def model_info(state: SeriesState, admin: bool) -> ModelInfo:
    symbol, interval = state.key
    error = _load_error(state.failure, admin) if state.failure else None
    readiness = series_readiness(state, admin)
    model = state.serving
    if model is None:
        return ModelInfo(symbol=symbol, interval=interval, version=None, last_error=error, readiness=readiness)
    manifest = model.manifest
    return ModelInfo(
        symbol=symbol,
        interval=interval,
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
                skill=finite_or_null(head.skill),
                p_value=finite_or_null(head.p_value),
                reference=head.reference,
                reason=head.reason,
            )
            for head in manifest.heads
        ],
        members=list(manifest.ensemble.members) if manifest.ensemble else sorted(model.members),
        ensemble=manifest.ensemble.method if manifest.ensemble else None,
        encoding=model.encoding,
        encoding_reason=model.encoding_reason,
        graph_sha256=model.graph_sha256,
        global_model=global_model_info(manifest),
        metrics=manifest.metrics.to_dict(),
        created_at=manifest.created_at,
        loaded_at=_iso(model.loaded_at),
        pinned=state.pinned,
        loaded_versions=[m.version for m in state.loaded],
        last_error=error,
        readiness=readiness,
    )


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
    def list_models(self, request: Request, registry: ModelRegistry) -> ModelList:
        return ModelList(models=model_infos(registry, token_role(request) == "admin"))

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
        summary="Follow the store's PINNED / LATEST now, retrying versions that failed",
        description=(
            "What the store watcher does every few seconds, on demand, and versions that failed before are "
            "tried again. A version that fails to verify or load is reported and the previous one keeps serving."
        ),
        guards=[require_admin],
        status_code=HTTP_200_OK,
        sync_to_thread=True,
    )
    def reload(self, registry: ModelRegistry) -> ReloadResult:
        report = registry.sync(retry=True)
        return ReloadResult(
            loaded=[f"{s} {i}" for s, i in report.swapped],
            failed={f"{s} {i}": message for (s, i), message in report.failed.items()},
            models=model_infos(registry, admin=True),
        )

    @post(
        "/{symbol:str}/{interval:str}/pin",
        operation_id="pinModel",
        summary="Serve a given version (rollback)",
        description=(
            'Body `{version}`; `"latest"` unpins. The pin is written to the store (PINNED), so it survives '
            "restarts, holds on every replica and is kept by retention. 404 for an unknown version, 422 if it "
            "fails to load (then nothing changes)."
        ),
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
        return model_info(registry.pin(symbol, interval, data.version), admin=True)

    @get(
        "/{symbol:str}/{interval:str}/ready",
        operation_id="seriesReady",
        summary="Readiness of one series",
        description=(
            "200 while the series answers (`state` ready, or degraded: another version than the store asks for "
            "serves, `reason` says why); 503 when nothing of it loads; 404 for a series the store lacks."
        ),
        responses=unready_response(SeriesReadiness),
        sync_to_thread=False,
    )
    def ready(
        self,
        registry: ModelRegistry,
        symbol: str = Parameter(title="Symbol", description="e.g. BTCUSDT"),
        interval: str = Parameter(title="Interval", description="e.g. 1h"),
    ) -> Response[SeriesReadiness]:
        state = registry.state(symbol, interval)
        status = HTTP_503_SERVICE_UNAVAILABLE if state.readiness is Readiness.UNAVAILABLE else HTTP_200_OK
        return Response(series_readiness(state, admin=False), status_code=status)
