"""A classical member as ONE ONNX graph with a network's inputs and outputs: raw feature windows and last
closes in, the forecast card out — so serving, the store and the ensembles treat it like any member.

Three parts, composed by renaming each part's internal values under its own prefix and joining them on
the shared names:

    features ─▶ summary (onnx nodes, `summary.summary_graph`) ─▶ trees (onnxmltools / skl2onnx) ─┐
    features, last_close ───────────────────────────────────────────▶ card (jax2onnx) ◀──────────┘

The card is jax2onnx of `heads.graph.forecast_card` on the raw outputs (ẑ, range ratio, log class
probabilities), the one implementation of the card that the networks export too. The tree converters
emit older opsets (onnxmltools ≤ 15; `ai.onnx.ml` 1–3) whose operators (TreeEnsemble*, Cast, Identity,
Mul) mean the same under the card's opset, so the composed model imports the highest version of each
domain and the highest IR version of its parts; `onnx.checker` and the parity check prove it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cse_models.classical.architectures import PROBABILITY_FLOOR

CARD_OPSET = 23  # jax2onnx's default, which the networks' graphs (export.onnx) import too: ensembles join both kinds
TREE_OPSET = 15  # the highest onnxmltools 1.16 converts LightGBM to
TREE_OUTPUTS = ("return_z", "range_ratio", "class_probabilities")
_SUMMARY = "summary"


@dataclass(frozen=True)
class Part:
    """One model to compose: its internal names go under `prefix`, except those `bind` maps to shared names."""

    model: Any  # onnx.ModelProto
    prefix: str
    bind: dict[str, str]

    def name(self, local: str) -> str:
        if not local:
            return local  # an omitted optional input
        return self.bind.get(local, f"{self.prefix}/{local}")


def compose(parts: Sequence[Part], inputs: Sequence[Any], outputs: Sequence[Any], graph_name: str) -> Any:
    """Join the parts (in topological order) into one model with the given graph inputs and outputs
    (`ValueInfoProto`s named by shared names)."""
    from onnx import helper

    nodes, initializers, value_info = [], [], []
    opsets: dict[str, int] = {}
    shared = {v.name for v in (*inputs, *outputs)}
    for part in parts:
        graph = part.model.graph
        for node in graph.node:
            renamed = helper.make_node(
                node.op_type,
                [part.name(n) for n in node.input],
                [part.name(n) for n in node.output],
                name=part.name(node.name or f"{node.op_type}_{len(nodes)}"),
                domain=node.domain,
            )
            renamed.attribute.extend(node.attribute)
            nodes.append(renamed)
        for tensor in graph.initializer:
            copy = type(tensor)()
            copy.CopyFrom(tensor)
            copy.name = part.name(tensor.name)
            initializers.append(copy)
        for info in graph.value_info:
            if part.name(info.name) not in shared:
                copy = type(info)()
                copy.CopyFrom(info)
                copy.name = part.name(info.name)
                value_info.append(copy)
        for opset in part.model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    graph = helper.make_graph(nodes, graph_name, list(inputs), list(outputs), initializers, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    model.ir_version = max(part.model.ir_version for part in parts)
    return model


def merge_tree_models(models: dict[str, Any], n_inputs: int) -> Any:
    """The three converted tree models (`return_z`, `range_ratio` regressors and the `direction` classifier,
    zipmap off) as one model: `summary` float `[N, k]` → `TREE_OUTPUTS`, each `[N, 1]` / `[N, 3]`."""
    from onnx import TensorProto, helper

    parts = []
    for (name, model), output in zip(models.items(), TREE_OUTPUTS, strict=True):
        graph_outputs = [o.name for o in model.graph.output]
        chosen = next((o for o in graph_outputs if "probab" in o), graph_outputs[-1])
        parts.append(Part(model, name, {model.graph.input[0].name: _SUMMARY, chosen: output}))
    widths = {"return_z": 1, "range_ratio": 1, "class_probabilities": 3}
    return compose(
        parts,
        [helper.make_tensor_value_info(_SUMMARY, TensorProto.FLOAT, [None, n_inputs])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None, widths[o]]) for o in TREE_OUTPUTS],
        "trees",
    )


def card_function(calibration: Any, feature_names: tuple[str, ...], horizon: int) -> Callable[..., tuple]:
    """JAX: (features `[B, seq, f]`, last_close `[B, 1]`, ẑ `[B, 1]`, range ratio `[B, 1]`, class
    probabilities `[B, 3]`) → the forecast card (`OUTPUT_NAMES["forecast"]`: every registered head) —
    `forecast_card` on the raw outputs (logits = log of the floored probabilities)."""
    import jax.numpy as jnp

    from cse_models.heads.graph import forecast_card

    def card(features, last_close, z, ratio, probabilities):
        logits = jnp.log(jnp.maximum(probabilities, PROBABILITY_FLOOR))
        out = jnp.concatenate([z, ratio, logits], axis=1)
        return forecast_card(out, features, last_close, calibration, feature_names, horizon)

    return card


def raw_card(calibration: Any, feature_names: tuple[str, ...], horizon: int) -> Callable[..., tuple]:
    """JAX: (raw outputs `[B, 5]`, features, last_close) → the forecast card: the Python side of parity and
    the forecasts a fitted member is scored with."""
    from cse_models.heads.graph import forecast_card

    return lambda out, features, last_close: forecast_card(
        out, features, last_close, calibration, feature_names, horizon
    )


def card_graph(calibration: Any, feature_names: tuple[str, ...], seq_len: int, horizon: int) -> Any:
    from jax2onnx import to_onnx

    from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES

    f = len(feature_names)
    return to_onnx(
        card_function(calibration, feature_names, horizon),
        [("batch", seq_len, f), ("batch", 1), ("batch", 1), ("batch", 1), ("batch", 3)],
        model_name="card",
        opset=CARD_OPSET,
        input_names=[INPUT_NAME, LAST_CLOSE_INPUT, *TREE_OUTPUTS],
        output_names=list(OUTPUT_NAMES["forecast"]),
    )


def member_graph(trees_model: Any, scaler: Any, calibration: Any, seq_len: int, horizon: int) -> Any:
    """summary → trees → card as one model with the forecast graph's inputs and outputs."""
    from cse_models.classical.summary import summary_graph
    from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES

    card_outputs = OUTPUT_NAMES["forecast"]  # every registered head's (`heads.registry`)
    names = scaler.feature_names
    summary = summary_graph(scaler, seq_len, CARD_OPSET, INPUT_NAME)
    card = card_graph(calibration, names, seq_len, horizon)
    card_io = {v.name: v for v in (*card.graph.input, *card.graph.output)}
    same = {n: n for n in (INPUT_NAME, LAST_CLOSE_INPUT, _SUMMARY, *TREE_OUTPUTS, *card_outputs)}
    return compose(
        [Part(summary, "summary", same), Part(trees_model, "trees", same), Part(card, "card", same)],
        [card_io[INPUT_NAME], card_io[LAST_CLOSE_INPUT]],
        [card_io[name] for name in card_outputs],
        "cse_model",
    )
