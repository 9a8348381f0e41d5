"""How an ensemble turns its members' forecasts of one head into its own.

Each combiner is one formula written twice, side by side: numpy (`apply`: fitting, walk-forward scoring,
the parity reference) and ONNX nodes (`nodes`: the composed graph serving runs), so what is scored is
what is served. Inputs are the members' forecasts stacked along axis 1, in the head's combining space
(`spaces.py`): `[n, m]` for price (log return) and volatility (log range), `[n, m, 3]` for direction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from cse_models.errors import ConfigError
from cse_models.registry import Registry

if TYPE_CHECKING:
    from cse_models.ensembles.graph_builder import GraphBuilder

PROBABILITY_FLOOR = 1e-6  # log-pooling takes log p: a member's hard 0 must not become −inf


class Combiner(Protocol):
    kind: ClassVar[str]

    def apply(self, stacked: np.ndarray) -> np.ndarray: ...

    def nodes(self, g: GraphBuilder, stacked: str) -> str: ...


COMBINERS: Registry[type] = Registry("combiner")


def register_combiner(cls: type) -> type:
    COMBINERS.add(cls.kind, cls)
    return cls


def combiner_to_dict(combiner: Combiner) -> dict[str, Any]:
    return {"kind": combiner.kind, **asdict(combiner)}  # type: ignore[call-overload]


def combiner_from_dict(data: dict[str, Any]) -> Combiner:
    fields = dict(data)
    cls = COMBINERS.get(fields.pop("kind"))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


@register_combiner
@dataclass(frozen=True)
class Linear:
    """bias + Σ wᵢ·xᵢ over members `[n, m]` → `[n]`: weighted averages (weights ≥ 0 summing to 1, no
    bias), plain means, and the stacking ridge (any weights, an intercept)."""

    kind: ClassVar[str] = "linear"
    weights: tuple[float, ...]
    bias: float = 0.0

    def apply(self, stacked: np.ndarray) -> np.ndarray:
        return stacked @ np.asarray(self.weights) + self.bias

    def nodes(self, g: GraphBuilder, stacked: str) -> str:
        product = g.op("MatMul", stacked, g.const(np.asarray(self.weights)[:, None], hint="weights"))
        return g.op("Add", product, g.const([self.bias], hint="bias"))


@register_combiner
@dataclass(frozen=True)
class Median:
    """The members' median `[n, m]` → `[n]`: robust to one member gone wild (voting for levels)."""

    kind: ClassVar[str] = "median"
    members: int

    def apply(self, stacked: np.ndarray) -> np.ndarray:
        return np.median(stacked, axis=1)

    def nodes(self, g: GraphBuilder, stacked: str) -> str:
        m = self.members
        # TopK sorts descending; the median is the middle value (the mean of the two middle ones for even m)
        ordered = g.op_multi("TopK", stacked, g.const([m], np.int64, "k"), outputs=2, axis=1)[0]
        middle = sorted({(m - 1) // 2, m // 2})
        picked = g.op("Gather", ordered, g.const(middle, np.int64, "middle"), axis=1)
        return g.op("ReduceMean", picked, g.const([1], np.int64, "axis"), keepdims=1)


@register_combiner
@dataclass(frozen=True)
class LinearPool:
    """Σ wᵢ·pᵢ over members `[n, m, k]` → `[n, k]`: averaged probabilities (soft voting, weighted)."""

    kind: ClassVar[str] = "linear_pool"
    weights: tuple[float, ...]

    def apply(self, stacked: np.ndarray) -> np.ndarray:
        return np.einsum("nmk,m->nk", stacked, np.asarray(self.weights))

    def nodes(self, g: GraphBuilder, stacked: str) -> str:
        weights = g.const(np.asarray(self.weights)[None, :, None], hint="weights")
        return g.op("ReduceSum", g.op("Mul", stacked, weights), g.const([1], np.int64, "axis"), keepdims=0)


@register_combiner
@dataclass(frozen=True)
class LogPool:
    """softmax(Σ wᵢ·log pᵢ + b) over members `[n, m, k]` → `[n, k]`: the stacking meta model for classes
    (a multinomial logistic regression on the members' log probabilities, one weight per member)."""

    kind: ClassVar[str] = "log_pool"
    weights: tuple[float, ...]
    bias: tuple[float, ...]

    def apply(self, stacked: np.ndarray) -> np.ndarray:
        logits = np.einsum("nmk,m->nk", np.log(np.maximum(stacked, PROBABILITY_FLOOR)), np.asarray(self.weights))
        logits = logits + np.asarray(self.bias)
        logits -= logits.max(axis=1, keepdims=True)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def nodes(self, g: GraphBuilder, stacked: str) -> str:
        logs = g.op("Log", g.op("Max", stacked, g.const(PROBABILITY_FLOOR, hint="floor")))
        pooled = LinearPool(self.weights).nodes(g, logs)
        return g.op("Softmax", g.op("Add", pooled, g.const(self.bias, hint="bias")), axis=1)


@register_combiner
@dataclass(frozen=True)
class HardVote:
    """The share of members whose most likely class is each class `[n, m, k]` → `[n, k]` (ties go to the
    first class, as numpy's and ONNX's ArgMax both do)."""

    kind: ClassVar[str] = "hard_vote"
    classes: int

    def apply(self, stacked: np.ndarray) -> np.ndarray:
        votes = np.eye(self.classes)[stacked.argmax(axis=2)]  # [n, m, k]
        return votes.mean(axis=1)

    def nodes(self, g: GraphBuilder, stacked: str) -> str:
        choice = g.op("ArgMax", stacked, axis=2, keepdims=0)
        onehot = g.op("OneHot", choice, g.const([self.classes], np.int64, "depth"), g.const([0.0, 1.0]), axis=-1)
        return g.op("ReduceMean", onehot, g.const([1], np.int64, "axis"), keepdims=0)


def check_weights(weights: tuple[float, ...], what: str) -> None:
    """Averaging weights must be probabilities: a stored ensemble whose weights do not sum to one was
    edited or corrupted, and would silently rescale every price."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or (w < -1e-9).any() or abs(w.sum() - 1.0) > 1e-6:
        raise ConfigError(f"{what}: weights must be ≥ 0 and sum to 1, got {list(weights)} (sum {w.sum():.6g})")
