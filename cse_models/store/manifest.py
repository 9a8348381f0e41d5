"""The manifest of a published version (DESIGN.md §4): what serving needs to run and judge the graph —
its inputs and outputs, the feature set, each head's verdict, the metrics, the training facts, the
ensemble and the variants — and the sha256 of every file. Pure stdlib."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cse_models.errors import StoreError
from cse_models.store.sections import EnsembleEntry, Metrics, TrainingFacts, Variant, read_variants

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
    metrics: Metrics = field(default_factory=Metrics)
    training: TrainingFacts = field(default_factory=TrainingFacts)
    packages: dict[str, str] = field(default_factory=dict)
    # The published model is an ensemble (None: a single model; `{}` in the JSON).
    ensemble: EnsembleEntry | None = None
    # Other encodings of model.onnx serving may run instead, by name ("int8").
    variants: dict[str, Variant] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        """Sections given as their JSON (a publisher's dicts, a test's literal) are read into their types
        here, with the same checks as a manifest read from the store."""
        if isinstance(self.metrics, dict):
            object.__setattr__(self, "metrics", Metrics.read(self.metrics))
        if isinstance(self.training, dict):
            object.__setattr__(self, "training", TrainingFacts.read(self.training))
        if isinstance(self.ensemble, dict):
            object.__setattr__(self, "ensemble", EnsembleEntry.read(self.ensemble))
        if not all(isinstance(v, Variant) for v in self.variants.values()):
            object.__setattr__(self, "variants", read_variants(self.variants))

    def head(self, name: str) -> HeadVerdict | None:
        return next((h for h in self.heads if h.name == name), None)

    @property
    def min_klines(self) -> int:
        """Klines a request must carry: one window plus the feature set's warm-up."""
        return self.seq_len + self.warmup

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON types, key for key what `from_dict` reads."""
        sections = {
            "metrics": self.metrics.to_dict(),
            "training": self.training.to_dict(),
            "ensemble": {} if self.ensemble is None else self.ensemble.to_dict(),
            "variants": {name: variant.to_dict() for name, variant in self.variants.items()},
        }
        return {**asdict(self), **sections}

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
                    "metrics": Metrics.read(data.get("metrics", {})),
                    "training": TrainingFacts.read(data.get("training", {})),
                    "ensemble": EnsembleEntry.read(data.get("ensemble", {})),
                    "variants": read_variants(data.get("variants", {})),
                }
            )
        except (TypeError, KeyError) as exc:
            raise StoreError(f"manifest is malformed: {exc}") from exc
