"""ONE graph for a whole ensemble: every member's graph, its names prefixed with `<member>/`, reading the
shared `features` and `last_close` inputs, then the ensemble's combiners — so serving makes one
`session.run` per request, and the members' own cards come out of the same run as extra outputs
(`<member>/close`, …) for `members: true`.

`check_composed` is the parity proof: the composed graph's ensemble outputs against
`FittedEnsemble.combine` on the members' own graphs run separately, within rtol 1e-3 / atol 1e-5, and its
`return` output against the combined log return within `RETURN_ATOL` (absolute).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import compose, helper

from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.graph_builder import GraphBuilder
from cse_models.ensembles.spaces import card_nodes, stack_nodes
from cse_models.errors import ConfigError
from cse_models.export.parity import ParityCheck, ParityReport
from cse_models.heads.layout import FORECAST_OUTPUTS, INPUT_NAME, LAST_CLOSE_INPUT, outputs_by_head

COMBINER_PREFIX = "ensemble/"
# The combined log return is the number a combiner computes; a close within rtol 1e-3 lets it be off by
# 1e-3, about a whole hourly move, so a combiner answering persistence (0) would pass. float32 closes of
# 1e2–1e5 give log returns good to ~1e-7, so the graph's `return` is held to this, absolute.
RETURN_ATOL = 1e-6


class EnsembleMemberError(ConfigError):
    """A member graph is missing or does not fit the others (inputs, window, outputs)."""


def member_output(member: str, output: str) -> str:
    """The composed graph's name for one member's card output."""
    return f"{member}/{output}"


def _input_shapes(model: onnx.ModelProto) -> dict[str, list[int | str]]:
    return {
        i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
        if i.name not in {init.name for init in model.graph.initializer}
    }


def load_members(fitted: FittedEnsemble, member_paths: Mapping[str, str | Path]) -> dict[str, onnx.ModelProto]:
    """Each member's graph, refusing a missing file and members whose inputs differ (another feature set,
    window length or feature count) or that lack a card output."""
    models = {}
    for name in fitted.members:
        path = member_paths.get(name)
        if path is None or not Path(path).is_file():
            raise EnsembleMemberError(f"ensemble {fitted.name!r}: member {name!r} has no graph (looked for {path})")
        model = onnx.load(str(path))
        missing = sorted(set(FORECAST_OUTPUTS) - {o.name for o in model.graph.output})
        if missing:
            raise EnsembleMemberError(f"member {name!r} ({path}) lacks forecast output(s) {missing}")
        models[name] = model
    shapes = {name: _input_shapes(model) for name, model in models.items()}
    first = next(iter(shapes.values()))
    for name, shape in shapes.items():
        if shape != first:
            raise EnsembleMemberError(
                f"members disagree on their inputs ({fitted.members[0]}: {first}, {name}: {shape}): "
                "an ensemble's members must share the feature set, window length and horizon"
            )
    return models


def _prefixed(model: onnx.ModelProto, prefix: str) -> onnx.ModelProto:
    """The member's graph with every name but the shared inputs prefixed (local functions too)."""
    graph = compose.add_prefix_graph(model.graph, prefix, rename_inputs=False)
    out = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    renamed = {(f.domain, f.name): prefix + f.name for f in model.functions}
    for function in model.functions:
        copy = onnx.FunctionProto()
        copy.CopyFrom(function)
        copy.name = renamed[(function.domain, function.name)]
        out.functions.append(copy)
    for node in [*out.graph.node, *(n for f in out.functions for n in f.node)]:
        node.op_type = renamed.get((node.domain, node.op_type), node.op_type)
    return out


def _opsets(models: list[onnx.ModelProto]) -> list[onnx.OperatorSetIdProto]:
    versions: dict[str, int] = {"": 18}  # the combiners use ReduceMean with axes as an input (opset ≥ 18)
    for model in models:
        for opset in model.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


@dataclass(frozen=True)
class ComposedEnsemble:
    path: str
    outputs: tuple[str, ...]  # the ensemble's card, then each member's
    member_outputs: dict[str, dict[str, str]]  # member → card output → graph output


def compose_ensemble(
    fitted: FittedEnsemble, member_paths: Mapping[str, str | Path], path: str | Path
) -> ComposedEnsemble:
    """Write the ensemble as one ONNX graph at `path` (checked with onnx.checker)."""
    members = load_members(fitted, member_paths)
    prefixed = {name: _prefixed(model, f"{name}/") for name, model in members.items()}
    first = next(iter(members.values())).graph
    g = GraphBuilder(COMBINER_PREFIX)
    member_outputs = {name: {o: member_output(name, o) for o in FORECAST_OUTPUTS} for name in fitted.members}
    stacks = stack_nodes(g, [member_outputs[name] for name in fitted.members], LAST_CLOSE_INPUT)
    card_nodes(
        g,
        fitted.combiners["price"].nodes(g, stacks.returns),
        fitted.combiners["volatility"].nodes(g, stacks.log_ranges),
        fitted.combiners["direction"].nodes(g, stacks.probabilities),
        stacks,
        fitted.interval_scale,
        LAST_CLOSE_INPUT,
        {o: o for o in FORECAST_OUTPUTS},
    )
    member_graph_outputs = {o.name: o for m in prefixed.values() for o in m.graph.output}
    template = {o.name: o for o in next(iter(members.values())).graph.output}
    ensemble_outputs = [_value_info(template[o], o) for o in FORECAST_OUTPUTS]
    extra = [member_graph_outputs[member_outputs[n][o]] for n in fitted.members for o in FORECAST_OUTPUTS]
    graph = helper.make_graph(
        nodes=[n for m in prefixed.values() for n in m.graph.node] + g.nodes,
        name=f"cse_ensemble_{fitted.name}",
        inputs=[i for i in first.input if i.name in (INPUT_NAME, LAST_CLOSE_INPUT)],
        outputs=ensemble_outputs + extra,
        initializer=[i for m in prefixed.values() for i in m.graph.initializer] + g.initializers,
    )
    models = list(prefixed.values())
    model = helper.make_model(
        graph,
        opset_imports=_opsets(models),
        ir_version=max(m.ir_version for m in models),
        functions=[f for m in models for f in m.functions],
        producer_name="cse",
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path))
    names = tuple(o.name for o in model.graph.output)
    return ComposedEnsemble(str(path), names, member_outputs)


def _value_info(like: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    info = onnx.ValueInfoProto()
    info.CopyFrom(like)
    info.name = name
    return info


def run_graph(path: str | Path, inputs: Mapping[str, np.ndarray], outputs: tuple[str, ...] = FORECAST_OUTPUTS):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(list(outputs), dict(inputs)), strict=True))


def check_composed(
    fitted: FittedEnsemble,
    composed: ComposedEnsemble,
    member_paths: Mapping[str, str | Path],
    inputs: Mapping[str, np.ndarray],
    *,
    batches: tuple[int, ...] = (1, 7),
) -> ParityReport:
    """The composed graph against `fitted.combine` of the members run alone, every ensemble output, at each
    batch size, and its `return` against the combined log return within `RETURN_ATOL`; also each member
    output against that member alone. Raises ExportParityError."""
    check = ParityCheck(f"composed ensemble {fitted.name!r} and Python")
    returns = ParityCheck(f"composed ensemble {fitted.name!r} and Python", rtol=0.0, atol=RETURN_ATOL)
    for batch in batches:
        feed = {name: np.ascontiguousarray(values[:batch], dtype=np.float32) for name, values in inputs.items()}
        alone = {name: run_graph(member_paths[name], feed) for name in fitted.members}
        last_close = feed[LAST_CLOSE_INPUT][:, 0].astype(np.float64)
        expected = fitted.combine(
            {n: outputs_by_head("forecast", list(o.values())) for n, o in alone.items()}, last_close
        )
        got = run_graph(composed.path, feed, composed.outputs)
        returns.compare("return", got["return"][:, 0], np.log(expected["price"] / last_close), batch)
        combined = outputs_by_head("forecast", [got[o] for o in FORECAST_OUTPUTS])
        for head, want in expected.items():
            check.compare(head, combined[head], want, batch)
        for n in fitted.members:
            for o in FORECAST_OUTPUTS:
                check.compare(member_output(n, o), got[member_output(n, o)], alone[n][o], batch)
    return check.report()
