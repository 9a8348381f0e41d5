"""Every registered architecture exports a graph that onnxruntime loads without a warning.

A graph declares the shape of each intermediate value (`value_info`); when a declaration disagrees with
what the ops compute, onnxruntime logs "Error merging shape info for output …" at load and falls back to
its own inference. The numbers still match JAX, so the parity tests cannot see it: this test reads
onnxruntime's own log. Each architecture is exported at its small `demo()` preset on the published task
(forecast, `DataConfig()`), then opened with the session logger at WARNING, which onnxruntime
writes to the process's stderr (fd 2, captured with `capfd`); any warning or error line fails the test.

An export costs 6–18 s on 2 cores, so `make test` exports one graph per way a convolution enters the zoo
(plain conv blocks, residual blocks, a conv front end to an LSTM and to a transformer): jax2onnx wraps
each channels-last Conv in layout Transposes and then folds them, which is where a wrong declaration came
from (`export.onnx.redeclare_intermediate_shapes`). Every other architecture runs with CSE_SLOW=1.
"""

from __future__ import annotations

import onnxruntime as ort
import pytest
from flax import nnx

from cse_models.export.onnx import export_onnx
from cse_models.heads import HeadCalibration
from cse_models.models import MODELS, build_model
from cse_models.training.run import model_config_for

ORT_WARNING = 2  # onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
ORT_LOG_MARKERS = ("[W:onnxruntime", "[E:onnxruntime", "[F:onnxruntime")
CONV_LAYOUTS = {"financial_cnn1d", "residual_cnn1d", "conv_lstm", "transformer_with_cnn"}


def ort_load_log(path: str, capfd: pytest.CaptureFixture[str]) -> list[str]:
    """Open `path` in a CPU session logging at WARNING and above → the lines onnxruntime wrote to stderr."""
    options = ort.SessionOptions()
    options.log_severity_level = ORT_WARNING
    options.intra_op_num_threads = 1  # no thread-affinity notes from a pool this test does not need
    capfd.readouterr()
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return [line for line in capfd.readouterr().err.splitlines() if any(m in line for m in ORT_LOG_MARKERS)]


@pytest.mark.parametrize(
    "name", [n if n in CONV_LAYOUTS else pytest.param(n, marks=pytest.mark.slow) for n in MODELS.names()]
)
def test_exported_graph_loads_without_an_onnxruntime_warning(name, forecast_data, tmp_path, capfd):
    data_cfg, scaler, datasets, _ = forecast_data
    cfg = model_config_for(name, data_cfg, datasets["train"].x.shape[1], preset="demo")
    model = build_model(name, cfg, rngs=nnx.Rngs(0))
    path = export_onnx(model, scaler, data_cfg, tmp_path / f"{name}.onnx", HeadCalibration(shrink=0.5))
    warnings = ort_load_log(str(path), capfd)
    assert not warnings, f"onnxruntime warned while loading {name}'s graph:\n" + "\n".join(warnings)
