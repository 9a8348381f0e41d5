"""Publication assembled once: from what a refresh (or `cse-models train --publish`) produced — trained
and exported members, their walk-forward leaderboards and gate verdicts, and optionally the fitted and
composed ensemble — to one version in the model store.

The choice: the ensemble (ONE graph holding every member) when its walk-forward price skill beats its best
member's (or `publish_ensemble="always"`, or no member passed alone), else the member with the most heads
through the gate (`select_best`). Every trained model is listed as a member. The manifest records the
chosen model's metrics, each head's verdict, the leaderboards, the data range, the training facts and the
int8 variant. The Dagster asset and the CLI call `publish_candidates`; neither assembles a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cse_models.datasets.prepared import PreparedSeries
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.errors import PublicationError
from cse_models.evaluation.report import Leaderboards, PromotionDecision
from cse_models.export.exported import ExportedModel
from cse_models.heads.layout import FORECAST_OUTPUTS
from cse_models.publication.ensemble_choice import EnsembleChoice, ensemble_or_member
from cse_models.publication.publish import (
    PublishRequest,
    Variants,
    data_range,
    head_verdicts,
    leaderboard_summary,
    publish,
    quantized_variants,
    select_best,
)
from cse_models.specs import ModelSpec
from cse_models.store import Manifest, Member, ModelStore
from cse_models.training.summary import TrainedModel

PUBLISH_ENSEMBLE = ("if_better", "always")


@dataclass(frozen=True)
class Candidates:
    """What publication chooses from, for one symbol: the series the members learned from, the members
    (spec, trained, exported), their leaderboards and verdicts (model name → head → decision), and the
    fitted ensemble with its composed graph when there is one."""

    symbol: str
    interval: str
    prepared: PreparedSeries
    specs: tuple[ModelSpec, ...]
    trained: Mapping[str, TrainedModel]
    exported: Mapping[str, ExportedModel]
    boards: Leaderboards
    decisions: Mapping[str, Mapping[str, PromotionDecision]]
    budget: dict[str, Any]  # the training budget the members ran (TrainingConfig as a dict)
    ensemble: FittedEnsemble | None = None
    composed: ExportedModel | None = None
    publish_ensemble: str = "if_better"
    scope: dict[str, Any] = field(default_factory=dict)  # a global model's facts → the manifest's training.global

    def __post_init__(self) -> None:
        if self.publish_ensemble not in PUBLISH_ENSEMBLE:
            raise PublicationError(f"publish_ensemble must be one of {PUBLISH_ENSEMBLE}, got {self.publish_ensemble!r}")
        if (self.ensemble is None) != (self.composed is None):
            raise PublicationError("an ensemble is published with its composed graph: give both or neither")


@dataclass(frozen=True)
class Publication:
    """What was published and why: the stored manifest, the model chosen, the ensemble decision (None
    without an ensemble), the graph file and the int8 note."""

    manifest: Manifest
    selected: str
    choice: EnsembleChoice | None
    onnx_path: Path
    variants_note: str


@dataclass(frozen=True)
class Selection:
    name: str
    uses_ensemble: bool
    choice: EnsembleChoice | None
    by_setting: bool  # the ensemble is published only because publish_ensemble="always"


def select(candidates: Candidates) -> Selection:
    """The ensemble or the best member whose heads passed the gate; PublicationError when none did."""
    c = candidates
    allowed = {name for name, heads in c.decisions.items() if any(d.publish for d in heads.values())}
    members_allowed = {name: c.decisions[name] for name in allowed if name in c.trained}
    fitted = c.ensemble
    choice = None if fitted is None else ensemble_or_member(c.boards, fitted.name, tuple(c.trained))
    always = c.publish_ensemble == "always"
    uses_ensemble = (
        fitted is not None and fitted.name in allowed and (choice.publish_ensemble or always or not members_allowed)
    )
    if not uses_ensemble and not members_allowed:
        raise PublicationError(
            "no head of any model passed the promotion gate: "
            + "; ".join(f"{n}/{h}: {d.reason}" for n, heads in c.decisions.items() for h, d in heads.items())
        )
    name = fitted.name if uses_ensemble else select_best(c.boards, members_allowed)
    by_setting = uses_ensemble and always and not choice.publish_ensemble
    return Selection(name, uses_ensemble, choice, by_setting)


def publish_candidates(store: ModelStore, candidates: Candidates, *, workdir: Path, keep: int = 5) -> Publication:
    """Choose, quantize, assemble the manifest and publish atomically → what was published."""
    chosen = select(candidates)
    graph = candidates.composed if chosen.uses_ensemble else candidates.exported[chosen.name]
    onnx_path = Path(graph.path)
    variants = quantized_variants(onnx_path, workdir / "variants", candidates.prepared)
    request = publish_request(candidates, chosen, graph, variants)
    manifest = publish(store, request, workdir=workdir, keep=keep)
    return Publication(manifest, chosen.name, chosen.choice, onnx_path, variants.note)


def publish_request(
    candidates: Candidates, chosen: Selection, graph: ExportedModel, variants: Variants
) -> PublishRequest:
    c = candidates
    several = len(c.specs) > 1
    return PublishRequest(
        symbol=c.symbol,
        interval=c.interval,
        data=c.prepared.config,
        scaler=c.prepared.scaler,
        onnx_path=Path(graph.path),
        members=published_members(c.trained, chosen.name, c.ensemble if chosen.uses_ensemble else None),
        metrics=published_metrics(c, chosen, graph),
        training=training_facts(c, chosen),
        member_paths={} if chosen.uses_ensemble or not several else {n: Path(e.path) for n, e in c.exported.items()},
        heads=head_verdicts(c.boards, chosen.name, dict(c.decisions[chosen.name])),
        ensemble=ensemble_entry(c.ensemble, chosen.choice, graph, chosen.by_setting) if chosen.uses_ensemble else {},
        variants=variants.variants,
        variant_files=variants.files,
    )


def published_metrics(c: Candidates, chosen: Selection, graph: ExportedModel) -> dict[str, Any]:
    """The manifest's `metrics`: the chosen model's own (a member's validation scores and calibration),
    its walk-forward scores per head, every member's validation, the leaderboards and the data range."""
    best = chosen.name
    member = c.trained.get(best)
    heads = tuple(c.decisions[best])
    return {
        **(member.metrics if member else {}),
        "parity": graph.parity,
        "selected": best,
        **({"calibration": member.calibration} if member else {}),
        "walk_forward": {head: c.boards[head].row(best).metrics for head in heads},
        "walk_forward_skill": {head: c.boards[head].row(best).skill for head in heads},
        "members": {name: t.metrics["validation"] for name, t in c.trained.items()},
        "leaderboards": leaderboard_summary(c.boards, heads),
        "data_range": data_range(dict(c.prepared.segments)),
        **({"ensemble_choice": chosen.choice.reason} if chosen.choice else {}),
    }


def training_facts(c: Candidates, chosen: Selection) -> dict[str, Any]:
    """The manifest's `training`: the budget, each member's spec, time and model config, and for a single
    published member its run (epochs, best epoch, seconds, devices)."""
    members = {
        s.name: {"spec": s.as_dict(), "seconds": c.trained[s.name].seconds, "model": c.trained[s.name].config}
        for s in c.specs
    }
    scope = {"global": c.scope} if c.scope else {}
    if chosen.uses_ensemble:
        return {"budget": c.budget, "members": members, **scope}
    best = c.trained[chosen.name]
    return {
        **scope,
        "budget": c.budget,
        "members": members,
        "spec": next(s for s in c.specs if s.name == chosen.name).as_dict(),
        "model": best.config,
        "epochs_run": len(best.history),
        "best_epoch": best.best_epoch,
        "seconds": best.seconds,
        "devices": best.devices,
    }


def published_members(
    trained: Mapping[str, TrainedModel], best: str, fitted: FittedEnsemble | None
) -> tuple[Member, ...]:
    """Every trained model as a member: an ensemble's with its price weights (equal for a median), a single
    model's with weight 1 for the published one and 0 for the others."""
    if fitted is None:
        return tuple(Member(name, t.name, 1.0 if name == best else 0.0) for name, t in trained.items())
    price = fitted.weights().get("price", dict.fromkeys(fitted.members, 1 / len(fitted.members)))
    return tuple(Member(name, trained[name].name, price[name]) for name in fitted.members)


def ensemble_entry(fitted: FittedEnsemble, choice: EnsembleChoice, composed: ExportedModel, by_setting: bool) -> dict:
    """The manifest's `ensemble`: what it is, how it combines, where its members' outputs are, and why."""
    from cse_models.ensembles.compose import member_output  # onnx: not at import, the definitions load light

    return {
        "name": fitted.name,
        "method": fitted.method,
        "members": list(fitted.members),
        "weights": fitted.weights(),
        "combiners": fitted.to_dict()["combiners"],
        "interval_scale": fitted.interval_scale,
        "member_outputs": {m: {o: member_output(m, o) for o in FORECAST_OUTPUTS} for m in fitted.members},
        "reason": choice.reason + ("; published because publish_ensemble='always'" if by_setting else ""),
        "skill": {"ensemble": choice.ensemble_skill, choice.best_member: choice.best_member_skill},
        "op_types": composed.op_types,
    }
