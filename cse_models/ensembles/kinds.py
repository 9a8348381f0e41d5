"""The ensemble kinds by name: each turns `FitRows` into a `FittedEnsemble`. Registered like models, so
an `EnsembleConfig.method` is looked up, never branched on. Each kind's module registers itself; the
package (`cse_models/ensembles/__init__.py`) imports them, so the registry is full before anyone can call
`fit_ensemble`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cse_models.ensembles.config import EnsembleConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.rows import FitRows
from cse_models.registry import Registry


@dataclass(frozen=True)
class EnsembleKind:
    name: str
    fit: Callable[[EnsembleConfig, FitRows], FittedEnsemble]
    description: str


ENSEMBLES: Registry[EnsembleKind] = Registry("ensemble method")


def register_ensemble(name: str, description: str):
    def add(fit: Callable[[EnsembleConfig, FitRows], FittedEnsemble]):
        ENSEMBLES.add(name, EnsembleKind(name, fit, description))
        return fit

    return add


def fit_ensemble(cfg: EnsembleConfig, rows: FitRows) -> FittedEnsemble:
    return ENSEMBLES.get(cfg.method).fit(cfg, rows)
