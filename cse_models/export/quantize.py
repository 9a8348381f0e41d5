"""The int8 variant of an exported graph: dynamic quantization, its parity against fp32 and its skill.

`onnxruntime.quantization.quantize_dynamic` stores weights as int8 and quantizes activations to uint8 at
run time, per tensor, from each call's own min/max — no calibration set, so it applies to every graph we
export. The choices below were measured on the bundled BTCUSDT 1h sample (seq 24; lstm_regressor 2 × 128
and 2 × 64 / 2 × 256, random init and trained 3 epochs; financial_gru, financial_cnn1d, the transformers;
1-thread sessions, an AVX512-VNNI Xeon, 2 shared vCPUs; figures in benchmarks/README.md, bench_onnx):

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
- **full 8-bit range** (`reduce_range=False`): 7-bit weights exist for CPUs without VNNI, whose u8×s8
  multiply-add can saturate; on VNNI they only doubled the delta (1.0e-3 → 2.1e-3 at 2 × 256).

Because activations are quantized from each call's own range, an int8 graph's answer for a window depends
on what else is in the batch. Parity is therefore measured at batch 1 (each window alone, as a single
request runs) and at the whole held-back batch, and the worse of the two is reported.

The refusal rule: the price head's ("close") relative difference, and the direction head's absolute
probability difference, must stay within `Int8Tolerance`; otherwise `QuantizationError`, before anything
is published. Skill is scored on every window of the held-back test segment, fp32 and int8 on the same
points, with the leaderboard's scoring (`evaluation.segment.score_segment`).

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
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import n_windows
from cse_models.heads.layout import INPUT_NAME, OUTPUT_NAMES, input_names, outputs_by_head

log = logging.getLogger(__name__)

INT8_FILE = "model.int8.onnx"
VARIANT = "int8"
RECURRENT_OP_TYPES = ("LSTM",)
DENSE_OP_TYPES = ("MatMul",)
INT8_KERNELS = frozenset({"DynamicQuantizeLSTM", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"})
PRICE_OUTPUT = "close"
DIRECTION_OUTPUT = "probabilities"


@dataclass(frozen=True)
class Int8Tolerance:
    """What an int8 variant may differ from fp32 on held-back inputs. `price_max_rel`: max |Δclose| / |close|
    (the issue's goal, 1e-3); `probabilities_max_abs`: max |Δp| of any class probability."""

    price_max_rel: float = 1e-3
    probabilities_max_abs: float = 0.02

    def exceeded(self, parity: dict[str, dict[str, float]]) -> list[str]:
        """One sentence per limit the parity report breaks (empty: within tolerance)."""
        broken = []
        if PRICE_OUTPUT in parity and not parity[PRICE_OUTPUT]["max_rel"] <= self.price_max_rel:
            broken.append(
                f"price ({PRICE_OUTPUT!r}) max rel {parity[PRICE_OUTPUT]['max_rel']:.3g} > {self.price_max_rel}"
            )
        if DIRECTION_OUTPUT in parity and not parity[DIRECTION_OUTPUT]["max_abs"] <= self.probabilities_max_abs:
            broken.append(
                f"direction ({DIRECTION_OUTPUT!r}) max abs {parity[DIRECTION_OUTPUT]['max_abs']:.3g} "
                f"> {self.probabilities_max_abs}"
            )
        return broken


def quantize_graph(
    onnx_path: str | Path,
    out_path: str | Path,
    *,
    op_types: Sequence[str] | None = None,
    per_channel: bool = False,
    reduce_range: bool = False,
) -> Path:
    """Write the dynamically quantized int8 copy of `onnx_path` (of its `op_types`, default
    `op_types_for`) to `out_path`; QuantizationError when the result holds no int8 kernel (nothing to
    quantize: the copy would only be slower), and then no file is left."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    op_types = tuple(op_types or op_types_for(onnx_path))
    quantize_dynamic(
        _one_opset_per_domain(onnx.load(str(onnx_path))),
        out_path,
        op_types_to_quantize=list(op_types),
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
    )
    if not int8_kernels(out_path):
        out_path.unlink(missing_ok=True)
        raise QuantizationError(f"{onnx_path}: no {list(op_types)} node to quantize; no int8 variant written")
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


def cpu_session(path: str | Path):
    """One-thread CPU session with full graph optimization: what serving runs (cse_serving.engine)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _run(session, names: Sequence[str], inputs: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
    """Every output over all rows of `inputs`, `batch` windows per call, concatenated."""
    count = inputs[INPUT_NAME].shape[0]
    chunks = [
        session.run(list(names), {k: np.ascontiguousarray(v[i : i + batch]) for k, v in inputs.items()})
        for i in range(0, count, batch)
    ]
    return [np.concatenate([chunk[j] for chunk in chunks]) for j in range(len(names))]


def parity(
    fp32, int8, names: Sequence[str], inputs: dict[str, np.ndarray], batches: Sequence[int] | None = None
) -> dict[str, dict[str, float]]:
    """Per output: max |int8 − fp32| and max |int8 − fp32| / |fp32| over `inputs`, each window alone
    (batch 1) and all at once (dynamic quantization depends on the batch), the worse of the two."""
    count = inputs[INPUT_NAME].shape[0]
    report = {name: {"max_abs": 0.0, "max_rel": 0.0} for name in names}
    for batch in batches or (1, count):
        want = _run(fp32, names, inputs, batch)
        have = _run(int8, names, inputs, batch)
        for name, a, b in zip(names, want, have, strict=True):
            diff = np.abs(b.astype(np.float64) - a)
            rel = diff / np.maximum(np.abs(a), 1e-12)
            report[name]["max_abs"] = max(report[name]["max_abs"], float(diff.max()))
            report[name]["max_rel"] = max(report[name]["max_rel"], float(rel.max()))
    return report


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
    from cse_models.scoring.rules import SCORING
    from cse_models.scoring.segment import score_segment

    count = n_windows(test_split.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    inputs = graph_inputs(test_split, data_cfg, limit=count)
    names = OUTPUT_NAMES[data_cfg.task]
    out: dict[str, Any] = {"segment": "test", "points": count, "batch": batch}
    for label, session in sessions.items():
        heads = outputs_by_head(data_cfg.task, _run(session, names, inputs, batch))
        out[label] = score_segment(heads, train_split, test_split, data_cfg, scaler)["skill"]
    out["metric"] = {head: SCORING[head].skill_metric for head in out[next(iter(sessions))]}
    return out


@dataclass(frozen=True)
class Int8Settings:
    """How the variant was made (recorded in the manifest entry)."""

    op_types: tuple[str, ...] | None = None
    """None: `op_types_for` the graph."""
    per_channel: bool = False
    reduce_range: bool = False


def int8_variant(
    onnx_path: str | Path,
    out_path: str | Path,
    *,
    inputs: dict[str, np.ndarray],
    test_split: SplitArrays,
    train_split: SplitArrays,
    data_cfg: DataConfig,
    scaler: FittedScaler,
    tolerance: Int8Tolerance = Int8Tolerance(),
    settings: Int8Settings = Int8Settings(),
) -> dict[str, Any]:
    """Quantize `onnx_path` into `out_path`, prove it against fp32, score both → the manifest's
    `variants["int8"]` entry:

        {"file": "model.int8.onnx", "quantization": {op_types, per_channel, ..., "kernels": {op: n}},
         "parity": {"windows": n, "batches": [1, n], "outputs": {output: {"max_abs", "max_rel"}}},
         "skill": {"segment": "test", "points": n, "batch": 1, "fp32": {head: skill},
                   "int8": {head: skill}, "metric": {head: metric}},
         "tolerance": {"price_max_rel": 1e-3, "probabilities_max_abs": 0.02}}

    `inputs` are held-back graph inputs (`heldout.graph_inputs(test, data_cfg)`). Raises
    QuantizationError when nothing quantizes or the parity breaks `tolerance` (`out_path` is removed)."""
    out_path = Path(out_path)
    op_types = settings.op_types or op_types_for(onnx_path)
    quantize_graph(
        onnx_path,
        out_path,
        op_types=op_types,
        per_channel=settings.per_channel,
        reduce_range=settings.reduce_range,
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
    log.info("int8 variant of %s: kernels %s, parity %s", onnx_path, kernels, deltas)
    return {
        "file": INT8_FILE,
        "quantization": {
            "method": "onnxruntime dynamic",
            "weights": "int8",
            "activations": "uint8, per tensor, from each call's range",
            **asdict(settings),
            "op_types": list(op_types),
            "kernels": kernels,
        },
        "parity": {"windows": count, "batches": [1, count], "outputs": deltas},
        "skill": skill,
        "tolerance": asdict(tolerance),
    }
