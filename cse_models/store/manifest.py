"""The manifest of a published version (DESIGN.md §4): what serving needs to run and judge the graph —
its inputs and outputs, the feature set, each head's verdict, the metrics, the training facts, the
ensemble and the variants — and the sha256 of every file. Pure stdlib."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cse_models.errors import StoreError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | str]  # "batch" marks the dynamic axis


@dataclass(frozen=True)
class Member:
    name: str
    architecture: str
    weight: float = 1.0


@dataclass(frozen=True)
class HeadVerdict:
    """One head of a published version: its graph outputs, its walk-forward skill against its reference
    and the gate's verdict. Serving answers only heads with `publish` true; `passed` is false for a head
    published only because publication was forced."""

    name: str
    outputs: list[str]
    reference: str
    skill: float
    p_value: float
    publish: bool
    passed: bool
    forced: bool
    reason: str


@dataclass(frozen=True)
class Manifest:
    symbol: str
    interval: str
    version: str
    created_at: str
    task: str
    feature_set: str
    feature_names: list[str]
    seq_len: int
    horizon: int
    warmup: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    class_names: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    heads: list[HeadVerdict] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    # The published model is an ensemble: method, members' weights, each member's graph outputs inside
    # model.onnx and why the ensemble (not its best member) was chosen. Empty for a single model.
    ensemble: dict[str, Any] = field(default_factory=dict)
    # Other encodings of model.onnx serving may run instead, by name ("int8"): file, parity delta, skill.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    schema_version: int = SCHEMA_VERSION

    def head(self, name: str) -> HeadVerdict | None:
        return next((h for h in self.heads if h.name == name), None)

    @property
    def min_klines(self) -> int:
        """Klines a request must carry: one window plus the feature set's warm-up."""
        return self.seq_len + self.warmup

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_files(self, hashes: dict[str, str]) -> Manifest:
        """This manifest listing `hashes` (relative path → sha256), checked by a round trip through JSON
        types as a reader will parse it."""
        return Manifest.from_dict({**self.to_dict(), "files": hashes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(f"manifest schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        try:
            return cls(
                **{
                    **data,
                    "inputs": [TensorSpec(**t) for t in data["inputs"]],
                    "outputs": [TensorSpec(**t) for t in data["outputs"]],
                    "members": [Member(**m) for m in data.get("members", [])],
                    "heads": [HeadVerdict(**h) for h in data.get("heads", [])],
                }
            )
        except (TypeError, KeyError) as exc:
            raise StoreError(f"manifest is malformed: {exc}") from exc
