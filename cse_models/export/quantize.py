"""The int8 variant of an exported graph: dynamic quantization, its parity against fp32 and its skill.

`onnxruntime.quantization.quantize_dynamic` stores weights as int8 and quantizes activations to uint8 at
run time, per tensor, from each call's own min/max — no calibration set, so it applies to every graph we
export. The choices below were measured on the bundled BTCUSDT 1h sample (seq 24; lstm_regressor 2 × 128
and 2 × 64 / 2 × 256, random init and trained 3 epochs; financial_gru, financial_cnn1d, the transformers;
1-thread sessions, an AVX512-VNNI Xeon, 2 shared vCPUs; figures in benchmarks/README.md, bench_onnx):

- **7-bit int8 weights** (`QuantType.QInt8` with `REDUCE_RANGE`; issue 21). The int8 × uint8
  ("U8S8") kernels of x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply with `VPMADDUBSW`, which
  adds two u8 × s8 products into a saturating int16: with full-range weights the sum reaches
  2 · 255 · 127 = 64,770 and is clamped to 32,767. onnxruntime documents it ("When and why do I need to try
  U8U8?", onnxruntime.ai/docs/performance/model-optimizations/quantization.html: "this instruction might
  suffer from saturation issues … you can either try reduce_range or the U8U8 format"; "Reduce-range will
  quantize the weights to 7-bits. It is designed for the U8S8 format on AVX2 and AVX512 (non-VNNI)
  machines to mitigate saturation issues"; ORT 1.32's `quantize_static` docstring: on "x86/x64 CPU
  without VNNI … set reduce_range=True"). With weights in [-64, 64] the pair sum stays within
  2 · 255 · 64 = 32,640 — no saturation on any CPU, which `saturating_weights` checks on every written
  graph. Measured by the issue on a 2-core AMD EPYC without VNNI (ORT 1.32, a 4 × 3 MatMul): full-range
  int8 erred by 1.33, 7-bit int8 by 0.012, uint8 weights by 0.005. Why not uint8 weights ("U8U8"), which
  cannot saturate either: the quantizer writes an LSTM's W and R as int8 whatever `weight_type` says
  (`operators/lstm.py`), so U8U8 would leave `DynamicQuantizeLSTM` unprotected; and on this VNNI machine
  U8U8 keeps little of the transformers' speed-up. Measured here (AMD EPYC with AVX512-VNNI, ORT 1.32,
  1 thread, batch 1, p50, DataConfig() seq 24, random init, the best of 11 interleaved rounds on
  2 shared cores): lstm_regressor 2 × 128 fp32 217 µs, full-range int8 127 µs (1.70×), 7-bit 129 µs
  (1.68×), uint8 weights 127 µs (1.70×); transformer_encoder fp32 3,163 µs, full-range 1,422 µs (2.23×),
  7-bit 1,607 µs (1.97×), uint8 weights 2,034 µs (1.56×). Parity on the test segment's windows, 7-bit
  against full range (random init): LSTM price 4.0e-5 against 2.0e-5 relative, probabilities 2.6e-3
  against 1.6e-3; transformer price 1.05e-4 against 1.07e-4, probabilities 1.4e-2 against 7.5e-3
  (tolerance 2e-2). The LSTM trained 3 epochs: forecast task price 2.4e-5 against 1.2e-5, probabilities
  2.5e-3 against 3.1e-3; the seeds' regression task (mur9, the graph outputs the price level itself)
  2.8e-3 against 8.4e-4 — beyond the 1e-3 tolerance, so that variant is left out at publication (fp32 is
  published; an int8 that errs on some CPUs is worse than none). The
  kernels stay: `DynamicQuantizeLSTM` for the LSTMs; `MatMulInteger`, which onnxruntime's optimizer fuses
  into `DynamicQuantizeMatMul` / `MatMulIntegerToFloat`, for the MatMuls.
- **op types by graph** (`op_types_for`): `LSTM` where the graph has one, else `MatMul`.
  ORT has a dynamic int8 kernel for `LSTM` (`com.microsoft.DynamicQuantizeLSTM`: W and R int8, x and h
  quantized each step): 2.0–2.2× at batch 1 for 2 × 128, 2.9–3.1× for 2 × 256, 1.5× for 2 × 64. Quantizing the
  recurrent graphs' Dense head as well (`MatMul`: the quantizer turns `Gemm` with constant weights into
  `MatMul` → `MatMulInteger`) bought no speed and doubled the price delta of a trained 2 × 128
  regressor (8.4e-4 → 1.7e-3 relative; the head's output *is* the price). Graphs without an LSTM get
  `MatMul`: 2.2–3.6× for the transformers at batch 1; ~1.0× for the CNNs (their Dense layers are small)
  and for `GRU` graphs (ORT has no int8 GRU kernel: the recurrence stays fp32). `Conv` is never
  quantized: `ConvInteger` ran the CNNs 2× *slower*.
- **per-tensor weights** (`per_channel=False`): per-channel cost 10–15 % at batch 1 on the LSTM and did
  not lower the price delta at 2 × 64 / 2 × 128 (it did at 2 × 256: 8.4e-4 against 1.1e-3 relative).
  The activations' per-tensor uint8 step dominates the error, not the weights'.

Because activations are quantized from each call's own range, an int8 graph's answer for a window depends
on what else is in the batch. Parity is therefore measured at batch 1 (each window alone, as a single
request runs) and at the whole held-back batch, and the worse of the two is reported (`int8_parity`).

The refusal rule: the price head's ("close") relative difference, and the direction head's absolute
probability difference, must stay within `Int8Tolerance`; otherwise `QuantizationError`, before anything
is published. Skill is scored on every window of the held-back test segment, fp32 and int8 on the same
points, with the leaderboard's scoring (`scoring.segment.score_segment`). Since integer kernels differ
by CPU, the variant ships with `PROBE_FILE` (held-back windows) and its tolerance, and serving repeats the
parity check on its own CPU at load (`cse_serving.variant_check`).

No JAX here: the publisher may call this on an exported file alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import QuantizationError
from cse_models.export.int8_parity import (
    PROBE_FILE,
    TOLERANCE,
    Int8Tolerance,
    parity,
    run_in_batches,
    write_probe,
)
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import n_windows
from cse_models.heads.layout import INPUT_NAME, OUTPUT_NAMES, input_names, outputs_by_head
from cse_models.scoring.rules import SCORING
from cse_models.scoring.segment import score_segment

log = logging.getLogger(__name__)

INT8_FILE = "model.int8.onnx"
VARIANT = "int8"
RECURRENT_OP_TYPES = ("LSTM",)
DENSE_OP_TYPES = ("MatMul",)
INT8_KERNELS = frozenset({"DynamicQuantizeLSTM", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"})
SATURATION_FREE_MAX = 64
"""The largest |int8 weight| whose u8 × s8 pair sum fits VPMADDUBSW's int16: 2 · 255 · 64 = 32,640."""


REDUCE_RANGE = True
"""7-bit int8 weights (the module docstring): no u8×s8 saturation on x86 CPUs without VNNI."""


def quantize_graph(
    onnx_path: str | Path,
    out_path: str | Path,
    *,
    op_types: Sequence[str] | None = None,
    per_channel: bool = False,
) -> Path:
    """Write the dynamically quantized int8 copy of `onnx_path` (of its `op_types`, default
    `op_types_for`; 7-bit int8 weights, `REDUCE_RANGE`) to `out_path`. QuantizationError when the result holds
    no int8 kernel (nothing to quantize: the copy would only be slower) or a weight that can saturate a
    u8×s8 multiply-add (`saturating_weights`), and then no file is left."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    op_types = tuple(op_types or op_types_for(onnx_path))
    quantize_dynamic(
        _one_opset_per_domain(onnx.load(str(onnx_path))),
        out_path,
        op_types_to_quantize=list(op_types),
        per_channel=per_channel,
        reduce_range=REDUCE_RANGE,
        weight_type=QuantType.QInt8,
    )
    if not int8_kernels(out_path):
        out_path.unlink(missing_ok=True)
        raise QuantizationError(f"{onnx_path}: no {list(op_types)} node to quantize; no int8 variant written")
    saturating = saturating_weights(out_path)
    if saturating:
        out_path.unlink(missing_ok=True)
        raise QuantizationError(
            f"{onnx_path}: int8 weights beyond ±{SATURATION_FREE_MAX} (max |q| by weight: {saturating}) can "
            "saturate u8×s8 multiply-adds on x86 without VNNI; no int8 variant written"
        )
    return out_path


def _one_opset_per_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    """The quantizer refuses a graph that imports a domain twice, as skl2onnx can write it (its classical
    members): keep the highest version of each."""
    highest: dict[str, int] = {}
    for opset in model.opset_import:
        domain = "" if opset.domain == "ai.onnx" else opset.domain  # two names of the default domain
        highest[domain] = max(highest.get(domain, 0), opset.version)
    if len(highest) < len(model.opset_import):
        del model.opset_import[:]
        model.opset_import.extend(onnx.helper.make_opsetid(domain, v) for domain, v in highest.items())
    return model


def op_types_for(path: str | Path) -> tuple[str, ...]:
    """What to quantize in a graph: its LSTMs when it has any (the Dense head stays fp32: no speed to gain
    there, and its error lands on the price directly), else its MatMuls (Dense and attention layers)."""
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    if "LSTM" in ops:
        return RECURRENT_OP_TYPES
    if "GRU" in ops:
        log.warning("%s: onnxruntime has no int8 GRU kernel; only its Dense layers are quantized (no speed-up)", path)
    return DENSE_OP_TYPES


def int8_kernels(path: str | Path) -> dict[str, int]:
    """Int8 kernel op type → node count in a graph (`DynamicQuantizeLSTM`, `MatMulInteger`, ...)."""
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        if node.op_type in INT8_KERNELS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


WEIGHT_INPUTS = {
    "MatMulInteger": (1,),
    "ConvInteger": (1,),
    "DynamicQuantizeMatMul": (1,),
    "DynamicQuantizeLSTM": (1, 2),
}
"""Int8 kernel → the positions of its weight inputs (LSTM: W and R)."""


def saturating_weights(path: str | Path) -> dict[str, int]:
    """Int8 weight initializer → max |q| for each weight of an int8 kernel beyond `SATURATION_FREE_MAX`
    (empty: no u8×s8 pair sum can leave int16 on any CPU). uint8 weights run u8×u8 kernels, which do not
    saturate, and are not listed."""
    graph = onnx.load(str(path)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    found: dict[str, int] = {}
    for node in graph.node:
        for position in WEIGHT_INPUTS.get(node.op_type, ()):
            tensor = initializers.get(node.input[position]) if position < len(node.input) else None
            if tensor is None or tensor.data_type != onnx.TensorProto.INT8:
                continue
            largest = int(np.abs(onnx.numpy_helper.to_array(tensor).astype(np.int16)).max(initial=0))
            if largest > SATURATION_FREE_MAX:
                found[tensor.name] = largest
    return found


def cpu_session(path: str | Path):
    """One-thread CPU session with full graph optimization: what serving runs (cse_serving.loading)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def segment_skill(
    sessions: dict[str, Any],
    test_split: SplitArrays,
    train_split: SplitArrays,
    data_cfg: DataConfig,
    scaler: FittedScaler,
    *,
    batch: int = 1,
) -> dict[str, Any]:
    """Each session's per-head skill on every window of the test segment, scored like the leaderboard
    (`score_segment`: the head's skill metric against its reference baseline on the same points)."""
    count = n_windows(test_split.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    inputs = graph_inputs(test_split, data_cfg, limit=count)
    names = OUTPUT_NAMES[data_cfg.task]
    out: dict[str, Any] = {"segment": "test", "points": count, "batch": batch}
    for label, session in sessions.items():
        heads = outputs_by_head(data_cfg.task, run_in_batches(session, names, inputs, batch))
        out[label] = score_segment(heads, train_split, test_split, data_cfg, scaler)["skill"]
    out["metric"] = {head: SCORING[head].skill_metric for head in out[next(iter(sessions))]}
    return out


@dataclass(frozen=True)
class Int8Settings:
    """How the variant was made (recorded in the manifest entry)."""

    op_types: tuple[str, ...] | None = None
    """None: `op_types_for` the graph."""
    per_channel: bool = False


def int8_variant(
    onnx_path: str | Path,
    out_path: str | Path,
    *,
    inputs: dict[str, np.ndarray],
    test_split: SplitArrays,
    train_split: SplitArrays,
    data_cfg: DataConfig,
    scaler: FittedScaler,
    tolerance: Int8Tolerance = TOLERANCE,
    settings: Int8Settings = Int8Settings(),
) -> dict[str, Any]:
    """Quantize `onnx_path` into `out_path`, prove it against fp32, score both → the manifest's
    `variants["int8"]` entry:

        {"file": "model.int8.onnx", "quantization": {op_types, per_channel, ..., "kernels": {op: n}},
         "parity": {"windows": n, "batches": [1, n], "outputs": {output: {"max_abs", "max_rel"}}},
         "skill": {"segment": "test", "points": n, "batch": 1, "fp32": {head: skill},
                   "int8": {head: skill}, "metric": {head: metric}},
         "tolerance": {"price_max_rel": 1e-3, "probabilities_max_abs": 0.02},
         "probe": {"file": "model.int8.probe.npz", "windows": m}}

    `inputs` are held-back graph inputs (`graph_inputs(test, data_cfg)`); `PROBE_WINDOWS` of them are
    written to `PROBE_FILE` beside `out_path`, for serving to repeat the parity check on its own CPU
    (`cse_serving.variant_check`). Raises QuantizationError when nothing quantizes or the parity breaks
    `tolerance` (`out_path` is removed, no probe is written)."""
    out_path = Path(out_path)
    op_types = settings.op_types or op_types_for(onnx_path)
    quantize_graph(
        onnx_path,
        out_path,
        op_types=op_types,
        per_channel=settings.per_channel,
    )
    fp32, int8 = cpu_session(onnx_path), cpu_session(out_path)
    names = OUTPUT_NAMES[data_cfg.task]
    feeds = {name: np.asarray(inputs[name], dtype=np.float32) for name in input_names(data_cfg.task)}
    count = feeds[INPUT_NAME].shape[0]
    deltas = parity(fp32, int8, names, feeds)
    broken = tolerance.exceeded(deltas)
    if broken:
        out_path.unlink(missing_ok=True)
        raise QuantizationError(
            f"{onnx_path}: the int8 variant differs from fp32 beyond tolerance: {'; '.join(broken)}"
        )
    skill = segment_skill({"fp32": fp32, "int8": int8}, test_split, train_split, data_cfg, scaler)
    kernels = int8_kernels(out_path)
    probe_windows = write_probe(out_path.with_name(PROBE_FILE), feeds)
    log.info("int8 variant of %s: kernels %s, parity %s", onnx_path, kernels, deltas)
    return {
        "file": INT8_FILE,
        "quantization": {
            "method": "onnxruntime dynamic",
            "weights": "int8, 7-bit (reduce_range)" if REDUCE_RANGE else "int8",
            "activations": "uint8, per tensor, from each call's range",
            **asdict(settings),
            "reduce_range": REDUCE_RANGE,
            "op_types": list(op_types),
            "kernels": kernels,
        },
        "parity": {"windows": count, "batches": [1, count], "outputs": deltas},
        "skill": skill,
        "tolerance": asdict(tolerance),
        "probe": {"file": PROBE_FILE, "windows": probe_windows},
    }
