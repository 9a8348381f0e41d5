"""Lowering `rnn_ops.lstm_layer` / `gru_layer` to ONNX's native `LSTM` / `GRU` operators.

Traced as-is, a recurrent layer exports as a `Loop` that onnxruntime runs 2.8–4× slower than its
native kernels (../shared/notes/onnx-rnn.md). During `to_onnx` only, a jax2onnx plugin swaps the
module attribute for a primitive, and lowers that primitive to one `LSTM`/`GRU` node with the
weights reordered into ONNX's gate layout. Training never sees the primitive.

Uses jax2onnx internals (`_patching`, the lowering context): jax2onnx is pinned exactly, and a test
asserts the exported op types, so an upgrade that breaks this fails loudly.
"""

from __future__ import annotations

import numpy as np
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.interpreters import mlir
from jax2onnx.plugins._patching import MonkeyPatchSpec
from jax2onnx.plugins.plugin_system import PrimitiveLeafPlugin, register_primitive

from cse_models.errors import ExportParityError
from cse_models.models import rnn_ops

lstm_p = Primitive("cse.lstm")
gru_p = Primitive("cse.gru")
lstm_p.def_abstract_eval(lambda x, wi, wh, b: ShapedArray((x.shape[0], x.shape[1], wh.shape[0]), x.dtype))
gru_p.def_abstract_eval(lambda x, wi, bi, wh: ShapedArray((x.shape[0], x.shape[1], wh.shape[0]), x.dtype))
mlir.register_lowering(lstm_p, mlir.lower_fun(rnn_ops.lstm_reference, multiple_results=False))
mlir.register_lowering(gru_p, mlir.lower_fun(rnn_ops.gru_scan, multiple_results=False))

LSTM_GATE_ORDER = (0, 3, 1, 2)  # Flax i, f, g, o → ONNX i, o, f, c
GRU_GATE_ORDER = (1, 0, 2)  # Flax r, z, n → ONNX z, r, h


def _constants(ctx, eqn, names: tuple[str, ...]) -> list[np.ndarray]:
    """Weights must be constants of the traced graph (the exported function closes over the model)."""
    out = []
    for var, name in zip(eqn.invars[1:], names, strict=True):
        value = ctx.try_evaluate_const(var)
        if value is None:
            raise ExportParityError(f"{eqn.primitive}: weight {name!r} is not a constant at export time")
        out.append(np.asarray(value, np.float32))
    return out


def _reorder_gates(a: np.ndarray, n_gates: int, order: tuple[int, ...]) -> np.ndarray:
    blocks = np.split(a, n_gates, axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


def _emit(ctx, eqn, op: str, w: np.ndarray, r: np.ndarray, b: np.ndarray, **attrs) -> None:
    builder = ctx.builder
    (out_var,) = eqn.outvars
    x = ctx.get_value_for_var(eqn.invars[0], name_hint=ctx.fresh_name(f"{op}_in"))
    w_init = builder.add_initializer_from_array(ctx.fresh_name(f"{op}_W"), w)
    r_init = builder.add_initializer_from_array(ctx.fresh_name(f"{op}_R"), r)
    b_init = builder.add_initializer_from_array(ctx.fresh_name(f"{op}_B"), b)
    n_outputs = 3 if op == "LSTM" else 2
    outputs = getattr(builder, op)(
        x,
        w_init,
        r_init,
        b_init,
        direction="forward",
        hidden_size=r.shape[-1],
        _outputs=[ctx.fresh_name(f"{op}_Y{k}") for k in range(n_outputs)],
        **attrs,
    )
    axes = builder.add_initializer_from_array(ctx.fresh_name(f"{op}_axes"), np.array([1], np.int64))
    out = ctx.get_value_for_var(out_var, name_hint=ctx.fresh_name(f"{op}_out"))
    result = builder.Squeeze(outputs[0], axes, _outputs=[out.name])  # Y is [T, num_directions=1, B, H]
    result.type, result.shape = out.type, out.shape
    ctx.bind_value_for_var(out_var, result)


@register_primitive(jaxpr_primitive=lstm_p.name, since="0.17.1", context="primitives.cse", component="lstm")
class LSTMPlugin(PrimitiveLeafPlugin):
    _PRIM = lstm_p

    @classmethod
    def binding_specs(cls):
        return [MonkeyPatchSpec(rnn_ops, "lstm_layer", lambda _orig: lambda x, wi, wh, b: lstm_p.bind(x, wi, wh, b))]

    def lower(self, ctx, eqn) -> None:
        wi, wh, bias = _constants(ctx, eqn, ("wi", "wh", "b"))
        w = _reorder_gates(wi, 4, LSTM_GATE_ORDER).T[None]  # [1, 4H, F]
        r = _reorder_gates(wh, 4, LSTM_GATE_ORDER).T[None]  # [1, 4H, H]
        b = np.concatenate([np.zeros_like(bias), _reorder_gates(bias, 4, LSTM_GATE_ORDER)])[None]  # [Wb | Rb]
        _emit(ctx, eqn, "LSTM", w, r, b)


@register_primitive(jaxpr_primitive=gru_p.name, since="0.17.1", context="primitives.cse", component="gru")
class GRUPlugin(PrimitiveLeafPlugin):
    _PRIM = gru_p

    @classmethod
    def binding_specs(cls):
        return [MonkeyPatchSpec(rnn_ops, "gru_layer", lambda _orig: lambda x, wi, bi, wh: gru_p.bind(x, wi, bi, wh))]

    def lower(self, ctx, eqn) -> None:
        wi, bi, wh = _constants(ctx, eqn, ("wi", "bi", "wh"))
        w = _reorder_gates(wi, 3, GRU_GATE_ORDER).T[None]
        r = _reorder_gates(wh, 3, GRU_GATE_ORDER).T[None]
        b = np.concatenate([_reorder_gates(bi, 3, GRU_GATE_ORDER), np.zeros_like(bi)])[None]  # Flax: no Rb
        _emit(ctx, eqn, "GRU", w, r, b, linear_before_reset=1)
