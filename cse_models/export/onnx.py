"""Export a trained model to ONNX as serving runs it: raw features in, price (or probabilities) out.

The feature scaler is folded into the graph (`x * scale + min` before the model, the inverse on the
predicted close after it), so serving computes the feature set and makes one onnxruntime call —
there is no second copy of the scaling to drift. The exported function and the JAX reference used by
the parity check are the same Python function (`serving_function`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from flax import nnx
from jax2onnx import to_onnx

from cse_models.errors import ExportParityError
from cse_models.export import rnn_onnx  # noqa: F401  (registers the native LSTM/GRU plugins)
from cse_models.features.scaling import FittedScaler

INPUT_NAME = "features"
OUTPUT_NAMES = {"regression": "close", "classification": "probabilities"}
RTOL, ATOL = 1e-3, 1e-5


def serving_function(model: nnx.Module, scaler: FittedScaler, task: str) -> Callable[[jax.Array], jax.Array]:
    """raw features [batch, seq, f] → close price [batch, 1] (regression) or probabilities [batch, k]."""
    scale = jnp.asarray(scaler.scale, jnp.float32)
    shift = jnp.asarray(scaler.min, jnp.float32)
    target = scaler.feature_names.index("close")

    def run(features: jax.Array) -> jax.Array:
        out = model(features * scale + shift)
        if task == "classification":
            return jax.nn.softmax(out, axis=-1)
        return (out[:, :1] - shift[target]) / scale[target]

    return run


def export_onnx(model: nnx.Module, scaler: FittedScaler, task: str, seq_len: int, path: str | Path) -> Path:
    """Write `path` with a dynamic batch axis; checks the graph with onnx.checker."""
    model.eval()
    jax.clear_caches()  # a trace cached before the plugin patch would export the slow Loop
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fn = serving_function(model, scaler, task)
    to_onnx(
        lambda x: fn(x),
        [("batch", seq_len, len(scaler.feature_names))],
        model_name="cse_model",
        return_mode="file",
        output_path=str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAMES[task]],
    )
    onnx.checker.check_model(str(path))
    return path


def op_types(path: str | Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@dataclass(frozen=True)
class ParityReport:
    batches: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    rtol: float
    atol: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def check_parity(
    model: nnx.Module,
    scaler: FittedScaler,
    task: str,
    path: str | Path,
    windows: np.ndarray,
    *,
    batches: tuple[int, ...] = (1, 7),
    rtol: float = RTOL,
    atol: float = ATOL,
) -> ParityReport:
    """Compare onnxruntime with JAX on raw-feature windows `[n, seq, f]` at each batch size.

    Raises ExportParityError when any output differs beyond `atol + rtol·|jax|`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fn = serving_function(model, scaler, task)
    max_abs = max_rel = 0.0
    for batch in batches:
        if windows.shape[0] < batch:
            raise ExportParityError(f"parity needs ≥ {batch} windows, got {windows.shape[0]}")
        x = np.ascontiguousarray(windows[:batch], dtype=np.float32)
        expected = np.asarray(fn(jnp.asarray(x)))
        (got,) = session.run(None, {INPUT_NAME: x})
        diff = np.abs(got - expected)
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float((diff / np.maximum(np.abs(expected), 1e-12)).max()))
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            raise ExportParityError(
                f"ONNX and JAX differ at batch {batch}: max abs {diff.max():.3g} (rtol {rtol}, atol {atol})"
            )
    return ParityReport(tuple(batches), max_abs, max_rel, rtol, atol)


@dataclass(frozen=True)
class ExportedModel:
    """An exported, parity-checked ONNX file (the `onnx_<name>` asset's value)."""

    path: str
    model_name: str
    task: str
    seq_len: int
    op_types: list[str]
    parity: dict

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ExportedModel:
        return cls(**json.loads(text))


def export_trained(
    model: nnx.Module,
    model_name: str,
    scaler: FittedScaler,
    task: str,
    seq_len: int,
    path: str | Path,
    parity_windows: np.ndarray,
) -> ExportedModel:
    """Export, then prove parity on held-back raw windows; raises ExportParityError on disagreement."""
    path = export_onnx(model, scaler, task, seq_len, path)
    report = check_parity(model, scaler, task, path, parity_windows)
    return ExportedModel(str(path), model_name, task, seq_len, sorted(op_types(path)), report.as_dict())
