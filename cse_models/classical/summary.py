"""The tabular features a tree model reads: a fixed-width summary of each window, in numpy (training) and
as ONNX nodes (the exported graph), side by side so the two stay one recipe.

A tree cannot read a `[seq, f]` window the way a recurrent or convolutional network does; it needs one
row of columns. Per feature of the window, after the graph's own scaling (`x · scale + min`, clipped as
the scaler says, so one flash crash cannot dominate a window's mean):
  last        the window's last row: the current state. The stationary set already carries trailing
              summaries over 24 h and 168 h (realized volatility, mean range, momentum) as features, so
              the last row alone holds most of what the window knows;
  recent      the mean of the last `RECENT_ROWS` rows: the short-term drift the last row is too noisy for;
  mean, std   over the whole window: its level and how unsettled it was, at the network's horizon.
That is 4·f columns (64 for the stationary set), the same for every window length. Trees are invariant to
monotone transforms of a single column, so the scaling matters only through the clip.

Precision: a tree compares each column with a threshold, so a last-bit difference between the summary in
training and in the graph could send a window down another branch. Both sides therefore compute in
float64 and round once to float32 — what scikit-learn and the ONNX tree operators read — so they agree
to the bit except on a rounding tie.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import sliding_windows

RECENT_ROWS = 4
STATISTICS = ("last", f"mean{RECENT_ROWS}", "mean", "std")
SUMMARY_OUTPUT = "summary"


def summary_names(feature_names: tuple[str, ...]) -> tuple[str, ...]:
    """Column names of the summary, in order: `<statistic>:<feature>`."""
    return tuple(f"{stat}:{name}" for stat in STATISTICS for name in feature_names)


def summarise_windows(windows: np.ndarray, scaler: FittedScaler) -> np.ndarray:
    """Raw feature windows `[n, seq, f]` → summaries `[n, 4·f]` float32 (computed in float64)."""
    x = np.asarray(windows, dtype=np.float64) * np.asarray(scaler.scale) + np.asarray(scaler.min)
    if scaler.clip is not None:
        x = np.clip(x, -scaler.clip, scaler.clip)
    recent = min(RECENT_ROWS, x.shape[1])
    stats = [x[:, -1], x[:, -recent:].mean(axis=1), x.mean(axis=1), x.std(axis=1)]
    return np.concatenate(stats, axis=1).astype(np.float32)


def segment_summaries(split: SplitArrays, data_cfg: DataConfig, scaler: FittedScaler) -> np.ndarray:
    """Summaries `[n_windows, 4·f]` of every window of a segment (the windows the targets belong to)."""
    return summarise_windows(sliding_windows(split.raw, data_cfg.seq_len, data_cfg.horizon), scaler)


def summary_graph(scaler: FittedScaler, seq_len: int, opset: int, input_name: str) -> Any:
    """The summary as an ONNX model (`onnx.ModelProto`): `input_name` float `[batch, seq, f]` →
    `summary` float `[batch, 4·f]`, the twin of `summarise_windows` (opset ≥ 18: reductions take axes as
    an input)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f = len(scaler.feature_names)
    recent = min(RECENT_ROWS, seq_len)

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    initializers = [
        const("scale", np.asarray(scaler.scale, np.float64)),
        const("shift", np.asarray(scaler.min, np.float64)),
        const("time_axis", np.asarray([1], np.int64)),
        const("last_row", np.asarray(-1, np.int64)),
        const("recent_start", np.asarray([-recent], np.int64)),
        const("window_end", np.asarray([seq_len], np.int64)),
    ]
    nodes = [
        helper.make_node("Cast", [input_name], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["x64", "scale"], ["scaled_raw"]),
        helper.make_node("Add", ["scaled_raw", "shift"], ["scaled"]),
    ]
    scaled = "scaled"
    if scaler.clip is not None:
        initializers += [const("clip_low", np.float64(-scaler.clip)), const("clip_high", np.float64(scaler.clip))]
        nodes.append(helper.make_node("Clip", ["scaled", "clip_low", "clip_high"], ["clipped"]))
        scaled = "clipped"
    nodes += [
        helper.make_node("Gather", [scaled, "last_row"], ["last"], axis=1),
        helper.make_node("Slice", [scaled, "recent_start", "window_end", "time_axis"], ["recent_rows"]),
        helper.make_node("ReduceMean", ["recent_rows", "time_axis"], ["recent"], keepdims=0),
        helper.make_node("ReduceMean", [scaled, "time_axis"], ["mean_kept"], keepdims=1),
        helper.make_node("Squeeze", ["mean_kept", "time_axis"], ["mean"]),
        helper.make_node("Sub", [scaled, "mean_kept"], ["centred"]),
        helper.make_node("Mul", ["centred", "centred"], ["squared"]),
        helper.make_node("ReduceMean", ["squared", "time_axis"], ["variance"], keepdims=0),
        helper.make_node("Sqrt", ["variance"], ["std"]),
        helper.make_node("Concat", ["last", "recent", "mean", "std"], ["summary64"], axis=1),
        helper.make_node("Cast", ["summary64"], [SUMMARY_OUTPUT], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "window_summary",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", seq_len, f])],
        [helper.make_tensor_value_info(SUMMARY_OUTPUT, TensorProto.FLOAT, ["batch", len(STATISTICS) * f])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
