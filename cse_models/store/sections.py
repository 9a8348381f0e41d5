"""The typed sections of a manifest: `metrics`, `training`, `ensemble` and `variants`. Each names what
serving and the page read — as attributes, checked once when the manifest is read — and keeps every other
key in `extra`, written back unchanged (`to_dict`), so manifests written before these types load, and a
manifest read and written again is the same JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cse_models.errors import StoreError
from cse_models.store.json_fields import items, mapping_of, number, obj, optional, present, rest, text

DEFAULT_INTERVAL_LEVEL = 0.8  # the interval head's coverage when calibration did not record one


@dataclass(frozen=True)
class DataRange:
    """The span of candles a version learned from and was checked on (ISO times, train → test)."""

    start: str
    end: str

    @classmethod
    def read(cls, value: Any, where: str) -> DataRange:
        data = obj(value, where)
        return cls(text(data.get("start"), f"{where}.start"), text(data.get("end"), f"{where}.end"))


@dataclass(frozen=True)
class BoardRow:
    """One forecaster on a head's stored walk-forward board; None where the manifest has no number.
    Publication writes `p_value`; a whole `Leaderboard.as_dict()` row carries it as `dm.p_value_model_better`
    (kept in `extra` and written back as it was)."""

    name: str
    kind: str
    skill: float | None
    p_value: float | None
    metrics: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any, where: str) -> BoardRow:
        data = obj(value, where)
        dm = obj(data.get("dm", {}), f"{where}.dm")
        p_value = data.get("p_value", dm.get("p_value_model_better"))
        return cls(
            name=text(data.get("name"), f"{where}.name"),
            kind=text(data.get("kind", "model"), f"{where}.kind"),
            skill=optional(data, "skill", where, number),
            p_value=None if p_value is None else number(p_value, f"{where}.p_value"),
            metrics=obj(data.get("metrics", {}), f"{where}.metrics"),
            extra=rest(data, ("name", "kind", "skill", "p_value", "metrics")),
        )

    def to_dict(self) -> dict[str, Any]:
        named = {"name": self.name, "kind": self.kind, "skill": self.skill, "metrics": self.metrics}
        return {**self.extra, **named, **({} if "dm" in self.extra else {"p_value": self.p_value})}


@dataclass(frozen=True)
class BoardSummary:
    """A head's walk-forward leaderboard as publication stored it: every forecaster beside the baselines.
    The span of its points is at the top (publication) or under `info` (a whole `Leaderboard.as_dict()`)."""

    reference: str | None
    n_points: int | None
    first_target: str | None
    last_target: str | None
    rows: tuple[BoardRow, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    NAMES = ("reference", "n_points", "first_target", "last_target", "rows")

    @classmethod
    def read(cls, value: Any, where: str) -> BoardSummary:
        data = obj(value, where)
        span = obj(data.get("info", data), f"{where}.info")
        n_points = optional(data, "n_points", where, number)
        return cls(
            reference=optional(data, "reference", where, text),
            n_points=None if n_points is None else int(n_points),
            first_target=optional(span, "first_target", where, text),
            last_target=optional(span, "last_target", where, text),
            rows=tuple(
                BoardRow.read(r, f"{where}.rows[{i}]")
                for i, r in enumerate(items(data.get("rows", []), f"{where}.rows"))
            ),
            extra=rest(data, cls.NAMES),
        )

    def to_dict(self) -> dict[str, Any]:
        span = {} if "info" in self.extra else {"first_target": self.first_target, "last_target": self.last_target}
        named = present({"reference": self.reference, "n_points": self.n_points})
        return {**self.extra, **named, **span, "rows": [row.to_dict() for row in self.rows]}


def _skills(value: Any, where: str) -> dict[str, float]:
    """head → walk-forward skill; a lone number (the price skill, as early publishers wrote it) is the
    price head's."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"price": float(value)}
    return mapping_of(value, where, number)


def _boards(value: Any, where: str) -> dict[str, BoardSummary]:
    return mapping_of(value, where, BoardSummary.read)


@dataclass(frozen=True)
class Metrics:
    """The manifest's `metrics`: the published model's walk-forward scores per head, its leaderboards, the
    data range and calibration. `extra` holds the chosen member's own scores (validation, naive baseline,
    skill, …) and anything a later publisher adds."""

    selected: str | None = None
    walk_forward: dict[str, dict[str, Any]] | None = None
    walk_forward_skill: dict[str, float] | None = None
    leaderboards: dict[str, BoardSummary] | None = None
    data_range: DataRange | None = None
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    NAMES = ("selected", "walk_forward", "walk_forward_skill", "leaderboards", "data_range", "calibration")

    @classmethod
    def read(cls, value: Any, where: str = "metrics") -> Metrics:
        data = obj(value, where)
        return cls(
            selected=optional(data, "selected", where, text),
            walk_forward=optional(data, "walk_forward", where, lambda v, w: mapping_of(v, w, obj)),
            walk_forward_skill=optional(data, "walk_forward_skill", where, _skills),
            leaderboards=optional(data, "leaderboards", where, _boards),
            data_range=optional(data, "data_range", where, DataRange.read),
            calibration=optional(data, "calibration", where, obj),
            extra=rest(data, cls.NAMES),
        )

    @property
    def interval_level(self) -> float:
        """The interval head's coverage level, recorded by calibration (default 0.8 when not recorded)."""
        level = (self.calibration or {}).get("interval_level", DEFAULT_INTERVAL_LEVEL)
        value = number(level, "metrics.calibration.interval_level")
        if not 0 < value < 1:
            raise StoreError(f"metrics.calibration.interval_level must be a number in (0, 1), got {level!r}")
        return value

    def to_dict(self) -> dict[str, Any]:
        named = present(
            {
                "selected": self.selected,
                "walk_forward": self.walk_forward,
                "walk_forward_skill": self.walk_forward_skill,
                "leaderboards": None
                if self.leaderboards is None
                else {head: board.to_dict() for head, board in self.leaderboards.items()},
                "data_range": None
                if self.data_range is None
                else {"start": self.data_range.start, "end": self.data_range.end},
                "calibration": self.calibration,
            }
        )
        return {**self.extra, **named}


@dataclass(frozen=True)
class DataFacts:
    """The data configuration a version was trained with (`training.data`): what serving needs to label
    a live move as training did (the hold band) and everything else as recorded."""

    hold_band: float | None = None
    hold_band_sigmas: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any, where: str) -> DataFacts:
        data = obj(value, where)
        return cls(
            hold_band=optional(data, "hold_band", where, number),
            hold_band_sigmas=optional(data, "hold_band_sigmas", where, number),
            extra=rest(data, ("hold_band", "hold_band_sigmas")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **present({"hold_band": self.hold_band, "hold_band_sigmas": self.hold_band_sigmas})}


@dataclass(frozen=True)
class TrainingFacts:
    """The manifest's `training`: the data configuration (`data`), and in `extra` the budget, the members'
    specs and times, and for a single published model its run."""

    data: DataFacts | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any, where: str = "training") -> TrainingFacts:
        data = obj(value, where)
        return cls(data=optional(data, "data", where, DataFacts.read), extra=rest(data, ("data",)))

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **({} if self.data is None else {"data": self.data.to_dict()})}


def _weights(value: Any, where: str) -> dict[str, dict[str, float]]:
    """head → member → weight; one flat member → weight set (older publishers) is filed under "all"."""
    raw = obj(value, where)
    if raw and all(not isinstance(w, dict) for w in raw.values()):
        return {"all": mapping_of(raw, where, number)}
    return mapping_of(raw, where, lambda v, w: mapping_of(v, w, number))


@dataclass(frozen=True)
class EnsembleEntry:
    """The manifest's `ensemble` when the published graph is one: its name on the leaderboards, method,
    members, per-head weights, each member's outputs inside the graph (member → card output → graph
    output) and why it was published instead of its best member."""

    name: str
    method: str
    members: tuple[str, ...]
    weights: dict[str, dict[str, float]]
    member_outputs: dict[str, dict[str, str]]
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    NAMES = ("name", "method", "members", "weights", "member_outputs", "reason")

    @classmethod
    def read(cls, value: Any, where: str = "ensemble") -> EnsembleEntry | None:
        data = obj(value, where)
        if not data:
            return None  # a single model: `"ensemble": {}`
        return cls(
            name=text(data.get("name"), f"{where}.name"),
            method=text(data.get("method"), f"{where}.method"),
            members=tuple(text(m, f"{where}.members") for m in items(data.get("members", []), f"{where}.members")),
            weights=_weights(data.get("weights", {}), f"{where}.weights"),
            member_outputs=mapping_of(
                data.get("member_outputs", {}), f"{where}.member_outputs", lambda v, w: mapping_of(v, w, text)
            ),
            reason=optional(data, "reason", where, text),
            extra=rest(data, cls.NAMES),
        )

    def to_dict(self) -> dict[str, Any]:
        named = {
            "name": self.name,
            "method": self.method,
            "members": list(self.members),
            "weights": self.weights,
            "member_outputs": self.member_outputs,
        }
        return {**self.extra, **named, **present({"reason": self.reason})}


@dataclass(frozen=True)
class Probe:
    """Held-back windows stored with a variant (an npz of graph inputs) to check it on the serving CPU."""

    file: str
    windows: int

    @classmethod
    def read(cls, value: Any, where: str) -> Probe:
        data = obj(value, where)
        return cls(text(data.get("file"), f"{where}.file"), int(number(data.get("windows", 0), f"{where}.windows")))


@dataclass(frozen=True)
class Variant:
    """Another encoding of model.onnx serving may run instead (`variants["int8"]`): its file, the tolerance
    it was proved within against fp32, the probe windows to prove it again where it is served, and in
    `extra` how it was made and what it measured (quantization, parity, skill)."""

    file: str
    tolerance: dict[str, float] | None = None
    probe: Probe | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any, where: str) -> Variant:
        data = obj(value, where)
        return cls(
            file=text(data.get("file"), f"{where}.file"),
            tolerance=optional(data, "tolerance", where, lambda v, w: mapping_of(v, w, number)),
            probe=optional(data, "probe", where, Probe.read),
            extra=rest(data, ("file", "tolerance", "probe")),
        )

    def to_dict(self) -> dict[str, Any]:
        probe = None if self.probe is None else {"file": self.probe.file, "windows": self.probe.windows}
        return {**self.extra, "file": self.file, **present({"tolerance": self.tolerance, "probe": probe})}


def read_variants(value: Any, where: str = "variants") -> dict[str, Variant]:
    return mapping_of(value, where, Variant.read)
