"""TensorBoard event files for a training run (tensorboardX: no TensorFlow needed).

`fit` writes per-epoch `loss/train`, `loss/val`, `lr` and `throughput/samples_per_s`, keyed by the
global step, so the curves of a resumed run continue where the crashed one stopped.
"""

from __future__ import annotations

from pathlib import Path


class TensorBoardLog:
    def __init__(self, directory: str | Path) -> None:
        from tensorboardX import SummaryWriter  # imported here: only runs that log pay for it

        self.writer = SummaryWriter(str(directory))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()
