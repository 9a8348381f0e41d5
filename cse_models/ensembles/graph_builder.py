"""A few lines over `onnx.helper` for the ensemble's own nodes: unique names under one prefix and numpy
constants as initializers, so a combiner writes its formula as a sequence of ops."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Collects nodes and initializers; every name it creates starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: np.ndarray | float | list, dtype: type = np.float32, hint: str = "const") -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes) -> str:
        """One node with one output; `output` names it (a graph output), else a fresh internal name."""
        out = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=self._name(op_type), **attributes))
        return out

    def op_multi(self, op_type: str, *inputs: str, outputs: int, **attributes) -> list[str]:
        """One node with several outputs (TopK: values and indices)."""
        names = [self._name(f"{op_type.lower()}_out") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self._name(op_type), **attributes))
        return names

    def identity(self, value: str, output: str) -> str:
        return self.op("Identity", value, output=output)
