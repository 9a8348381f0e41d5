"""Orbax checkpoints of a model's parameters, plus the JSON spec needed to rebuild it.

A trained-model directory holds `model.json` (registered name + config fields), `checkpoints/`
(orbax steps of the parameters, the best `keep` kept by validation loss, with their metrics) and
`train_state/` (the latest resumable training state: parameters, optimizer state, the best parameters
so far and the loop's bookkeeping as JSON). Nothing is pickled: any process can rebuild the module
from the registry and restore its parameters. A checkpoint that orbax cannot read is a `StoreError`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

from cse_models.errors import StoreError
from cse_models.models import MODELS, build_model
from cse_models.models.architectures import MODEL_STATE

SPEC_FILE = "model.json"
# What orbax raises on a directory it cannot read: missing or truncated files, bad JSON, tensorstore errors.
UNREADABLE = (ValueError, KeyError, OSError, TypeError, AttributeError)


class BestCheckpoints:
    """Keeps the `keep` best steps by validation loss (lower is better)."""

    def __init__(self, directory: str | Path, *, keep: int = 1) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, best_fn=lambda metrics: metrics["val_loss"], best_mode="min", create=True
        )
        self.manager = _open_manager(Path(directory).absolute(), options)

    def save(self, step: int, model: nnx.Module, metrics: dict[str, float]) -> None:
        if step in self.manager.all_steps():
            return  # a resumed run redoing this epoch: the deterministic replay wrote the same parameters
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
    except UNREADABLE as exc:
        raise StoreError(f"checkpoint step {step} in {manager.directory} is corrupt or incompatible: {exc}") from exc
    nnx.update(model, restored)


def _open_manager(directory: Path, options: ocp.CheckpointManagerOptions) -> ocp.CheckpointManager:
    try:
        return ocp.CheckpointManager(directory, options=options)
    except UNREADABLE as exc:
        raise StoreError(f"checkpoint directory {directory} is corrupt: {exc}") from exc


class TrainStateCheckpoints:
    """The latest resumable training state, saved every epoch (and every K steps when configured).

    The pytree item holds `model` (Param + BatchStat), `optimizer` (step count and optax state, which
    includes the current learning rate) and `best` (the best parameters so far, restored at the end of
    `fit`); the JSON item holds the loop's position and history. Dropout and augmentation keys and the
    epoch's data order are functions of (seed, step) and (seed, epoch), so they need no saved RNG state.
    """

    def __init__(self, directory: str | Path, *, keep: int = 2) -> None:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self.manager = _open_manager(Path(directory).absolute(), options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, tree: dict[str, Any], meta: dict[str, Any]) -> None:
        if step in self.manager.all_steps():
            return
        args = ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args)

    def restore(self, step: int, abstract: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The saved tree (in the shardings of `abstract`) and the JSON bookkeeping of `step`."""
        self.manager.wait_until_finished()
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
        try:
            restored = self.manager.restore(step, args=args)
        except UNREADABLE as exc:
            raise StoreError(
                f"training state step {step} in {self.manager.directory} is corrupt or incompatible: {exc}"
            ) from exc
        if restored.meta is None or restored.state is None:
            raise StoreError(f"training state step {step} in {self.manager.directory} is incomplete")
        return restored.state, restored.meta

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


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
