"""Metadata tables built from library results (the materialized ones are checked in the graph tests)."""

from __future__ import annotations

from cse_assets.metadata import confusion_table
from cse_models.features.windows import CLASS_NAMES


def test_confusion_matrix_is_a_table_of_true_rows_by_predicted_columns() -> None:
    confusion = [[5, 1, 0], [2, 7, 1], [0, 0, 3]]
    table = confusion_table(confusion, CLASS_NAMES)
    assert [c.name for c in table.schema.columns] == ["true", *(f"predicted {name}" for name in CLASS_NAMES)]
    assert [record.data["true"] for record in table.records] == list(CLASS_NAMES)
    second = table.records[1].data
    assert [second[f"predicted {name}"] for name in CLASS_NAMES] == confusion[1]
