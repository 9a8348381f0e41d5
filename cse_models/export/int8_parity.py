"""What an int8 variant must agree with its fp32 graph on, measured one way wherever it is measured: the
publisher on the held-back test windows, serving on the probe windows stored with the version, on its own
CPU (dynamic quantization's integer kernels differ by CPU: u8×s8 multiply-adds can saturate on x86
without VNNI, see `cse_models.export.quantize`).

numpy and an onnxruntime session in, numbers out: no onnx, no JAX, so serving imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.heads.layout import INPUT_NAME

PRICE_OUTPUT = "close"
DIRECTION_OUTPUT = "probabilities"
PROBE_FILE = "model.int8.probe.npz"
PROBE_WINDOWS = 32
"""Held-back windows stored with a variant: enough to cross the test segment's regimes, few enough that
serving checks them at load in well under a second (fp32 and int8, each alone and all at once)."""


@dataclass(frozen=True)
class Int8Tolerance:
    """What an int8 variant may differ from fp32 on held-back inputs. `price_max_rel`: max |Δclose| / |close|
    (the issue's goal, 1e-3); `probabilities_max_abs`: max |Δp| of any class probability."""

    price_max_rel: float = 1e-3
    probabilities_max_abs: float = 0.02

    def exceeded(self, parity: Mapping[str, Mapping[str, float]]) -> list[str]:
        """One sentence per limit the parity report breaks (empty: within tolerance)."""
        broken = []
        if PRICE_OUTPUT in parity and not parity[PRICE_OUTPUT]["max_rel"] <= self.price_max_rel:
            broken.append(
                f"price ({PRICE_OUTPUT!r}) max rel {parity[PRICE_OUTPUT]['max_rel']:.3g} > {self.price_max_rel}"
            )
        if DIRECTION_OUTPUT in parity and not parity[DIRECTION_OUTPUT]["max_abs"] <= self.probabilities_max_abs:
            broken.append(
                f"direction ({DIRECTION_OUTPUT!r}) max abs {parity[DIRECTION_OUTPUT]['max_abs']:.3g} "
                f"> {self.probabilities_max_abs}"
            )
        return broken


TOLERANCE = Int8Tolerance()
"""The publisher's default: what a variant must meet to ship."""


def run_in_batches(
    session: Any, names: Sequence[str], inputs: Mapping[str, np.ndarray], batch: int
) -> list[np.ndarray]:
    """Every output over all rows of `inputs` (each `[windows, ...]`), `batch` windows per call, concatenated."""
    count = next(iter(inputs.values())).shape[0]
    chunks = [
        session.run(list(names), {k: np.ascontiguousarray(v[i : i + batch]) for k, v in inputs.items()})
        for i in range(0, count, batch)
    ]
    return [np.concatenate([chunk[j] for chunk in chunks]) for j in range(len(names))]


def parity(
    fp32: Any,
    int8: Any,
    names: Sequence[str],
    inputs: Mapping[str, np.ndarray],
    batches: Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """Per output: max |int8 − fp32| and max |int8 − fp32| / |fp32| over `inputs`, each window alone
    (batch 1) and all at once (dynamic quantization depends on the batch), the worse of the two. `inputs`
    are keyed by graph input name, each `[windows, ...]`."""
    count = next(iter(inputs.values())).shape[0]
    report = {name: {"max_abs": 0.0, "max_rel": 0.0} for name in names}
    for batch in batches or (1, count):
        want = run_in_batches(fp32, names, inputs, batch)
        have = run_in_batches(int8, names, inputs, batch)
        for name, a, b in zip(names, want, have, strict=True):
            diff = np.abs(b.astype(np.float64) - a)
            rel = diff / np.maximum(np.abs(a), 1e-12)
            report[name]["max_abs"] = max(report[name]["max_abs"], float(diff.max()))
            report[name]["max_rel"] = max(report[name]["max_rel"], float(rel.max()))
    return report


def probe_rows(count: int, windows: int = PROBE_WINDOWS) -> np.ndarray:
    """`windows` row indices spread evenly over `count` held-back windows (all of them when fewer)."""
    return np.unique(np.linspace(0, count - 1, min(windows, count)).round().astype(np.int64))


def write_probe(path: str | Path, inputs: Mapping[str, np.ndarray]) -> int:
    """Write the probe windows (`probe_rows` of `inputs`) as an uncompressed npz of float32 arrays keyed by
    graph input name (no pickle) → how many windows it holds."""
    rows = probe_rows(inputs[INPUT_NAME].shape[0])
    with Path(path).open("wb") as handle:
        np.savez(handle, **{name: np.asarray(value, dtype=np.float32)[rows] for name, value in inputs.items()})
    return int(rows.size)


def read_probe(path: str | Path) -> dict[str, np.ndarray]:
    """The probe's arrays by graph input name; ValueError for anything but plain arrays (no pickle)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
