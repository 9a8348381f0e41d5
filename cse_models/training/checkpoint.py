"""Orbax checkpoints of a model's parameters, plus the JSON spec needed to rebuild it.

A trained-model directory holds `model.json` (registered name + config fields) and `checkpoints/`
(orbax steps, best kept by validation loss). Nothing is pickled: any process can rebuild the module
from the registry and restore its parameters.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from flax import nnx

from cse_models.errors import StoreError
from cse_models.models import MODELS, build_model
from cse_models.models.registry import MODEL_STATE

SPEC_FILE = "model.json"


class BestCheckpoints:
    """Keeps the `keep` best steps by validation loss (lower is better)."""

    def __init__(self, directory: str | Path, *, keep: int = 1) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, best_fn=lambda metrics: metrics["val_loss"], best_mode="min", create=True
        )
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=options)

    def save(self, step: int, model: nnx.Module, metrics: dict[str, float]) -> None:
        params = nnx.state(model, MODEL_STATE)
        self.manager.save(step, args=ocp.args.StandardSave(params), metrics=metrics)

    def restore_best(self, model: nnx.Module) -> int:
        self.manager.wait_until_finished()
        step = self.manager.best_step()
        if step is None:
            raise StoreError(f"no checkpoint in {self.manager.directory}")
        restore_params(self.manager, step, model)
        return step

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def restore_params(manager: ocp.CheckpointManager, step: int, model: nnx.Module) -> None:
    abstract = nnx.state(model, MODEL_STATE)
    try:
        restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise StoreError(f"checkpoint step {step} in {manager.directory} cannot be restored: {exc}") from exc
    nnx.update(model, restored)


def save_model_spec(directory: str | Path, name: str, cfg: Any) -> None:
    spec = {"name": name, "config": dataclasses.asdict(cfg)}
    (Path(directory) / SPEC_FILE).write_text(json.dumps(spec, indent=2))


def load_trained_model(directory: str | Path) -> nnx.Module:
    """Rebuild the registered model described by `model.json` and restore its best checkpoint."""
    directory = Path(directory)
    try:
        spec = json.loads((directory / SPEC_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise StoreError(f"{directory / SPEC_FILE} is missing or unreadable: {exc}") from exc
    entry = MODELS.get(spec["name"])
    model = build_model(spec["name"], entry.config_cls(**spec["config"]), rngs=nnx.Rngs(0))
    checkpoints = BestCheckpoints(directory / "checkpoints")
    try:
        checkpoints.restore_best(model)
    finally:
        checkpoints.close()
    model.eval()
    return model
