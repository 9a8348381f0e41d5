"""The classical registry: tree-model kinds by stable name, each with its frozen config class.

Registering imports no tree library: an entry's `fit` and `load` import LightGBM or scikit-learn when
called, so `member_kind` (and the Dagster definitions behind it) can ask the registry for free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cse_models.registry import Registry

# Class probabilities are floored here before their log becomes the member's raw "logits": a forest's leaf
# may hold no window of a class, and log 0 would put −inf into the graph. Softmax of the floored logs
# differs from the probabilities by less than 1e-9.
PROBABILITY_FLOOR = 1e-9


class TreeModels(Protocol):
    """The three tree models of one member on window summaries `[n, k]`: a regressor for the σ-scaled
    return z, a regressor for the log range ratio, a Sell/Hold/Buy classifier."""

    def raw_outputs(self, summary: np.ndarray) -> np.ndarray:
        """`[n, k]` float32 summaries → raw outputs `[n, 5]` float64: ẑ, range ratio, log class
        probabilities (the networks' logits: softmax gives the probabilities back)."""
        ...

    def tree_graph(self, n_inputs: int) -> Any:
        """The trees as one ONNX model (`onnx.ModelProto`): input `summary` double `[N, k]`, outputs
        `return_z` `[N, 1]`, `range_ratio` `[N, 1]`, `probabilities` `[N, 3]`."""
        ...

    def save(self, directory: Path) -> None:
        """Write the trees into a model directory — never pickle."""
        ...

    @property
    def node_count(self) -> int:
        """Tree nodes over all trees (a trained model's `parameters`)."""
        ...


# (train, val) weight of each window `[n]`, for a pooled panel (`datasets.pooled`); None: every window 1
WindowWeights = tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True)
class ClassicalEntry:
    name: str
    config_cls: type
    library: str  # what builds the trees: the Dagster `kinds` of the model asset
    fit: Callable[..., TreeModels]  # (config, summary, targets, val summary, val targets, seed, weights=)
    load: Callable[[Path], TreeModels]  # a model directory → TreeModels
    description: str = ""


CLASSICAL: Registry[ClassicalEntry] = Registry("classical model")
