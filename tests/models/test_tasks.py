"""The tasks are registry entries (`cse_models.heads.tasks`): every task has an entry in every registry a
stage keeps per task, and no stage asks for a task by its name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cse_models.config import TASKS, DataConfig
from cse_models.datasets.graph_inputs import INPUT_BUILDERS
from cse_models.datasets.segments import TASK_TARGETS
from cse_models.errors import ConfigError
from cse_models.heads.graph import SERVING_FUNCTIONS
from cse_models.heads.layout import heads_of_task, input_names, network_outputs
from cse_models.heads.tasks import TASK_SPECS, card_tasks
from cse_models.scoring.baselines import LAST_MOVE_BANDS
from cse_models.scoring.segment import TASK_TRUTHS
from cse_models.training.losses import TASK_LOSSES
from cse_serving.answers import DECODERS
from cse_serving.live import HOLD_BANDS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("cse_models", "cse_serving", "cse_assets")


def test_the_config_validates_the_registered_tasks():
    assert sorted(TASKS) == TASK_SPECS.names()


@pytest.mark.parametrize("task", TASK_SPECS.names())
def test_every_task_has_an_entry_in_every_per_task_registry(task):
    spec = TASK_SPECS.get(task)
    for registry in (TASK_TARGETS, TASK_TRUTHS, SERVING_FUNCTIONS, TASK_LOSSES):
        registry.get(task)  # raises "unknown … ; known: …"
    assert task in DECODERS
    assert set(spec.graph_inputs) <= set(INPUT_BUILDERS)
    if spec.hold_band is not None:
        assert spec.hold_band in LAST_MOVE_BANDS and spec.hold_band in HOLD_BANDS
    assert len(spec.outputs()) >= len(spec.heads()) >= 1


def test_the_seed_tasks_keep_their_heads_and_the_forecast_task_has_every_head():
    assert heads_of_task("regression") == ("price",) and network_outputs("regression") == 1
    assert heads_of_task("classification") == ("direction",) and network_outputs("classification") == 3
    assert heads_of_task("forecast") == ("price", "interval", "volatility", "direction")
    assert network_outputs("forecast") == 5
    assert input_names("forecast") == ("features", "last_close") and input_names("regression") == ("features",)
    assert card_tasks() == ("forecast",)


def test_an_unknown_task_names_the_known_ones():
    for call in (lambda: heads_of_task("ranking"), lambda: DataConfig(task="ranking")):
        with pytest.raises(ConfigError, match="task must be one of") as error:
            call()
        assert all(repr(name) in str(error.value) for name in TASK_SPECS.names())


def _task_name_comparisons(path: Path) -> list[str]:
    """`<…>.task == "name"` / `!=` / `in (…names…)`: a comparison of a task with a literal name."""

    def is_task(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "task") or (
            isinstance(node, ast.Attribute) and node.attr == "task"
        )

    def is_literal(node: ast.expr) -> bool:
        return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or (
            isinstance(node, ast.Tuple | ast.List | ast.Set)
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
        )

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(is_task, operands)) and any(map(is_literal, operands)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_stage_compares_a_task_with_a_name():
    found = [
        hit for package in SOURCES for path in (ROOT / package).rglob("*.py") for hit in _task_name_comparisons(path)
    ]
    assert found == [], f"task-name branches (make them TaskSpec fields or per-task registry entries): {found}"
