"""The spaces an ensemble combines its members in, head by head, and the way back to a forecast card.

- price: log returns log(closeᵢ / last close). Averaging returns, not closes, keeps the ensemble
  level-free like its members (and a sum of weights 1 of identical members is that member exactly).
- volatility: log ranges, so the combined range is a weighted geometric mean (ranges are log-normal-ish
  and a mean of logs is not dragged by one member's spike).
- direction: probabilities `[n, m, 3]`.
- interval: re-centred on the ensemble's return with the members' mean half-width (in log price) times
  a conformal factor fitted on the ensemble's own residuals (`fit_interval_scale`): the members' widths
  say which windows are wilder, the factor makes the ensemble's own coverage right.

Each head names its space (`HeadSpec.space`); `SPACES` says what a space stacks and how its combination
goes back to a forecast. The combined heads (`COMBINED_HEADS`) are the product's heads that have a
combining space — the built-in card, which is what the members' graphs and the composed graph emit.

`stack_forecasts` (numpy, walk-forward form: head → array) and `stack_nodes` (ONNX, the members' card
outputs inside the composed graph) compute the same stacks; `card_from` / `card_nodes` the way back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cse_models.errors import DataError
from cse_models.heads.calibration import conformal_halfwidth
from cse_models.heads.layout import HEADS
from cse_models.heads.registry import HEAD_SPECS
from cse_models.registry import Registry

if TYPE_CHECKING:
    from cse_models.ensembles.graph_builder import GraphBuilder

Forecasts = Mapping[str, np.ndarray]  # head → forecasts, as walk-forward forecasters return them


@dataclass(frozen=True)
class Space:
    """One combining space: the `Stacks` field it fills, a member's forecast `[n, *shape]` into it (with
    the window's last close `[n]`), and a combined value back out."""

    field: str
    into: Callable[[np.ndarray, np.ndarray], np.ndarray]
    back: Callable[[np.ndarray, np.ndarray], np.ndarray]


SPACES: Registry[Space] = Registry("combining space")
SPACES.add("log_return", Space("returns", lambda f, last: np.log(f / last), lambda x, last: last * np.exp(x)))
SPACES.add("log", Space("log_ranges", lambda f, _: np.log(f), lambda x, _: np.exp(x)))
SPACES.add("probabilities", Space("probabilities", lambda f, _: f, lambda x, _: x))
INTERVAL_SPACE = "interval"  # not combined: re-centred on the combined return (`card_from`)

COMBINED_HEADS = tuple(h for h in HEADS if HEAD_SPECS.get(h).space in SPACES)
RETURN_HEAD = next(h for h in COMBINED_HEADS if HEAD_SPECS.get(h).space == "log_return")


def space_of(head: str) -> Space:
    return SPACES.get(HEAD_SPECS.get(head).space)


@dataclass(frozen=True)
class Stacks:
    """Members' forecasts in the combining spaces, members along axis 1."""

    returns: np.ndarray  # [n, m]
    log_ranges: np.ndarray  # [n, m]
    probabilities: np.ndarray  # [n, m, 3]
    halfwidths: np.ndarray  # [n, m] half the log width of each member's interval

    def rows(self, index: np.ndarray | slice) -> Stacks:
        return Stacks(self.returns[index], self.log_ranges[index], self.probabilities[index], self.halfwidths[index])

    def of(self, head: str) -> np.ndarray:
        """The stack a combined head's combiner reads."""
        return getattr(self, space_of(head).field)


def stack_forecasts(forecasts: Mapping[str, Forecasts], members: Sequence[str], last_close: np.ndarray) -> Stacks:
    missing = [name for name in members if name not in forecasts]
    if missing:
        raise DataError(f"ensemble members {missing} have no forecasts; got {sorted(forecasts)}")
    picked = [forecasts[name] for name in members]
    stacked = {
        space_of(h).field: np.stack([space_of(h).into(f[h], last_close) for f in picked], axis=1)
        for h in COMBINED_HEADS
    }
    interval = next(h for h in HEADS if HEAD_SPECS.get(h).space == INTERVAL_SPACE)
    halfwidths = [0.5 * (np.log(f[interval][:, 1]) - np.log(f[interval][:, 0])) for f in picked]
    return Stacks(**stacked, halfwidths=np.stack(halfwidths, axis=1))


def card_from(
    combined: Mapping[str, np.ndarray], stacks: Stacks, interval_scale: float, last_close: np.ndarray
) -> dict[str, np.ndarray]:
    """Combined spaces (combined head → its combiner's output) → head forecasts (walk-forward form), in
    card order; the interval around the combined return."""
    ret = combined[RETURN_HEAD]
    half = interval_scale * stacks.halfwidths.mean(axis=1)
    interval = np.stack([last_close * np.exp(ret - half), last_close * np.exp(ret + half)], axis=1)
    return {
        h: space_of(h).back(combined[h], last_close) if h in combined else interval
        for h in HEADS
        if h in combined or HEAD_SPECS.get(h).space == INTERVAL_SPACE
    }


def fit_interval_scale(ret: np.ndarray, true_return: np.ndarray, stacks: Stacks, level: float) -> float:
    """Split conformal on the ensemble's own residuals: the factor k such that |r − r̂| ≤ k·mean halfwidth
    on a `level` share of the fitting rows (finite-sample quantile, `heads.calibration`)."""
    scores = np.abs(true_return - ret) / np.maximum(stacks.halfwidths.mean(axis=1), 1e-12)
    return conformal_halfwidth(scores, level)


@dataclass(frozen=True)
class StackNames:
    """The ONNX value names of the stacks inside the composed graph."""

    returns: str  # [B, m]
    log_ranges: str  # [B, m]
    probabilities: str  # [B, m, 3]
    mean_halfwidth: str  # [B, 1]


def stack_nodes(g: GraphBuilder, member_outputs: Sequence[Mapping[str, str]], last_close: str) -> StackNames:
    """The same stacks from each member's card outputs (`close`, `lower`, `upper`, `volatility`,
    `probabilities`: value names inside the composed graph). Each output is concatenated across members
    first and transformed once: at batch 1 a node costs more than its arithmetic, so a handful of ops on
    `[B, m]` instead of a handful per member keeps the combiners off the request's latency."""
    one = g.const([1], np.int64, "axis")

    def across(output: str) -> str:
        return g.op("Concat", *(out[output] for out in member_outputs), axis=1)

    widths = g.op("Log", g.op("Div", across("upper"), across("lower")))
    classes = g.const([0, len(member_outputs), -1], np.int64, "shape")  # [B, m·3] → [B, m, 3]
    return StackNames(
        returns=g.op("Log", g.op("Div", across("close"), last_close)),
        log_ranges=g.op("Log", across("volatility")),
        probabilities=g.op("Reshape", across("probabilities"), classes),
        mean_halfwidth=g.op("Mul", g.op("ReduceMean", widths, one, keepdims=1), g.const(0.5, hint="half")),
    )


def card_nodes(
    g: GraphBuilder,
    ret: str,
    log_range: str,
    probabilities: str,
    stacks: StackNames,
    interval_scale: float,
    last_close: str,
    outputs: Mapping[str, str],
) -> None:
    """Combined spaces → the card's graph outputs (`outputs`: card output → graph output name)."""
    half = g.op("Mul", stacks.mean_halfwidth, g.const(interval_scale, hint="interval_scale"))
    g.op("Mul", last_close, g.op("Exp", ret), output=outputs["close"])
    g.identity(ret, outputs["return"])
    g.op("Mul", last_close, g.op("Exp", g.op("Sub", ret, half)), output=outputs["lower"])
    g.op("Mul", last_close, g.op("Exp", g.op("Add", ret, half)), output=outputs["upper"])
    g.op("Exp", log_range, output=outputs["volatility"])
    g.identity(probabilities, outputs["probabilities"])
