"""Ensemble members by kind: what fits, trains, exports and checks a model spec, chosen by registry.

A spec's architecture names either a Flax network (`cse_models.models.MODELS`) or a classical tree model
(`cse_models.classical.CLASSICAL`); `member_kind(architecture)` returns the `MemberKind` that owns it, so
walk-forward folds, the Dagster assets, the CLI and the ensembles call one interface instead of
branching on the name:

    kind = member_kind(spec.architecture)
    data = PreparedSeries(datasets, data_cfg, scaler)                      # what every kind learns from
    fitted = kind.fit(spec, data, train_cfg)                               # a FittedMember, in memory
    fitted.forecast(data.val)                                              # head forecasts per window
    trained = kind.train(spec, data, train_cfg, directory, ...)            # a model directory
    kind.export(trained, scaler, data_cfg, path, parity_inputs)           # ONNX, parity-checked
    kind.check_parity(trained, scaler, data_cfg, path, inputs)

Every kind's graph has the same inputs and outputs (`heads.layout.input_names` / `OUTPUT_NAMES`), and
every kind calibrates its raw outputs `[n, 5]` with `training.calibrate.calibrate_outputs`, so serving,
ensembles and the store treat all members alike.

`member_kind` itself imports neither JAX nor a tree library (the Dagster definitions ask it for the
`libraries` of every spec when they load): any name that is not classical is taken as Flax, and
`MemberKind.validate` checks it against the Flax registry, importing JAX only then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cse_models.classical import CLASSICAL
from cse_models.classical.member import ClassicalKind
from cse_models.config import DataConfig
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import UnknownNameError
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.heads.calibration import HeadCalibration
from cse_models.registry import Registry
from cse_models.specs import ModelSpec
from cse_models.training.config import TrainingConfig
from cse_models.training.history import EpochLog
from cse_models.training.summary import TrainedModel

if TYPE_CHECKING:
    from cse_models.export.onnx import ParityReport
    from cse_models.training.run import FittedModel


class FittedMember(Protocol):
    """A member fit on a train segment and calibrated on its val segment, held in memory."""

    @property
    def calibration(self) -> HeadCalibration | None: ...

    def forecast(self, split: SplitArrays) -> dict[str, np.ndarray]:
        """Head forecasts for every window of a segment, as `training.calibrate.predict_heads` returns them
        (`heads.layout.outputs_by_head`: price `[n]`, interval `[n, 2]`, volatility `[n]`, direction `[n, 3]`)."""
        ...


class MemberKind(Protocol):
    """How one kind of member is fit, trained into a model directory, exported and parity-checked."""

    name: str

    def libraries(self, architecture: str) -> frozenset[str]:
        """The libraries the member is built with (Dagster `kinds`); imports nothing heavy."""
        ...

    def validate(self, spec: ModelSpec) -> None:
        """Raise now (UnknownNameError listing the known names) if the spec's architecture does not exist."""
        ...

    def fit(self, spec: ModelSpec, data: PreparedSeries, train_cfg: TrainingConfig, **options: Any) -> FittedMember: ...

    def train(
        self,
        spec: ModelSpec,
        data: PreparedSeries,
        train_cfg: TrainingConfig,
        directory: str | Path,
        *,
        resume: bool = False,
        devices: int | None = None,
        on_epoch: Callable[[EpochLog], None] | None = None,
    ) -> TrainedModel: ...

    def export(
        self,
        trained: TrainedModel,
        scaler: FittedScaler,
        data_cfg: DataConfig,
        path: str | Path,
        parity_inputs: dict[str, np.ndarray],
        *,
        model_name: str | None = None,
    ) -> ExportedModel: ...

    def check_parity(
        self,
        trained: TrainedModel,
        scaler: FittedScaler,
        data_cfg: DataConfig,
        path: str | Path,
        inputs: dict[str, np.ndarray],
    ) -> ParityReport: ...


@dataclass(frozen=True)
class FlaxMember:
    """A fitted Flax network: forecasts through the exported serving function."""

    fitted: FittedModel
    data_cfg: DataConfig
    scaler: FittedScaler

    @property
    def calibration(self) -> HeadCalibration | None:
        return self.fitted.calibration

    def forecast(self, split: SplitArrays) -> dict[str, np.ndarray]:
        from cse_models.training.calibrate import predict_heads

        return predict_heads(self.fitted.model, split, self.data_cfg, self.scaler, self.calibration)


class FlaxKind:
    """Flax NNX networks: `training.run` (fit_spec, train_model), orbax checkpoints, jax2onnx export."""

    name = "flax"

    def libraries(self, architecture: str) -> frozenset[str]:
        return frozenset({"jax", "flax"})

    def validate(self, spec: ModelSpec) -> None:
        from cse_models.models import MODELS

        if spec.architecture not in MODELS:
            known = ", ".join(sorted([*MODELS.names(), *CLASSICAL.names()]))
            raise UnknownNameError(f"unknown model {spec.architecture!r}; known: {known}")

    def fit(self, spec, data, train_cfg, **options) -> FlaxMember:
        from cse_models.training.run import fit_spec

        return FlaxMember(fit_spec(spec, data, train_cfg, **options), data.config, data.scaler)

    def train(self, spec, data, train_cfg, directory, **options) -> TrainedModel:
        from cse_models.training.run import train_model

        return train_model(spec, data, train_cfg, directory, **options)

    def export(self, trained, scaler, data_cfg, path, parity_inputs, *, model_name=None) -> ExportedModel:
        from cse_models.export.onnx import export_trained
        from cse_models.training.checkpoint import load_trained_model

        return export_trained(
            load_trained_model(trained.directory),
            model_name or trained.name,
            scaler,
            data_cfg,
            path,
            parity_inputs,
            trained.head_calibration(),
        )

    def check_parity(self, trained, scaler, data_cfg, path, inputs) -> ParityReport:
        from cse_models.export.onnx import check_parity
        from cse_models.training.checkpoint import load_trained_model

        model = load_trained_model(trained.directory)
        return check_parity(model, scaler, data_cfg, path, inputs, trained.head_calibration())


MEMBER_KINDS: Registry[MemberKind] = Registry("member kind")
MEMBER_KINDS.add("flax", FlaxKind())
MEMBER_KINDS.add("classical", ClassicalKind())


def member_kind(architecture: str) -> MemberKind:
    """The kind that owns `architecture`: classical when `CLASSICAL` registers it, else Flax (checked by
    `MemberKind.validate` / at fit time, where JAX is imported anyway)."""
    return MEMBER_KINDS.get("classical" if architecture in CLASSICAL else "flax")


__all__ = ["MEMBER_KINDS", "FittedMember", "FlaxKind", "FlaxMember", "MemberKind", "member_kind"]
