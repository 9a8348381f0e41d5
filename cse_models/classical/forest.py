"""A scikit-learn random forest on window summaries: the classical member that averages instead of boosting.

Three forests per member on the networks' targets: regression forests for the σ-scaled return z and for
the log range ratio (squared error: scikit-learn's absolute-error criterion is orders of magnitude
slower, and the range ratio's mean and median differ little in log space), and a Sell / Hold / Buy
classification forest whose averaged leaf frequencies are the probabilities.

Why the sizes: a forest reduces variance by averaging de-correlated trees, so each tree may be deeper
than a boosting round — but with one hour's return being mostly noise, a leaf must still average many
windows (`min_samples_leaf` 100) or it memorises noise. Depth ≤ 8 bounds each tree at 256 leaves, which
keeps the exported graph small and its latency flat. Each tree sees half the windows (`max_samples` 0.5)
and a third of the columns per split (Breiman's choice for regression forests): more diverse trees, and
half the fitting time. 100 trees: the forest's error stops improving well before that on noisy targets.
The demo preset (30 trees of depth 6, a fifth of the columns) fits 8k windows in about two seconds.

Persistence without pickle: the fitted trees' node arrays (children, split feature, threshold, leaf
values) in `forest.npz`, walked by numpy exactly as scikit-learn walks them (x ≤ threshold goes left), and
the trees as ONNX (`trees.onnx`, from skl2onnx at fit time) for export.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.classical.architectures import CLASSICAL, PROBABILITY_FLOOR, ClassicalEntry, WindowWeights
from cse_models.errors import ConfigError, DataError, StoreError
from cse_models.features.windows import CLASS_NAMES

FORESTS = ("return_z", "range_ratio", "direction")
ARRAYS_FILE = "forest.npz"
TREES_FILE = "trees.onnx"


@dataclass(frozen=True)
class ForestConfig:
    n_estimators: int = 100
    max_depth: int = 8
    min_samples_leaf: int = 100
    max_features: float = 1 / 3  # fraction of the summary columns tried at each split
    max_samples: float = 0.5  # fraction of the windows each tree is grown on
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("n_estimators", "max_depth", "min_samples_leaf", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ForestConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("max_features", "max_samples"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"ForestConfig.{name} must be in (0, 1], got {getattr(self, name)}")

    @classmethod
    def demo(cls, **overrides) -> ForestConfig:
        return replace(cls(n_estimators=30, max_depth=6, max_features=0.2), **overrides)


@dataclass(frozen=True)
class NodeArrays:
    """Every tree of one forest, concatenated: children (global node ids, −1 at leaves), split feature,
    threshold, leaf value `[nodes, k]` (the class frequencies for the classifier) and each tree's root."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    roots: np.ndarray

    @classmethod
    def of(cls, forest: Any) -> NodeArrays:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        roots = np.cumsum([0] + [t.node_count for t in trees[:-1]])

        def children(ids: np.ndarray, root: int) -> np.ndarray:
            return np.where(ids < 0, -1, ids + root)

        values = [t.value[:, 0, :] for t in trees]
        values = [v / v.sum(axis=1, keepdims=True) for v in values] if hasattr(forest, "classes_") else values
        return cls(
            left=np.concatenate([children(t.children_left, r) for t, r in zip(trees, roots, strict=True)]),
            right=np.concatenate([children(t.children_right, r) for t, r in zip(trees, roots, strict=True)]),
            feature=np.concatenate([t.feature for t in trees]),
            threshold=np.concatenate([t.threshold for t in trees]),
            value=np.concatenate(values),
            roots=roots.astype(np.int64),
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean leaf value over the trees `[n, k]`: every tree walked at once, one level per step."""
        x = np.asarray(x, dtype=np.float32)
        node = np.repeat(self.roots[:, None], x.shape[0], axis=1)  # [trees, n]
        rows = np.arange(x.shape[0])[None, :]
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                break
            go_left = x[rows, np.maximum(self.feature[node], 0)] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.value[node].mean(axis=0)

    def as_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{field}": getattr(self, field) for field in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> NodeArrays:
        return cls(**{field: arrays[f"{prefix}.{field}"] for field in cls.__dataclass_fields__})


def _raw_outputs(z: np.ndarray, ratio: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    logits = np.log(np.maximum(probabilities, PROBABILITY_FLOOR))
    return np.column_stack([z, ratio, logits]).astype(np.float64)


@dataclass(frozen=True)
class ForestTrees:
    """The fitted scikit-learn forests (in memory, right after fitting)."""

    forests: dict[str, Any]  # name in FORESTS → RandomForestRegressor / RandomForestClassifier

    def raw_outputs(self, summary: np.ndarray) -> np.ndarray:
        x = np.asarray(summary, dtype=np.float32)
        return _raw_outputs(
            self.forests["return_z"].predict(x),
            self.forests["range_ratio"].predict(x),
            self.forests["direction"].predict_proba(x),
        )

    def tree_graph(self, n_inputs: int) -> Any:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        from cse_models.classical.graph import TREE_OPSET, merge_tree_models

        models = {
            name: to_onnx(
                forest,
                initial_types=[("summary", FloatTensorType([None, n_inputs]))],
                target_opset={"": TREE_OPSET, "ai.onnx.ml": 3},
                options={id(forest): {"zipmap": False}} if name == "direction" else None,
            )
            for name, forest in self.forests.items()
        }
        return merge_tree_models(models, n_inputs)

    def save(self, directory: Path) -> None:
        arrays = {
            k: v for name, forest in self.forests.items() for k, v in NodeArrays.of(forest).as_arrays(name).items()
        }
        np.savez(directory / ARRAYS_FILE, **arrays)
        n_inputs = self.forests["return_z"].n_features_in_
        (directory / TREES_FILE).write_bytes(self.tree_graph(n_inputs).SerializeToString())

    @property
    def node_count(self) -> int:
        return sum(e.tree_.node_count for forest in self.forests.values() for e in forest.estimators_)


@dataclass(frozen=True)
class LoadedForest:
    """A forest read back from its model directory: node arrays to predict with, the ONNX trees to export."""

    arrays: dict[str, NodeArrays]
    graph: Any  # onnx.ModelProto of the trees

    def raw_outputs(self, summary: np.ndarray) -> np.ndarray:
        return _raw_outputs(
            self.arrays["return_z"].predict(summary)[:, 0],
            self.arrays["range_ratio"].predict(summary)[:, 0],
            self.arrays["direction"].predict(summary),
        )

    def tree_graph(self, n_inputs: int) -> Any:
        return self.graph

    def save(self, directory: Path) -> None:
        np.savez(directory / ARRAYS_FILE, **{k: v for n, a in self.arrays.items() for k, v in a.as_arrays(n).items()})
        (directory / TREES_FILE).write_bytes(self.graph.SerializeToString())

    @property
    def node_count(self) -> int:
        return sum(a.left.size for a in self.arrays.values())


def fit_forest(
    cfg: ForestConfig,
    summary: np.ndarray,
    targets: np.ndarray,
    val_summary: np.ndarray,
    val_targets: np.ndarray,
    seed: int,
    weights: WindowWeights = None,
) -> ForestTrees:
    """Summaries `[n, k]` float32 and the networks' targets `[n, 3]` (z, range ratio, label) → forests.
    The validation segment is not needed: a forest has no rounds to stop early (it calibrates there)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    labels = targets[:, 2].astype(np.int64)
    missing = sorted(set(range(len(CLASS_NAMES))) - set(np.unique(labels).tolist()))
    if missing:
        raise DataError(f"the train segment has no {[CLASS_NAMES[i] for i in missing]} window to learn the class from")
    common = {
        "n_estimators": cfg.n_estimators,
        "max_depth": cfg.max_depth,
        "min_samples_leaf": cfg.min_samples_leaf,
        "max_features": cfg.max_features,
        "max_samples": cfg.max_samples,
        "n_jobs": cfg.threads,
        "random_state": seed,
    }
    x = np.asarray(summary, dtype=np.float32)
    weight = None if weights is None else weights[0]
    return ForestTrees(
        {
            "return_z": RandomForestRegressor(**common).fit(x, targets[:, 0], sample_weight=weight),
            "range_ratio": RandomForestRegressor(**common).fit(x, targets[:, 1], sample_weight=weight),
            "direction": RandomForestClassifier(**common).fit(x, labels, sample_weight=weight),
        }
    )


def load_forest(directory: Path) -> LoadedForest:
    import onnx

    try:
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as data:
            arrays = {name: NodeArrays.from_arrays(data, name) for name in FORESTS}
        graph = onnx.load(str(directory / TREES_FILE))
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"{directory} does not hold a readable forest ({ARRAYS_FILE}, {TREES_FILE}): {exc}") from exc
    return LoadedForest(arrays, graph)


CLASSICAL.add(
    "random_forest",
    ClassicalEntry(
        "random_forest",
        ForestConfig,
        "sklearn",
        fit_forest,
        load_forest,
        "scikit-learn random forests (z, range ratio, direction) on window summaries",
    ),
)
