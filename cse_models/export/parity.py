"""The one comparison behind every parity proof — a network's graph against JAX, a classical member's
against its Python model, a composed ensemble against `FittedEnsemble.combine`: each output within
atol + rtol·|expected|, the worst differences kept for the report. numpy only (no JAX)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cse_models.errors import ExportParityError

RTOL, ATOL = 1e-3, 1e-5


@dataclass(frozen=True)
class ParityReport:
    batches: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    rtol: float
    atol: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class ParityCheck:
    """Compares output after output; the first beyond tolerance raises ExportParityError naming it."""

    subject: str  # "ONNX and JAX", "composed ensemble 'x' and Python", …
    rtol: float = RTOL
    atol: float = ATOL
    batches: list[int] = field(default_factory=list)
    max_abs: float = 0.0
    max_rel: float = 0.0

    def compare(self, what: str, have: np.ndarray, want: np.ndarray, batch: int) -> None:
        have, want = np.asarray(have, np.float64), np.asarray(want, np.float64)
        diff = np.abs(have - want)
        self.max_abs = max(self.max_abs, float(diff.max()))
        self.max_rel = max(self.max_rel, float((diff / np.maximum(np.abs(want), 1e-12)).max()))
        if batch not in self.batches:
            self.batches.append(batch)
        if not np.allclose(have, want, rtol=self.rtol, atol=self.atol):
            raise ExportParityError(
                f"{self.subject} differ on {what!r} at batch {batch}: max abs {diff.max():.3g} "
                f"(rtol {self.rtol}, atol {self.atol})"
            )

    def report(self) -> ParityReport:
        return ParityReport(tuple(self.batches), self.max_abs, self.max_rel, self.rtol, self.atol)


def require_windows(count: int, batch: int) -> None:
    if count < batch:
        raise ExportParityError(f"parity needs ≥ {batch} windows, got {count}")
