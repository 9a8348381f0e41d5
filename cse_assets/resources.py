"""Every outside thing the assets touch, as a configurable resource with a local default.

- `KlineSourceResource` — where candles come from (bundled sample, CSV archive, Binance).
- `CseHomeResource` — the working directory for materialized assets ($CSE_HOME, default ./.cse).
- `ModelStoreResource` — the model store that serving reads (DESIGN.md §4).
- `EvaluationSettings` — the walk-forward evaluation and the promotion gate (force flag).
- `TrainingResource` — the training budget (demo / full) and its overrides.
- `DataSettings` — interval, range, cleaning policy and `DataConfig`, shared by every asset so that the
  data assets and the model assets built on them can never disagree about seq_len or the split.

Paths resolve when a run uses them, not at import, so `CSE_HOME` / `CSE_STORE` in the run's environment
count; an explicit field value wins over the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource, InitResourceContext

from cse_models.config import DataConfig
from cse_models.data.clean import CleaningConfig
from cse_models.data.file_sources import CsvArchiveSource, SampleSource
from cse_models.data.sources import KlineSource, TimeRange
from cse_models.errors import ConfigError
from cse_models.features.split import SplitConfig
from cse_models.scoring.folds import WalkForwardConfig
from cse_models.store import ModelStore, open_store
from cse_models.training.config import TrainingConfig, budget

DEFAULT_CSE_HOME = ".cse"


def cse_home_from_env() -> Path:
    return Path(os.environ.get("CSE_HOME") or DEFAULT_CSE_HOME)


class CseHomeResource(ConfigurableResource):
    """Root of everything cse writes locally: `assets/` (IO manager) and, by default, `store/`."""

    home: str | None = None  # None → $CSE_HOME → ./.cse

    @property
    def root(self) -> Path:
        return Path(self.home) if self.home else cse_home_from_env()

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"


class ModelStoreResource(ConfigurableResource):
    """The model store: a local directory ($CSE_STORE, default $CSE_HOME/store)."""

    root: str | None = None  # None → $CSE_STORE → $CSE_HOME/store

    def store(self) -> ModelStore:
        root = self.root or os.environ.get("CSE_STORE") or cse_home_from_env() / "store"
        return open_store(root)


def _sample(_: KlineSourceResource) -> KlineSource:
    return SampleSource()


def _csv(resource: KlineSourceResource) -> KlineSource:
    if not resource.csv_dir:
        raise ConfigError("source kind 'csv' needs csv_dir (the directory holding the kline CSV files)")
    return CsvArchiveSource(Path(resource.csv_dir), resource.pattern)


def _binance(resource: KlineSourceResource) -> KlineSource:
    from cse_models.data.binance import BinanceSource  # python-binance is heavy; load it only when chosen

    return BinanceSource(resource.api_url)


SOURCE_KINDS: dict[str, Callable[[KlineSourceResource], KlineSource]] = {
    "sample": _sample,
    "csv": _csv,
    "binance": _binance,
}


class KlineSourceResource(ConfigurableResource):
    """Which `KlineSource` feeds `raw_klines`. The default needs no network: the bundled sample."""

    kind: Literal["sample", "csv", "binance"] = "sample"
    csv_dir: str | None = None  # kind "csv": directory of CryptoDataDownload / Binance-archive files
    pattern: str = "Binance_{symbol}_{interval}.csv"  # kind "csv": file name, may use {symbol} {interval}
    api_url: str | None = None  # kind "binance": override of https://api.binance.com/api (tests, mirrors)

    def source(self) -> KlineSource:
        return SOURCE_KINDS[self.kind](self)


def _iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"range bound {text!r} is not an ISO 8601 date/time (e.g. 2021-01-01T00:00)") from exc


class DataSettings(ConfigurableResource):
    """What data every symbol gets and how it is prepared; `data_config()` is the library's view.

    The range is either relative (`range_last`, e.g. "last 90 days", counted back from the source's
    anchor: the clock for Binance, the last candle for files) or absolute ISO bounds `range_start` /
    `range_end` with `range_last: null`.
    """

    interval: str = "1h"
    range_last: str | None = "last year"
    range_start: str | None = None  # ISO 8601, e.g. "2021-01-01" (UTC unless an offset is given)
    range_end: str | None = None
    # cleaning (cse_models.data.clean.CleaningConfig)
    bad_ticks: Literal["drop", "keep"] = "drop"
    gaps: Literal["keep", "ffill"] = "keep"
    spike_sigmas: float = 30.0
    # features, windows, targets, scaling (cse_models.config.DataConfig; defaults: `DataConfig()`)
    feature_set: str = "stationary"
    seq_len: int = 24
    horizon: int = 1
    task: Literal["regression", "classification", "forecast"] = "forecast"
    scaler: str = "robust"
    hold_band: float = 0.002  # classification (fixed band)
    hold_band_sigmas: float = 0.5  # forecast (band in trailing σ)
    interval_level: float = 0.8
    calibration_windows: int = 720
    split_train: float = 0.72
    split_val: float = 0.18
    split_test: float = 0.10
    split_purge: int | None = None  # None → seq_len rows between segments

    def time_range(self) -> TimeRange:
        return TimeRange(last=self.range_last, start=_iso(self.range_start), end=_iso(self.range_end))

    def cleaning_config(self) -> CleaningConfig:
        return CleaningConfig(bad_ticks=self.bad_ticks, gaps=self.gaps, spike_sigmas=self.spike_sigmas)

    def data_config(self) -> DataConfig:
        split = SplitConfig(train=self.split_train, val=self.split_val, test=self.split_test, purge=self.split_purge)
        return DataConfig(
            feature_set=self.feature_set,
            seq_len=self.seq_len,
            horizon=self.horizon,
            task=self.task,
            scaler=self.scaler,
            hold_band=self.hold_band,
            hold_band_sigmas=self.hold_band_sigmas,
            interval_level=self.interval_level,
            calibration_windows=self.calibration_windows,
            split=split,
        )


class TrainingResource(ConfigurableResource):
    """How models train: a named budget (`demo`: a few epochs; `full`: the seed's ≤ 100 epochs with
    early stopping), the devices (data-parallel over the first N; None = all), the precision (fp32 or
    bf16 compute with fp32 parameters), and optional overrides. Shared by every model asset. With
    `resume`, a re-run after a crash continues from the crashed run's latest checkpoint (same data and
    config only: a saved state from other data fails the run rather than resuming silently).

    Every step that runs JAX (training, walk-forward, export, parity) requires this resource, so that the
    persistent compilation cache is on before its first compilation: later steps and later runs reuse
    the compiled functions instead of compiling them again (`cse_models.training.compilation_cache`).

    Multi-host data parallelism (off by default): with `coordinator_address`, `num_processes` and
    `process_id` set, each process joins the JAX cluster (`jax.distributed.initialize`, through
    `cse_models.training.sharding.initialize_distributed`) before its first JAX computation, and the data
    mesh then spans every process's devices. Each process must run the same training step with its own
    `process_id` (e.g. `EnvVar.int("JOB_COMPLETION_INDEX")` in a Kubernetes Indexed Job)."""

    budget: str = "demo"
    devices: int | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    resume: bool = False
    max_epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    patience: int | None = None
    lr_schedule: str | None = None
    seed: int = 0
    compilation_cache: bool = True
    compilation_cache_dir: str | None = None  # None → $CSE_HOME/jax_cache
    coordinator_address: str | None = None  # "host:port" of process 0; None → single host
    num_processes: int | None = None
    process_id: int | None = None
    local_device_ids: list[int] | None = None  # None → every local device

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.coordinator_address is not None:
            self._join_cluster()
        if self.compilation_cache:
            from cse_models.training.compilation_cache import enable_compilation_cache

            enable_compilation_cache(self.compilation_cache_dir or cse_home_from_env() / "jax_cache")

    def _join_cluster(self) -> None:
        if self.num_processes is None or self.process_id is None:
            raise ConfigError("training.coordinator_address needs num_processes and process_id as well")
        if not 0 <= self.process_id < self.num_processes:
            raise ConfigError(
                f"training.process_id must be in [0, num_processes = {self.num_processes}), got {self.process_id}"
            )
        import jax

        if jax.distributed.is_initialized():  # a second run in the same process (in-process executor)
            return
        from cse_models.training.sharding import initialize_distributed

        initialize_distributed(self.coordinator_address, self.num_processes, self.process_id, self.local_device_ids)

    def config(self) -> TrainingConfig:
        overrides = {
            name: value
            for name in ("max_epochs", "learning_rate", "batch_size", "patience", "lr_schedule")
            if (value := getattr(self, name)) is not None
        }
        return budget(self.budget, seed=self.seed, precision=self.precision, **overrides)


class EvaluationSettings(ConfigurableResource):
    """The walk-forward evaluation and the promotion gate in front of publication.

    A head is published only when its walk-forward skill against its reference is > 0 and the
    Diebold–Mariano p-value (model better) is ≤ `max_p_value`; a version is published when at least one
    head passes. `force_publish` publishes every head anyway and the manifest records, per head, that it
    was forced, with the gate's verdict (the `beats_naive` check stays failed).

    `publish_ensemble`: with two or more specs, "if_better" (default) publishes the ensemble only when
    its walk-forward price skill beats its best member's; "always" publishes it whenever its heads pass
    the gate — for operators who prefer a combined forecast's steadiness over a member's small edge (the
    manifest's `ensemble.reason` says which rule chose it).
    """

    n_folds: int = 3
    scheme: Literal["expanding", "sliding"] = "expanding"
    budget: str = "demo"
    max_p_value: float = 0.05
    force_publish: bool = False
    publish_ensemble: Literal["if_better", "always"] = "if_better"

    def walk_forward_config(self) -> WalkForwardConfig:
        return WalkForwardConfig(n_folds=self.n_folds, scheme=self.scheme)
