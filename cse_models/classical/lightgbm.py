"""LightGBM gradient boosting on window summaries: the classical member that is quick enough for the demo.

Three boosters per member, trained on the very targets and losses the networks train on
(`heads.graph.forecast_loss`): Huber (δ = 1 σ) on the σ-scaled return z, L1 on the log range ratio (its
minimiser is the median, the MAE-optimal point), multiclass log loss on Sell / Hold / Buy. Each stops
early on the validation segment, as the networks do, so the boosting rounds are chosen by data, not by
hand.

Why the sizes: one hour's return is nearly all noise (a good model explains ~1 % of its variance), so
the trees must be weak learners that only keep what repeats — few leaves (`num_leaves` 15, depth ≤ 4),
each holding ≥ 200 windows (a leaf's mean over fewer would mostly be noise), a small learning rate with
early stopping, and row / column subsampling (0.8) to decorrelate the rounds. `max_bin` 63 halves the
histogram work against LightGBM's 255 at no cost on features this noisy. The demo preset (≤ 100 rounds
of 7 leaves at rate 0.1) fits the bundled year (6k train windows) in a few seconds on one core.

Persistence: each booster as LightGBM's own text model (`<output>.txt`) — readable, diffable, no pickle.
Export: onnxmltools converts each booster (`TreeEnsembleRegressor` / `TreeEnsembleClassifier`, zipmap
off) and `graph.merge_tree_models` joins them on the summary input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.classical.architectures import CLASSICAL, PROBABILITY_FLOOR, ClassicalEntry, WindowWeights
from cse_models.errors import ConfigError, StoreError
from cse_models.features.windows import CLASS_NAMES

BOOSTERS = ("return_z", "range_ratio", "direction")


@dataclass(frozen=True)
class LightGBMConfig:
    n_estimators: int = 400  # rounds at most; early stopping on the validation segment picks fewer
    early_stopping_rounds: int = 30
    learning_rate: float = 0.03
    num_leaves: int = 15
    max_depth: int = 4
    min_child_samples: int = 200
    subsample: float = 0.8
    colsample: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 63
    threads: int = 1  # OpenMP threads spin while they wait: on 2 shared cores one thread fitted 2× faster

    def __post_init__(self) -> None:
        for name in ("n_estimators", "early_stopping_rounds", "min_child_samples", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LightGBMConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.num_leaves < 2:
            raise ConfigError(f"LightGBMConfig.num_leaves must be ≥ 2, got {self.num_leaves}")
        if self.max_bin < 2:
            raise ConfigError(f"LightGBMConfig.max_bin must be ≥ 2, got {self.max_bin}")
        if self.max_depth == 0 or self.max_depth < -1:
            raise ConfigError(f"LightGBMConfig.max_depth must be ≥ 1 or -1 (unlimited), got {self.max_depth}")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"LightGBMConfig.learning_rate must be in (0, 1], got {self.learning_rate}")
        for name in ("subsample", "colsample"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"LightGBMConfig.{name} must be in (0, 1], got {getattr(self, name)}")
        if self.reg_lambda < 0:
            raise ConfigError(f"LightGBMConfig.reg_lambda must be ≥ 0, got {self.reg_lambda}")

    @classmethod
    def demo(cls, **overrides) -> LightGBMConfig:
        return replace(
            cls(n_estimators=100, early_stopping_rounds=15, learning_rate=0.1, num_leaves=7, max_depth=3),
            **overrides,
        )


def _params(cfg: LightGBMConfig, objective: dict[str, Any], seed: int) -> dict[str, Any]:
    return {
        **objective,
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "max_depth": cfg.max_depth,
        "min_data_in_leaf": cfg.min_child_samples,
        "bagging_fraction": cfg.subsample,
        "bagging_freq": 1 if cfg.subsample < 1 else 0,
        "feature_fraction": cfg.colsample,
        "lambda_l2": cfg.reg_lambda,
        "max_bin": cfg.max_bin,
        "num_threads": cfg.threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


_OBJECTIVES = {
    "return_z": {"objective": "huber", "alpha": 1.0},  # alpha is LightGBM's Huber δ
    "range_ratio": {"objective": "l1"},
    "direction": {"objective": "multiclass", "num_class": len(CLASS_NAMES)},
}


@dataclass(frozen=True)
class LightGBMTrees:
    """Three boosters: σ-scaled return, log range ratio, Sell/Hold/Buy."""

    boosters: dict[str, Any]  # name in BOOSTERS → lightgbm.Booster

    def raw_outputs(self, summary: np.ndarray) -> np.ndarray:
        x = np.asarray(summary, dtype=np.float32).astype(np.float64)
        z = self.boosters["return_z"].predict(x)
        ratio = self.boosters["range_ratio"].predict(x)
        probabilities = self.boosters["direction"].predict(x)
        logits = np.log(np.maximum(probabilities, PROBABILITY_FLOOR))
        return np.column_stack([z, ratio, logits]).astype(np.float64)

    def tree_graph(self, n_inputs: int) -> Any:
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        from cse_models.classical.graph import TREE_OPSET, merge_tree_models

        models = {
            name: convert_lightgbm(
                booster,
                initial_types=[("summary", FloatTensorType([None, n_inputs]))],
                target_opset=TREE_OPSET,
                zipmap=False,
            )
            for name, booster in self.boosters.items()
        }
        return merge_tree_models(models, n_inputs)

    def save(self, directory: Path) -> None:
        for name, booster in self.boosters.items():
            (directory / f"{name}.txt").write_text(booster.model_to_string())

    @property
    def node_count(self) -> int:
        return sum(
            2 * tree["num_leaves"] - 1
            for booster in self.boosters.values()
            for tree in booster.dump_model()["tree_info"]
        )


def fit_lightgbm(
    cfg: LightGBMConfig,
    summary: np.ndarray,
    targets: np.ndarray,
    val_summary: np.ndarray,
    val_targets: np.ndarray,
    seed: int,
    weights: WindowWeights = None,
) -> LightGBMTrees:
    """Summaries `[n, k]` float32 and the networks' targets `[n, 3]` (z, range ratio, label) → boosters,
    each early-stopped on the validation summaries and targets (`weights`: train, val window weights)."""
    import lightgbm as lgb

    x, x_val = summary.astype(np.float64), val_summary.astype(np.float64)
    boosters = {}
    for column, name in enumerate(BOOSTERS):
        y, y_val = targets[:, column].astype(np.float64), val_targets[:, column].astype(np.float64)
        train_weight, val_weight = weights or (None, None)
        params = {"max_bin": cfg.max_bin, "verbosity": -1}
        train = lgb.Dataset(x, y, weight=train_weight, params=params, free_raw_data=False)
        val = lgb.Dataset(x_val, y_val, weight=val_weight, reference=train)
        booster = lgb.train(
            _params(cfg, _OBJECTIVES[name], seed),
            train,
            num_boost_round=cfg.n_estimators,
            valid_sets=[val],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
        # Only the rounds up to the best one: what is predicted, saved and exported are the same trees.
        boosters[name] = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return LightGBMTrees(boosters)


def load_lightgbm(directory: Path) -> LightGBMTrees:
    import lightgbm as lgb

    boosters = {}
    for name in BOOSTERS:
        path = directory / f"{name}.txt"
        try:
            boosters[name] = lgb.Booster(model_str=path.read_text())
        except (OSError, lgb.basic.LightGBMError) as exc:
            raise StoreError(f"{path} is missing or not a LightGBM model: {exc}") from exc
    return LightGBMTrees(boosters)


CLASSICAL.add(
    "lightgbm",
    ClassicalEntry(
        "lightgbm",
        LightGBMConfig,
        "lightgbm",
        fit_lightgbm,
        load_lightgbm,
        "LightGBM boosters (Huber z, L1 range ratio, multiclass direction) on window summaries",
    ),
)
