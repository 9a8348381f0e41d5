"""The int8 variant of an exported forecast LSTM: int8 kernels in the graph, parity within the stated
tolerance, refusal beyond it, and skill scored like training scores it."""

from __future__ import annotations

import json

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
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.errors import QuantizationError
from cse_models.export.onnx import export_onnx
from cse_models.export.quantize import INT8_FILE, Int8Settings, Int8Tolerance, int8_variant, quantize_graph
from cse_models.features.windows import n_windows
from cse_models.heads import HEADS, HeadCalibration
from cse_models.heads.layout import FORECAST_OUTPUTS
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
    data_cfg = DataConfig.honest(seq_len=12)
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
    assert (recorded["per_channel"], recorded["reduce_range"]) == (False, False)


def test_a_graph_importing_the_default_domain_twice_still_quantizes(tmp_path):
    """skl2onnx (the classical members) can write the default domain twice; the quantizer alone refuses it."""
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weights],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, tmp_path / "dense.onnx")
    out = quantize_graph(tmp_path / "dense.onnx", tmp_path / INT8_FILE)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, x @ numpy_helper.to_array(weights), atol=0.02)
