"""`ExportedModel`: an exported, parity-checked ONNX file as JSON-friendly data (the `onnx_<name>` asset's
value). Kept apart from `export.onnx` so that reading or storing it never imports JAX or jax2onnx."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ExportedModel:
    """An exported, parity-checked ONNX file (the `onnx_<name>` asset's value)."""

    path: str
    model_name: str
    task: str
    seq_len: int
    op_types: list[str]
    parity: dict

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ExportedModel:
        return cls(**json.loads(text))
