"""CSE_SERVING_INT8: a version whose manifest lists variants["int8"] is served from model.int8.onnx when
the setting is on, from model.onnx otherwise; the variant's file is sha256-verified like every file.

The "int8" file of most tests is the fixture regression graph with another offset (close = last close +
0.75 instead of + 0.5), so which file answered is exact arithmetic; two serve graphs that
`cse_models.export.quantize` really quantized (a Dense layer → MatMulInteger, an LSTM →
DynamicQuantizeLSTM)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from serving_helpers import (
    CLASSES,
    CLOSE,
    N_FEATURES,
    SEQ_LEN,
    bearer,
    classification_onnx,
    make_klines,
    manifest_for,
    regression_onnx,
    version_at,
)

from cse_models.errors import StoreError
from cse_models.store import MODEL_FILE, ModelStore, open_store
from cse_serving.app import create_app
from cse_serving.engine import LoadedModel, load_model
from cse_serving.registry import ModelRegistry
from cse_serving.settings import Settings

INT8_FILE = "model.int8.onnx"
FP32_OFFSET, INT8_OFFSET = 0.5, 0.75


def publish_with_variant(
    store: ModelStore,
    work: Path,
    *,
    variant: dict | str | None = None,
    fp32_graph: Path | None = None,
    int8_graph: Path | None = None,
    task: str = "regression",
) -> str:
    """A version with model.onnx (`fp32_graph`, else the +0.5 fixture) and model.int8.onnx (`int8_graph`,
    else the +0.75 fixture); `variant` is its manifest entry (default: {"file": "model.int8.onnx"} plus a
    parity record)."""
    version = version_at()
    work.mkdir(parents=True, exist_ok=True)
    if task == "regression":
        model = fp32_graph or regression_onnx(work / "model.onnx", FP32_OFFSET)
        int8 = int8_graph or regression_onnx(work / "int8.onnx", INT8_OFFSET)
    else:
        model = classification_onnx(work / "model.onnx")
        int8 = int8_graph
    entry = variant if variant is not None else {"file": INT8_FILE, "parity": {"outputs": {}}}
    manifest = dataclasses.replace(manifest_for("BTCUSDT", task, version), variants={"int8": entry})
    store.publish(manifest, {MODEL_FILE: model, INT8_FILE: int8})
    return version


def _registry(settings: Settings, *, int8: bool) -> ModelRegistry:
    """A loaded registry (create_app takes an injected one only when it is non-empty: `registry or ...`)."""
    chosen = dataclasses.replace(settings, int8=int8)
    registry = ModelRegistry(open_store(chosen.store_root), chosen)
    registry.sync()
    return registry


def _predict_close(registry: ModelRegistry, token: str, klines: list[dict]) -> tuple[float, LoadedModel]:
    """/predict's close for `klines`, and the model that served it."""
    from litestar.testing import TestClient

    with TestClient(create_app(registry.settings, registry=registry)) as client:
        client.headers.update(bearer(token))
        response = client.post("/predict", json={"symbol": "BTCUSDT", "interval": "1h", "klines": klines})
        assert response.status_code == 200, response.text
        return response.json()["prediction"]["close"], registry.states()[("BTCUSDT", "1h")].serving


@pytest.mark.parametrize(("int8", "offset", "encoding"), [(True, INT8_OFFSET, "int8"), (False, FP32_OFFSET, "fp32")])
def test_the_setting_chooses_the_file_that_answers(store, settings, tokens, tmp_path, int8, offset, encoding):
    publish_with_variant(store, tmp_path / "build")
    registry = _registry(settings, int8=int8)
    klines = make_klines()
    close, served = _predict_close(registry, tokens["user"], klines)
    assert close == pytest.approx(float(np.float32(klines[-1]["close"]) + np.float32(offset)), rel=1e-6)
    assert served.encoding == encoding
    assert served.model_file == (INT8_FILE if int8 else MODEL_FILE)


def test_setting_on_without_a_variant_serves_model_onnx(store, settings, publish):
    version = publish("BTCUSDT", "regression")
    model = load_model(store, "BTCUSDT", "1h", version, dataclasses.replace(settings, int8=True))
    assert (model.encoding, model.model_file) == ("fp32", MODEL_FILE)


def test_a_tampered_int8_file_fails_its_sha256(store, settings, tmp_path):
    version = publish_with_variant(store, tmp_path / "build")
    path = store.version_dir("BTCUSDT", "1h", version) / INT8_FILE
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(StoreError, match="sha256"):
        load_model(store, "BTCUSDT", "1h", version, dataclasses.replace(settings, int8=True))


@pytest.mark.parametrize(
    "variant", [{"file": "members/x.onnx"}, {"file": "absent.onnx"}, {"file": "scaler.json"}, {}, INT8_FILE]
)
def test_a_variant_naming_no_verified_onnx_file_is_refused(store, settings, tmp_path, variant):
    version = publish_with_variant(store, tmp_path / "build", variant=variant)
    with pytest.raises(StoreError, match=r"variants\['int8'\]"):
        load_model(store, "BTCUSDT", "1h", version, dataclasses.replace(settings, int8=True))
    assert load_model(store, "BTCUSDT", "1h", version, settings).encoding == "fp32"


def test_a_really_quantized_graph_serves_with_the_setting(store, settings, tmp_path):
    from cse_models.export.quantize import int8_kernels, quantize_graph

    work = tmp_path / "build"
    work.mkdir()
    int8 = quantize_graph(classification_onnx(work / "fp32.onnx"), work / INT8_FILE)
    assert int8_kernels(int8) == {"MatMulInteger": 1}
    version = publish_with_variant(store, work, int8_graph=int8, task="classification")
    model = load_model(store, "BTCUSDT", "1h", version, dataclasses.replace(settings, int8=True))
    assert model.encoding == "int8"
    window = model.window(_kline_structs(make_klines()))
    (probabilities,) = model.run(model.feeds([window])).values()
    assert probabilities.shape == (1, len(CLASSES))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def lstm_regression_onnx(path: Path, hidden: int = 16) -> Path:
    """close = the last row's close + w·h_T of a one-layer LSTM over features / 100 (the native ONNX
    `LSTM` node, as cse exports it): something onnxruntime quantizes to `DynamicQuantizeLSTM`."""
    rng = np.random.default_rng(0)

    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(np.float32) if value.dtype.kind == "f" else value, name)

    nodes = [
        helper.make_node("Mul", ["features", "one_hundredth"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["time_major"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["time_major", "W", "R", "B"], ["", "h_last"], hidden_size=hidden),
        helper.make_node("Squeeze", ["h_last", "zero"], ["h"]),
        helper.make_node("MatMul", ["h", "head"], ["move"]),
        helper.make_node("Gather", ["features", "last_step"], ["last_row"], axis=1),
        helper.make_node("Gather", ["last_row", "close_column"], ["last_close"], axis=1),
        helper.make_node("Add", ["last_close", "move"], ["close"]),
    ]
    inits = [
        init("one_hundredth", np.array(0.01)),
        init("W", rng.normal(0, 0.5, (1, 4 * hidden, N_FEATURES))),
        init("R", rng.normal(0, 0.3, (1, 4 * hidden, hidden))),
        init("B", np.zeros((1, 8 * hidden))),
        init("zero", np.array([0], dtype=np.int64)),
        init("head", rng.normal(0, 0.5, (hidden, 1))),
        init("last_step", np.array(SEQ_LEN - 1, dtype=np.int64)),
        init("close_column", np.array([CLOSE], dtype=np.int64)),
    ]
    graph = helper.make_graph(
        nodes,
        "lstm_regression",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", SEQ_LEN, N_FEATURES])],
        [helper.make_tensor_value_info("close", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_a_quantized_lstm_serves_on_the_int8_kernel(store, settings, tmp_path):
    """The engine loads, smoke-runs and answers with a `DynamicQuantizeLSTM` graph; its answer differs from
    the fp32 graph's (the int8 kernel ran) by less than the price tolerance the publisher enforces."""
    from cse_models.export.quantize import int8_kernels, quantize_graph

    work = tmp_path / "build"
    work.mkdir()
    fp32 = lstm_regression_onnx(work / "fp32.onnx")
    int8 = quantize_graph(fp32, work / INT8_FILE)
    assert int8_kernels(int8) == {"DynamicQuantizeLSTM": 1}
    version = publish_with_variant(store, work / "v", fp32_graph=fp32, int8_graph=int8)
    klines = _kline_structs(make_klines())
    answers = {}
    for on in (False, True):
        model = load_model(store, "BTCUSDT", "1h", version, dataclasses.replace(settings, int8=on))
        answers[model.encoding] = float(model.run(model.feeds([model.window(klines)]))["close"][0, 0])
    assert answers["int8"] != answers["fp32"]
    assert answers["int8"] == pytest.approx(answers["fp32"], rel=1e-3)


def _kline_structs(klines: list[dict]):
    from cse_serving.schemas import Kline

    return [Kline(**k) for k in klines]


def test_cse_serving_int8_env_turns_the_setting_on():
    assert Settings.from_env({"CSE_SERVING_INT8": "1"}).int8 is True
    assert Settings.from_env({"CSE_SERVING_INT8": "off"}).int8 is False
    assert Settings.from_env({}).int8 is False
