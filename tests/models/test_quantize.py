"""The int8 variant of an exported forecast LSTM: int8 kernels in the graph, parity within the stated
tolerance, refusal beyond it, and skill scored like training scores it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from flax import nnx
from onnx import TensorProto, helper, numpy_helper

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.errors import QuantizationError
from cse_models.export.int8_parity import PROBE_FILE, PROBE_WINDOWS, parity, read_probe
from cse_models.export.onnx import export_onnx
from cse_models.export.quantize import (
    INT8_FILE,
    SATURATION_FREE_MAX,
    Int8Settings,
    Int8Tolerance,
    cpu_session,
    int8_variant,
    quantize_graph,
    saturating_weights,
)
from cse_models.features.windows import n_windows
from cse_models.heads import HEADS, HeadCalibration
from cse_models.heads.layout import FORECAST_OUTPUTS, OUTPUT_NAMES, input_names
from cse_models.models import build_model
from cse_models.scoring.segment import score_segment
from cse_models.training.calibrate import predict_heads
from cse_models.training.run import model_config_for

# λ 0.5, not 0: with λ = 0 the price head is persistence and its delta would be 0 by construction.
CALIBRATION = HeadCalibration(shrink=0.5)


@pytest.fixture(scope="module")
def forecast_lstm(tmp_path_factory):
    """An untrained demo-size forecast LSTM (stationary features, seq 12) exported with its calibration."""
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    data_cfg = DataConfig(seq_len=12)
    features = compute_features(klines.tail(1500), data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    datasets = build_datasets(features, scaler, data_cfg)
    cfg = model_config_for("lstm_regressor", data_cfg, len(scaler.feature_names), "demo")
    model = build_model("lstm_regressor", cfg, rngs=nnx.Rngs(0))
    path = export_onnx(model, scaler, data_cfg, tmp_path_factory.mktemp("int8") / "model.onnx", CALIBRATION)
    return model, path, data_cfg, scaler, datasets


def _variant(forecast_lstm, out_path, **kwargs) -> dict:
    _, path, data_cfg, scaler, datasets = forecast_lstm
    return int8_variant(
        path,
        out_path,
        inputs=graph_inputs(datasets["test"], data_cfg),
        test_split=datasets["test"],
        train_split=datasets["train"],
        data_cfg=data_cfg,
        scaler=scaler,
        **kwargs,
    )


@pytest.fixture(scope="module")
def entry(forecast_lstm, tmp_path_factory) -> tuple[dict, object]:
    out = tmp_path_factory.mktemp("int8_out") / INT8_FILE
    return _variant(forecast_lstm, out), out


def test_the_lstm_runs_on_ort_dynamic_int8_kernel(entry):
    variant, out = entry
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    # both layers of the demo LSTM; the Dense head stays fp32 (its error would land on the price directly)
    assert variant["quantization"]["kernels"] == {"DynamicQuantizeLSTM": 2}
    assert variant["file"] == INT8_FILE


def test_int8_parity_is_within_the_stated_tolerance(entry):
    variant, _ = entry
    outputs = variant["parity"]["outputs"]
    assert set(outputs) == set(FORECAST_OUTPUTS)
    assert variant["tolerance"] == {"price_max_rel": 1e-3, "probabilities_max_abs": 0.02}
    assert 0 < outputs["close"]["max_rel"] <= variant["tolerance"]["price_max_rel"]
    assert outputs["probabilities"]["max_abs"] <= variant["tolerance"]["probabilities_max_abs"]
    assert variant["parity"]["batches"] == [1, variant["parity"]["windows"]]


def test_a_price_delta_beyond_tolerance_is_refused_and_leaves_no_file(forecast_lstm, tmp_path):
    out = tmp_path / INT8_FILE
    with pytest.raises(QuantizationError, match=r"price .* max rel"):
        _variant(forecast_lstm, out, tolerance=Int8Tolerance(price_max_rel=0.0))
    assert not out.exists()


def test_a_graph_with_nothing_to_quantize_is_refused_and_leaves_no_file(forecast_lstm, tmp_path):
    _, path, *_ = forecast_lstm
    with pytest.raises(QuantizationError, match=r"no .*Conv.* node to quantize"):
        quantize_graph(path, tmp_path / INT8_FILE, op_types=("Conv",))
    assert not (tmp_path / INT8_FILE).exists()


def test_skill_of_both_encodings_per_head_on_every_test_window(entry, forecast_lstm):
    variant, _ = entry
    _, _, data_cfg, _, datasets = forecast_lstm
    skill = variant["skill"]
    test = datasets["test"]
    assert skill["points"] == n_windows(test.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    assert skill["segment"] == "test"
    for encoding in ("fp32", "int8"):
        assert set(skill[encoding]) == set(HEADS)
        assert all(np.isfinite(v) for v in skill[encoding].values())
    assert skill["metric"]["price"] == "mae"
    assert skill["int8"]["price"] == pytest.approx(skill["fp32"]["price"], abs=1e-3)


def test_fp32_skill_is_the_jax_models_scored_like_training(entry, forecast_lstm):
    """The report's fp32 column equals the JAX model's test-segment skill through the same scoring."""
    variant, _ = entry
    model, _, data_cfg, scaler, datasets = forecast_lstm
    forecasts = predict_heads(model, datasets["test"], data_cfg, scaler, CALIBRATION)
    expected = score_segment(forecasts, datasets["train"], datasets["test"], data_cfg, scaler)["skill"]
    for head in HEADS:
        assert variant["skill"]["fp32"][head] == pytest.approx(expected[head], abs=1e-4), head


def test_the_entry_survives_the_manifest_as_json(entry):
    variant, _ = entry
    assert json.loads(json.dumps(variant, allow_nan=False)) == variant


def test_settings_are_recorded(entry):
    variant, _ = entry
    recorded = variant["quantization"]
    assert Int8Settings().op_types is None  # chosen per graph: op_types_for
    assert recorded["op_types"] == ["LSTM"]
    assert (recorded["per_channel"], recorded["reduce_range"]) == (False, True)
    assert recorded["weights"] == "int8, 7-bit (reduce_range)"


def _dense_graph(path: Path, opsets: list[onnx.OperatorSetIdProto] | None = None) -> tuple[Path, np.ndarray]:
    """y = x @ w, w 4 × 3 in [0, 1.1]: the graph and its weights."""
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path, numpy_helper.to_array(weights)


def test_a_graph_importing_the_default_domain_twice_still_quantizes(tmp_path):
    """skl2onnx (the classical members) can write the default domain twice; the quantizer alone refuses it."""
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    path, weights = _dense_graph(tmp_path / "dense.onnx", opsets)
    out = quantize_graph(path, tmp_path / INT8_FILE)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, x @ weights, atol=0.02)


# Where each int8 kernel takes its weights (LSTM: W and R), read here independently of the module.
KERNEL_WEIGHTS = {"MatMulInteger": (1,), "DynamicQuantizeLSTM": (1, 2), "DynamicQuantizeMatMul": (1,)}


def _kernel_weights(path: Path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path)).graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return {
        node.input[i]: initializers[node.input[i]]
        for node in graph.node
        for i in KERNEL_WEIGHTS.get(node.op_type, ())
        if node.input[i] in initializers
    }


def _worst_u8s8_pair_sum(weights: dict[str, np.ndarray]) -> int:
    """The largest |a0·w0 + a1·w1| a u8 × s8 multiply-add (VPMADDUBSW) can form with these int8 weights."""
    return max(2 * 255 * int(np.abs(w.astype(np.int32)).max()) for w in weights.values() if w.dtype == np.int8)


@pytest.mark.parametrize("graph", ["lstm", "dense"])
def test_the_int8_weights_cannot_saturate_a_u8s8_multiply_add_on_any_cpu(graph, entry, tmp_path):
    """Issue 21: x86 CPUs without VNNI sum two u8 × s8 products into a saturating int16; full-range int8
    weights overflow it (wrong answers on those CPUs only). A structural check, true on every CPU."""
    if graph == "lstm":
        _, out = entry
    else:
        out = quantize_graph(_dense_graph(tmp_path / "dense.onnx")[0], tmp_path / INT8_FILE)
    weights = _kernel_weights(out)
    assert weights and all(w.dtype == np.int8 for w in weights.values())
    assert _worst_u8s8_pair_sum(weights) <= np.iinfo(np.int16).max
    assert saturating_weights(out) == {}


def test_full_range_int8_weights_are_found_saturating(forecast_lstm, tmp_path):
    """The positive control: onnxruntime's default format (QInt8, reduce_range=False) can saturate, and
    both the check above and `saturating_weights` see it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _, path, *_ = forecast_lstm
    out = tmp_path / "full_range.onnx"
    quantize_dynamic(path, out, op_types_to_quantize=["LSTM"], reduce_range=False, weight_type=QuantType.QInt8)
    assert _worst_u8s8_pair_sum(_kernel_weights(out)) > np.iinfo(np.int16).max
    assert saturating_weights(out) and max(saturating_weights(out).values()) > SATURATION_FREE_MAX


def test_the_probe_windows_ship_beside_the_variant_and_pass_its_tolerance(entry, forecast_lstm):
    """What serving re-checks at load: held-back windows as plain float32 arrays (no pickle) named in the
    entry, on which the variant meets its stored tolerance here too."""
    variant, out = entry
    _, path, data_cfg, _, datasets = forecast_lstm
    probe_path = out.with_name(variant["probe"]["file"])
    assert variant["probe"]["file"] == PROBE_FILE
    probe = read_probe(probe_path)
    assert set(probe) == set(input_names(data_cfg.task))
    count = graph_inputs(datasets["test"], data_cfg)["features"].shape[0]
    assert all(a.dtype == np.float32 and a.shape[0] == min(PROBE_WINDOWS, count) for a in probe.values())
    assert variant["probe"]["windows"] == min(PROBE_WINDOWS, count)
    deltas = parity(cpu_session(path), cpu_session(out), OUTPUT_NAMES[data_cfg.task], probe)
    assert Int8Tolerance(**variant["tolerance"]).exceeded(deltas) == []


def test_publication_ships_the_probe_with_the_variant(forecast_lstm, tmp_path):
    """`quantized_variants` hands the publisher the probe file beside the int8 file (both sha256-listed)."""
    from cse_models.publication.publish import quantized_variants

    _, path, data_cfg, scaler, datasets = forecast_lstm
    variants = quantized_variants(path, tmp_path, PreparedSeries(datasets, data_cfg, scaler))
    entry = variants.variants["int8"]
    assert set(variants.files) == {INT8_FILE, PROBE_FILE} == {entry["file"], entry["probe"]["file"]}
    assert all(file.is_file() for file in variants.files.values())
