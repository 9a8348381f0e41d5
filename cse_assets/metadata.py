"""Asset metadata built from library results: what the UI shows next to each materialization.

Counts and rankings go out as Dagster tables (`TableMetadataValue`): the UI renders them sortable in the
asset's page, unlike Markdown in a modal. Single numbers stay top-level values, which the UI plots over
runs (e.g. duplicates removed per refresh). Nothing here imports JAX.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from cse_assets.charts import loss_curve_png, png_markdown
from cse_models.data.clean import CleaningReport
from cse_models.evaluation.report import Leaderboard, Leaderboards
from cse_models.evaluation.universe import HAR, head_summary
from cse_models.features.windows import CLASS_NAMES
from cse_models.publication.global_model import GlobalModel
from cse_models.scoring.rules import SCORING
from cse_models.store import HeadVerdict
from cse_models.training.summary import TrainedModel


def time_span(frame: pl.DataFrame, column: str = "open_time") -> dict[str, Any]:
    """Row count and first/last timestamp of a time-indexed table."""
    times = frame.get_column(column)
    return {
        "rows": frame.height,
        "first_open_time": str(times.min()) if frame.height else None,
        "last_open_time": str(times.max()) if frame.height else None,
    }


def count_table(counts: Mapping[str, int], description: str) -> MetadataValue:
    """Named counts as a two-column table."""
    schema = TableSchema([TableColumn("what", "string"), TableColumn("count", "int", description=description)])
    return MetadataValue.table([TableRecord({"what": k, "count": int(v)}) for k, v in counts.items()], schema)


def cleaning_metadata(report: CleaningReport) -> dict[str, Any]:
    """The whole report as JSON, its counts (bad ticks per reason included) as a table, and the counters
    as top-level numbers the UI can plot over runs."""
    fields = report.as_dict()
    counters = {k: v for k, v in fields.items() if isinstance(v, int) and not isinstance(v, bool)}
    reasons = {f"bad_ticks/{reason}": n for reason, n in report.bad_tick_reasons.items()}
    return {
        "cleaning_report": MetadataValue.json(fields),
        "cleaning_counts": count_table({**counters, **reasons}, "rows or candles"),
        **counters,
    }


def leaderboard_table(board: Leaderboard) -> MetadataValue:
    """One head's leaderboard: forecasters (models and baselines) by skill against the head's reference."""
    metrics = [key for key, _ in SCORING[board.head].columns]
    columns = [
        TableColumn("forecaster", "string"),
        TableColumn("kind", "string"),
        TableColumn("skill", "float", description=f"1 − {SCORING[board.head].skill_metric} / reference's"),
        TableColumn("dm_p_better", "float", description=f"one-sided Diebold–Mariano p vs {board.reference}"),
        *(TableColumn(key, "float") for key in metrics),
    ]
    records = [
        TableRecord(
            {
                "forecaster": row.name,
                "kind": row.kind,
                "skill": round(row.skill, 6),
                "dm_p_better": float(f"{row.dm.p_value_model_better:.4g}"),
                **{key: round(float(row.metrics[key]), 6) for key in metrics},
            }
        )
        for row in board.rows
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


def heads_table(heads: tuple[HeadVerdict, ...]) -> MetadataValue:
    """The published version's heads: served or not, walk-forward skill, the gate's verdict."""
    columns = [
        TableColumn("head", "string"),
        TableColumn("served", "string", description="yes, no, or forced (published although the gate failed)"),
        TableColumn("skill", "float", description="walk-forward skill against the reference"),
        TableColumn("reference", "string"),
        TableColumn("dm_p", "float", description="one-sided Diebold–Mariano p (model better)"),
        TableColumn("verdict", "string"),
    ]
    records = [
        TableRecord(
            {
                "head": h.name,
                "served": "forced" if h.forced else ("yes" if h.publish else "no"),
                "skill": round(h.skill, 6),
                "reference": h.reference,
                "dm_p": float(f"{h.p_value:.4g}"),
                "verdict": h.reason,
            }
        )
        for h in heads
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


def confusion_table(confusion: list[list[int]], class_names: tuple[str, ...]) -> MetadataValue:
    """Rows = true class, columns = predicted class."""
    columns = [TableColumn("true", "string"), *(TableColumn(f"predicted {name}", "int") for name in class_names)]
    records = [
        TableRecord({"true": name, **{f"predicted {p}": int(v) for p, v in zip(class_names, row, strict=True)}})
        for name, row in zip(class_names, confusion, strict=True)
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


def training_metadata(trained: TrainedModel) -> dict[str, Any]:
    """Size, epochs, speed and the loss curve of a training run; validation scores per head beside the
    head's naive baseline; the calibration baked into the exported graph."""
    last = trained.history[-1] if trained.history else {}
    meta: dict[str, Any] = {
        "architecture": trained.name,
        "parameters": trained.parameters,
        "epochs_run": len(trained.history),
        "best_epoch": trained.best_epoch,
        "stopped_early": trained.stopped_early,
        "train_seconds": round(trained.seconds, 2),
        "samples_per_s": round(last.get("samples_per_s", 0.0), 1),
        "devices": trained.devices,
        "loss_curve": MetadataValue.md(png_markdown(loss_curve_png(trained.history, trained.name), "loss curve")),
    }
    for head, skill in trained.metrics["skill"].items():
        meta[f"validation_skill/{head}"] = float(skill)
    for group in ("validation", "naive_baseline"):
        for head, values in trained.metrics[group].items():
            meta.update({f"{group}/{head}/{k}": float(v) for k, v in values.items() if isinstance(v, int | float)})
    if trained.calibration is not None:
        meta.update({f"calibration/{k}": v for k, v in trained.calibration.items() if isinstance(v, int | float)})
        prior = dict(zip(CLASS_NAMES, trained.calibration["class_prior"], strict=True))
        meta["calibration/class_prior"] = MetadataValue.json(prior)
    confusion = trained.metrics["validation"].get("direction", {}).get("confusion_matrix")
    if confusion is not None:
        meta["confusion_matrix"] = confusion_table(confusion, CLASS_NAMES)
    return meta


def reason_table(reasons: Mapping[str, str], description: str) -> MetadataValue:
    """Symbols and why (e.g. the symbols a global model did not learn from)."""
    schema = TableSchema([TableColumn("symbol", "string"), TableColumn("reason", "string", description=description)])
    return MetadataValue.table([TableRecord({"symbol": k, "reason": v}) for k, v in reasons.items()], schema)


def global_model_metadata(model: GlobalModel, graph_sha256: str) -> dict[str, Any]:
    """A global model's learners, calendar cut and graph, beside the usual training metadata."""
    facts = model.facts("")
    return {
        **training_metadata(model.trained),
        "learners": list(model.learners),
        "learned_before": facts["learned_before"],
        "held_out_from": facts["held_out_from"],
        "split": MetadataValue.json({k: list(v) for k, v in model.split.bounds.items()}),
        "graph": MetadataValue.path(model.exported.path),
        "graph_sha256": graph_sha256,
    }


def _skill(entry: dict[str, Any] | None) -> float | None:
    return None if entry is None else round(entry["skill"], 6)


def global_vs_own_table(held_out: Leaderboards, own: Leaderboards | None) -> MetadataValue:
    """Per head: the best global model's held-out skill, the symbol's own best walk-forward skill (None
    without an `evaluation`) and HAR's held-out skill (volatility). Each skill is against the head's
    reference on its own board's points; the two checks score different points."""
    columns = [
        TableColumn("head", "string"),
        TableColumn("best_global", "string"),
        TableColumn("global_skill", "float", description="held out, after the global cut"),
        TableColumn("global_dm_p", "float", description="one-sided Diebold–Mariano p (model better)"),
        TableColumn("best_own", "string"),
        TableColumn("own_skill", "float", description="the symbol's own walk-forward (other points)"),
        TableColumn("har_skill", "float", description="HAR on the held-out points (volatility)"),
    ]
    records = []
    for head, board in held_out.boards.items():
        summary = head_summary(board)
        best = summary["best_global"]
        mine = head_summary(own[head])["best_own"] if own is not None and head in own.boards else None
        record = {
            "head": head,
            "best_global": best and best["name"],
            "global_skill": _skill(best),
            "global_dm_p": best and float(f"{best['p_value']:.4g}"),
            "best_own": mine and mine["name"],
            "own_skill": _skill(mine),
            "har_skill": _skill(summary.get(HAR)),
        }
        records.append(TableRecord(record))
    return MetadataValue.table(records, schema=TableSchema(columns))
