"""Asset metadata built from library results: what the UI shows next to each materialization."""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue

from cse_models.data.clean import CleaningReport


def time_span(frame: pl.DataFrame, column: str = "open_time") -> dict[str, Any]:
    """Row count and first/last timestamp of a time-indexed table."""
    times = frame.get_column(column)
    return {
        "rows": frame.height,
        "first_open_time": str(times.min()) if frame.height else None,
        "last_open_time": str(times.max()) if frame.height else None,
    }


def cleaning_metadata(report: CleaningReport) -> dict[str, Any]:
    """The whole report as JSON, plus its counters as top-level numbers the UI can plot over runs."""
    fields = report.as_dict()
    counters = {k: v for k, v in fields.items() if isinstance(v, int) and not isinstance(v, bool)}
    return {"cleaning_report": MetadataValue.json(fields), **counters}
