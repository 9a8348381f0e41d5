"""Export a trained model to ONNX as serving runs it: raw features in, the forecast card (or the seeds'
price / probabilities) out.

The feature scaler is folded into the graph (`x * scale + min` before the model, the inverse on the
predicted close after it), so serving computes the feature set and makes one onnxruntime call —
there is no second copy of the scaling to drift. The exported function and the JAX reference used by
the parity check are the same Python function (`serving_function`).

The intermediate shapes a graph declares (`graph.value_info`) are re-derived by ONNX shape inference
after jax2onnx writes the file (`redeclare_intermediate_shapes`), and the graph is then checked with
`full_check`, which fails on any declared shape that disagrees with the ops.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from flax import nnx
from jax2onnx import to_onnx

from cse_models.config import DataConfig
from cse_models.export import rnn_onnx  # noqa: F401  (registers the native LSTM/GRU plugins)
from cse_models.export.exported import ExportedModel
from cse_models.export.parity import ATOL, RTOL, ParityCheck, ParityReport, require_windows
from cse_models.features.scaling import FittedScaler
from cse_models.heads.calibration import HeadCalibration
from cse_models.heads.graph import serving_function
from cse_models.heads.layout import INPUT_NAME, OUTPUT_NAMES, input_names


def export_onnx(
    model: nnx.Module,
    scaler: FittedScaler,
    data_cfg: DataConfig,
    path: str | Path,
    calibration: HeadCalibration | None = None,
) -> Path:
    """Write `path` with a dynamic batch axis; checks the graph with onnx.checker."""
    model.eval()
    jax.clear_caches()  # a trace cached before the plugin patch would export the slow Loop
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fn = serving_function(model, scaler, data_cfg, calibration)
    shapes = [("batch", data_cfg.seq_len, len(scaler.feature_names)), ("batch", 1)]
    names = input_names(data_cfg.task)
    to_onnx(
        lambda *inputs: fn(*inputs),
        shapes[: len(names)],
        model_name="cse_model",
        return_mode="file",
        output_path=str(path),
        input_names=list(names),
        output_names=list(OUTPUT_NAMES[data_cfg.task]),
    )
    redeclare_intermediate_shapes(path)
    onnx.checker.check_model(str(path), full_check=True)
    return path


def redeclare_intermediate_shapes(path: Path) -> None:
    """Replace the intermediate shapes jax2onnx declared with the ones ONNX shape inference derives.

    Why: jax2onnx 0.17.1 lowers a Flax conv (channels-last `[b, t, c]`) to ONNX Conv (channels-first
    `[b, c, t]`) between two Transposes, then folds each inverse pair around an elementwise chain
    (`remove_redundant_transpose_pairs_ir`, its single-consumer case) without updating the chain's
    declared shapes. In `residual_cnn1d`, BatchNorm → Relu → Conv inside each residual block leaves the
    Relu computing `[b, c, t]` while declaring `[b, t, c]`, and onnxruntime warns at load ("Error merging
    shape info for output 'relu_out_5' source:{-1,128,24} target:{-1,24,128}") before falling back to
    its own inference. The numbers were right; the declaration was wrong. The model code is right too
    (channels-last is Flax's layout), so the repair belongs here: `value_info` is only a declaration, so
    dropping it and letting ONNX shape inference (the same op semantics onnxruntime applies) declare every
    node output again gives a graph whose declared shapes are the computed ones, for any architecture and
    any future folding of the exporter. Only the initializers' redundant entries are not declared again
    (an initializer carries its own shape)."""
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(model, strict_mode=True), str(path))


def op_types(path: str | Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def check_parity(
    model: nnx.Module,
    scaler: FittedScaler,
    data_cfg: DataConfig,
    path: str | Path,
    inputs: dict[str, np.ndarray],
    calibration: HeadCalibration | None = None,
    *,
    batches: tuple[int, ...] = (1, 7),
    rtol: float = RTOL,
    atol: float = ATOL,
) -> ParityReport:
    """Compare onnxruntime with JAX on held-back graph inputs (`datasets.graph_inputs.graph_inputs`) at each batch size,
    every output. Raises ExportParityError when any output differs beyond `atol + rtol·|jax|`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fn = serving_function(model, scaler, data_cfg, calibration)
    names = input_names(data_cfg.task)
    check = ParityCheck("ONNX and JAX", rtol, atol)
    for batch in batches:
        require_windows(inputs[INPUT_NAME].shape[0], batch)
        feed = {name: np.ascontiguousarray(inputs[name][:batch], dtype=np.float32) for name in names}
        expected = [np.asarray(v) for v in fn(*(jnp.asarray(feed[name]) for name in names))]
        got = session.run(list(OUTPUT_NAMES[data_cfg.task]), feed)
        for name, want, have in zip(OUTPUT_NAMES[data_cfg.task], expected, got, strict=True):
            check.compare(name, have, want, batch)
    return check.report()


def export_trained(
    model: nnx.Module,
    model_name: str,
    scaler: FittedScaler,
    data_cfg: DataConfig,
    path: str | Path,
    parity_inputs: dict[str, np.ndarray],
    calibration: HeadCalibration | None = None,
) -> ExportedModel:
    """Export, then prove parity on held-back raw inputs; raises ExportParityError on disagreement."""
    path = export_onnx(model, scaler, data_cfg, path, calibration)
    report = check_parity(model, scaler, data_cfg, path, parity_inputs, calibration)
    return ExportedModel(
        str(path), model_name, data_cfg.task, data_cfg.seq_len, sorted(op_types(path)), report.as_dict()
    )
