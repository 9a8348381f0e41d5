"""The resumable state of one `fit` call: what is checkpointed, how a saved state is recognised, restored.

Everything random in the loop is a function of (seed, position), so model + optimizer + best parameters +
the loop position are all a restart needs to replay exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import jax
import numpy as np
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import DataError, StoreError
from cse_models.models.architectures import MODEL_STATE
from cse_models.training.config import TrainingConfig
from cse_models.training.history import EpochLog, FitResult
from cse_models.training.schedules import PlateauRule

log = logging.getLogger(__name__)


def run_fingerprint(
    model: nnx.Module, train: SplitArrays, val: SplitArrays, data_cfg: DataConfig, cfg: TrainingConfig
) -> str:
    """What a saved training state must match to be resumed: numerics-relevant config, data, model shapes."""
    ignored = {"tensorboard", "eval_batch_size", "checkpoint_every_steps", "keep_best"}
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(cfg).items() if k not in ignored}
    digest.update(json.dumps([settings, asdict(data_cfg)], sort_keys=True, default=str).encode())
    for array in (train.x, train.y, val.x, val.y):
        digest.update(np.ascontiguousarray(array).tobytes())
    shapes = jax.tree.map(lambda a: (a.shape, str(a.dtype)), nnx.state(model, MODEL_STATE))
    digest.update(str(jax.tree.leaves(shapes)).encode())
    return digest.hexdigest()


@dataclass
class LoopPosition:
    """Where the loop is: what the JSON item of a training-state checkpoint holds."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    plateau: dict[str, float] = field(default_factory=dict)


class ResumableRun:
    """The state of one `fit` call: model, optimizer, best parameters, position and checkpoint stores."""

    def __init__(self, model, optimizer, cfg, fingerprint, store, tensorboard):
        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        self.fingerprint, self.store, self.tensorboard = fingerprint, store, tensorboard
        self.result, self.position = FitResult(), LoopPosition()
        self.best_state = None
        self.plateau = PlateauRule(cfg.plateau_factor, cfg.plateau_patience)
        self.pending: list[tuple[int, jax.Array]] = []  # (step, loss) not yet checked for NaN

    def tree(self) -> dict:
        model_state = nnx.state(self.model, MODEL_STATE)
        best = self.best_state if self.best_state is not None else model_state
        return {"model": model_state, "optimizer": nnx.state(self.optimizer), "best": best}

    def save(self) -> None:
        if self.store is None:
            return
        self.check_finite()
        meta = {
            "fingerprint": self.fingerprint,
            "position": asdict(self.position),
            "has_best": self.best_state is not None,
            "result": {**asdict(self.result), "history": [asdict(e) for e in self.result.history]},
            "metrics": asdict(self.result.history[-1]) if self.result.history else {},
        }
        self.store.save(self.position.step, self.tree(), meta)

    def resume(self) -> None:
        step = self.store.latest_step() if self.store is not None else None
        if step is None:
            return
        tree, meta = self.store.restore(step, self.tree())
        if meta.get("fingerprint") != self.fingerprint:
            raise StoreError(
                f"training state in {self.store.manager.directory} was written by a different run (config, data "
                "or model differ); delete it or train into another directory"
            )
        nnx.update(self.model, tree["model"])
        nnx.update(self.optimizer, tree["optimizer"])
        self.best_state = tree["best"] if meta["has_best"] else None
        self.position = LoopPosition(**meta["position"])
        result = meta["result"]
        self.result = FitResult(
            [EpochLog(**e) for e in result["history"]],
            result["best_epoch"],
            result["best_val_loss"],
            result["stopped_early"],
        )
        if self.position.plateau:
            self.plateau.load(self.position.plateau)
        log.info("resumed from step %d (epoch %d, batch %d)", step, self.position.epoch, self.position.batch)

    def check_finite(self) -> None:
        """Raise DataError naming the first step whose loss is not finite; nothing after it is saved."""
        for step, loss in self.pending:
            value = float(loss)
            if not np.isfinite(value):
                raise DataError(
                    f"training diverged: loss is {value} at step {step} (epoch {self.position.epoch}); "
                    "the last good checkpoint is kept"
                )
            self.position.epoch_losses.append(value)
        self.pending.clear()
