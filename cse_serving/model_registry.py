"""The loaded models of every series and the version policy that chooses which one answers.

TF-Serving's version policy in a few lines. Per (symbol, interval) the store says what to serve: the
version in PINNED when an operator pinned one, else the one in LATEST (DESIGN.md §4). `sync()` brings
every series in line with the store: the target version is verified (sha256), opened and smoke-run
*beside* the serving one, then swapped in by replacing one immutable `SeriesState`; a request that
already holds the old `LoadedModel` finishes on it. The last `keep_versions` versions that loaded stay
loaded, so a request may ask for one of them by `version`.

When the target fails to load, the series keeps serving what it served and is reported degraded; at a
cold start (nothing served yet) it falls back to the newest version in the store that loads. A target
that failed is not retried on every watcher tick (it would re-hash its files every few seconds): only
when the store names another target, or when an admin asks (`sync(retry=True)`).

Pins are files in the store, not server memory: a restart, another replica and the publisher's
retention all see them. Readers never lock: they read one dict whose values are immutable. Loads are
serialized by one lock, so the watcher and an admin reload cannot interleave.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from cse_models.data.schema import interval_ms, validate_symbol
from cse_models.errors import CseError, UnknownNameError
from cse_models.store import ModelStore
from cse_serving.loaded_model import LoadedModel
from cse_serving.loading import load_model
from cse_serving.session_cache import SessionCache
from cse_serving.settings import Settings

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str]
LATEST_ALIAS = "latest"

LoadObserver = Callable[[SeriesKey, str | None, bool], None]
"""(series, version, loaded?) after every load attempt: the metrics' reload counters."""


class Readiness(StrEnum):
    READY = "ready"
    """Serving the version the store asks for."""
    DEGRADED = "degraded"
    """Serving, but not the version the store asks for (it failed to load, or LATEST is unreadable)."""
    UNAVAILABLE = "unavailable"
    """Nothing of this series loads."""


@dataclass(frozen=True)
class LoadFailure:
    version: str | None
    message: str
    at: datetime


@dataclass(frozen=True)
class SeriesState:
    """One series as served: what the store asks for, what answers, and what else stays loaded."""

    key: SeriesKey
    target: str | None
    """The version the policy asks for (PINNED, else LATEST); None while the pointer is unreadable."""
    pinned: bool
    serving: LoadedModel | None
    loaded: tuple[LoadedModel, ...] = ()
    """Newest load first; the serving model is one of them."""
    failure: LoadFailure | None = None
    """The last failed load of the target (or of the pointer), cleared when the target loads."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def readiness(self) -> Readiness:
        if self.serving is None:
            return Readiness.UNAVAILABLE
        if self.serving.version != self.target:
            return Readiness.DEGRADED
        return Readiness.READY

    @property
    def reason(self) -> str | None:
        """Why the series is not ready, for operators (store paths and raw errors included)."""
        if self.readiness is Readiness.READY:
            return None
        wanted = f"{'PINNED' if self.pinned else 'LATEST'} version {self.target}" if self.target else "its pointer"
        failed = f"{wanted} failed to load: {self.failure.message}" if self.failure else f"{wanted} is not loaded"
        return f"{failed}; serving {self.serving.version}" if self.serving else f"{failed}; nothing serves"

    def version(self, version: str) -> LoadedModel | None:
        return next((model for model in self.loaded if model.version == version), None)


@dataclass(frozen=True)
class SyncReport:
    """Series whose served version changed, and series whose target failed to load in this sync."""

    swapped: list[SeriesKey]
    failed: dict[SeriesKey, str]


class ModelRegistry:
    """Loaded models per (symbol, interval), chosen by the store's PINNED / LATEST pointers."""

    def __init__(self, store: ModelStore, settings: Settings, *, on_load: LoadObserver | None = None) -> None:
        self.store = store
        self.settings = settings
        self._on_load = on_load
        self.sessions = SessionCache(settings)
        """The ORT sessions of every loaded version, one per distinct graph; a graph no loaded version
        runs any more is dropped with its last model (weak references, `cse_serving.session_cache`)."""
        self._states: dict[SeriesKey, SeriesState] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- reading
    def states(self) -> dict[SeriesKey, SeriesState]:
        return dict(self._states)

    def state(self, symbol: str, interval: str) -> SeriesState:
        state = self._states.get((symbol, interval)) or self._states.get((symbol.upper(), interval))
        if state is None:
            raise UnknownNameError(f"{symbol} {interval} is not in the model store; known: {self._known()}")
        return state

    def models(self) -> dict[SeriesKey, LoadedModel]:
        """The serving model of every series that has one."""
        return {key: state.serving for key, state in self._states.items() if state.serving is not None}

    def get(self, symbol: str, interval: str, version: str | None = None) -> LoadedModel:
        """The model that answers: the serving one, or a given loaded `version`. UnknownNameError (→ 404)
        names what is loaded."""
        state = self._states.get((symbol, interval)) or self._states.get((symbol.upper(), interval))
        if state is None or state.serving is None:
            raise UnknownNameError(f"no model is loaded for {symbol} {interval}; loaded: {self._known()}")
        if version is None:
            return state.serving
        model = state.version(version)
        if model is None:
            loaded = ", ".join(m.version for m in state.loaded)
            raise UnknownNameError(
                f"version {version!r} of {symbol} {interval} is not loaded; loaded: {loaded} "
                f"(the server keeps the last {self.settings.keep_versions})"
            )
        return model

    def _known(self) -> str:
        return ", ".join(f"{s} {i}" for (s, i), st in sorted(self._states.items()) if st.serving) or "none"

    def __len__(self) -> int:
        return sum(1 for state in self._states.values() if state.serving is not None)

    # ----------------------------------------------------------------- loading
    def sync(self, *, retry: bool = False) -> SyncReport:
        """Bring every series of the store in line with its PINNED / LATEST pointer.

        `retry` reloads targets that failed before (an admin's /models/reload); the watcher does not."""
        report = SyncReport([], {})
        with self._lock:
            for key in self.store.series():
                before = self._states.get(key)
                after = self._sync_series(key, before, retry=retry)
                if after is before:
                    continue
                self._states = {**self._states, key: after}
                if after.serving is not (before.serving if before else None):
                    report.swapped.append(key)
                if after.failure is not None and (before is None or after.failure is not before.failure):
                    report.failed[key] = after.failure.message
        return report

    def _sync_series(self, key: SeriesKey, state: SeriesState | None, *, retry: bool) -> SeriesState:
        try:
            pinned = self.store.pinned(*key)
            target = pinned or self.store.latest(*key)
        except CseError as exc:  # an unreadable pointer: keep serving, report, fall back at cold start
            if state is not None and state.target is None and not retry:
                return state
            failure = LoadFailure(None, str(exc), datetime.now(UTC))
            log.error("%s %s: %s", *key, exc)
            base = state or SeriesState(key, None, False, None)
            return self._fallback(replace(base, target=None, failure=failure))
        if target is None:
            return state or SeriesState(key, None, False, None)
        is_pinned = pinned is not None
        if state is not None and state.target == target and state.pinned == is_pinned:
            if state.serving is not None and state.serving.version == target:
                return state
            if state.failure is not None and state.failure.version == target and not retry:
                return state
        base = replace(state, target=target, pinned=is_pinned) if state else SeriesState(key, target, is_pinned, None)
        try:
            model = base.version(target) or self._load(key, target)
        except CseError as exc:
            return self._fallback(replace(base, failure=LoadFailure(target, str(exc), datetime.now(UTC))))
        return self._serve(base, model)

    def _load(self, key: SeriesKey, version: str) -> LoadedModel:
        try:
            model = load_model(self.store, key[0], key[1], version, self.settings, self.sessions)
        except CseError as exc:
            log.error("loading %s %s version %s failed: %s", *key, version, exc)
            if self._on_load:
                self._on_load(key, version, False)
            raise
        if self._on_load:
            self._on_load(key, version, True)
        return model

    def _serve(self, state: SeriesState, model: LoadedModel) -> SeriesState:
        """`model` answers from now on; it joins the loaded versions (the newest `keep_versions`)."""
        kept = (model, *(m for m in state.loaded if m.version != model.version))[: self.settings.keep_versions]
        previous = state.serving.version if state.serving else "nothing"
        if previous != model.version:
            log.info("%s %s now serves %s %s (was %s)", *state.key, model.version, model.encoding, previous)
        failure = state.failure if state.target != model.version else None
        return replace(state, serving=model, loaded=kept, failure=failure, at=datetime.now(UTC))

    def _fallback(self, state: SeriesState) -> SeriesState:
        """After a failed target: keep serving what serves; with nothing served, the newest good version."""
        if state.serving is not None:
            return replace(state, at=datetime.now(UTC))
        failed = state.failure.version if state.failure else None
        for version in reversed(self.store.versions(*state.key)):
            if version == failed:
                continue
            try:
                model = self._load(state.key, version)
            except CseError:
                continue
            log.warning("%s %s falls back to %s: %s", *state.key, version, state.reason)
            return self._serve(state, model)
        return replace(state, at=datetime.now(UTC))

    def pin(self, symbol: str, interval: str, version: str) -> SeriesState:
        """Serve `version` of a series until unpinned, and write the pin to the store; "latest" unpins.

        Raises UnknownNameError (→ 404) for a version the store lacks, StoreError (→ 422) when it fails
        to load — in both cases the series keeps serving what it served and the store is unchanged."""
        validate_symbol(symbol)
        interval_ms(interval)  # ConfigError (→ 400) for anything but a Binance interval
        key = (symbol, interval)
        with self._lock:
            state = self._states.get(key) or SeriesState(key, None, False, None)
            if version.lower() == LATEST_ALIAS:
                self.store.unpin(symbol, interval)
                after = self._sync_series(key, replace(state, pinned=False), retry=True)
            else:
                known = self.store.versions(symbol, interval)
                if version not in known:
                    raise UnknownNameError(
                        f"{symbol} {interval} has no version {version!r}; versions: {', '.join(known) or 'none'}"
                    )
                model = state.version(version) or self._load(key, version)
                self.store.pin(symbol, interval, version)
                after = self._serve(replace(state, target=version, pinned=True, failure=None), model)
            self._states = {**self._states, key: after}
            log.info("%s %s pinned to %s", symbol, interval, version if after.pinned else "LATEST")
            return after
