"""Affine feature scalers stored as JSON — never pickle.

Every kind reduces to `scaled = x * scale + min` per feature (scikit-learn's MinMaxScaler convention),
then an optional symmetric clip (the robust kind clips at ±`clip`, so one flash crash cannot dominate a
window), so applying, inverting and folding a scaler into the ONNX graph is the same few operations.
The scaler records which rows it was fit on, so an asset check can prove it saw train rows only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cse_models.errors import DataError
from cse_models.registry import Registry


@dataclass(frozen=True)
class FittedScaler:
    kind: str
    feature_names: tuple[str, ...]
    min: tuple[float, ...]
    scale: tuple[float, ...]
    fit_rows: int
    fit_first_time_ms: int | None = None
    fit_last_time_ms: int | None = None
    clip: float | None = None  # scaled values are clipped to [-clip, clip]

    def transform(self, x: np.ndarray) -> np.ndarray:
        """[..., features] → scaled, same shape (float64 unless x is float32)."""
        self._check_width(x)
        scaled = x * np.asarray(self.scale, x.dtype) + np.asarray(self.min, x.dtype)
        return scaled if self.clip is None else np.clip(scaled, -self.clip, self.clip)

    def transform_column(self, values: np.ndarray, i: int, out: np.ndarray) -> np.ndarray:
        """Feature `i` of float64 rows `[rows]` scaled into `out` (float64 `[rows]`): the numbers of
        `transform(x)[:, i]`, without the `[rows, f]` temporaries that a whole-matrix transform allocates."""
        np.multiply(values, self.scale[i], out=out)
        np.add(out, self.min[i], out=out)
        return out if self.clip is None else np.clip(out, -self.clip, self.clip, out=out)

    def inverse_column(self, values: np.ndarray, name: str) -> np.ndarray:
        """Undo the scaling of one feature (e.g. a predicted close)."""
        i = self.feature_names.index(name)
        return (values - self.min[i]) / self.scale[i]

    def _check_width(self, x: np.ndarray) -> None:
        if x.shape[-1] != len(self.feature_names):
            raise DataError(f"scaler expects {len(self.feature_names)} features, got {x.shape[-1]}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def from_json(cls, text: str) -> FittedScaler:
        try:
            data = json.loads(text)
            scaler = cls(
                **{
                    **data,
                    "feature_names": tuple(data["feature_names"]),
                    "min": tuple(data["min"]),
                    "scale": tuple(data["scale"]),
                }
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"scaler.json is not a valid scaler: {exc}") from exc
        if not (len(scaler.min) == len(scaler.scale) == len(scaler.feature_names)):
            raise DataError("scaler.json: feature_names, min and scale differ in length")
        return scaler

    @classmethod
    def load(cls, path: str | Path) -> FittedScaler:
        return cls.from_json(Path(path).read_text())


ScalerFit = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
SCALERS: Registry[ScalerFit] = Registry("scaler")
SCALER_CLIP = {"robust": 5.0}  # in robust standard deviations; the other kinds do not clip
_MAD_TO_STD = 1.4826  # MAD of a normal distribution × 1.4826 = its standard deviation


@SCALERS.register("minmax")
def _minmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """To [-1, 1] as the seeds did; a constant column maps to -1 (range taken as 1, like scikit-learn)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    scale = 2.0 / span
    return -1.0 - lo * scale, scale


@SCALERS.register("standard")
def _standard(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    scale = 1.0 / np.where(std > 0, std, 1.0)
    return -mean * scale, scale


def _median_in_place(values: np.ndarray, column: np.ndarray | None) -> float:
    """np.median of `column` (of `values` when None), bit for bit, from one single-rank partition of `values`
    (a copy of it, reordered here).

    np.median partitions at two or three ranks (the middle ones and the last, for its NaN check), which takes
    numpy's generic introselect; a single rank takes its vectorized quickselect, ~4× faster. The lower middle
    of an even count is then the maximum of the half below, and the mean of the two middles is computed as
    np.mean computes it: (a + b) / 2. Equal values are interchangeable except −0.0 and +0.0, so a zero
    middle falls back to np.median of `column` (pass None only for values without −0.0, e.g. absolute values)."""
    half = values.size // 2
    values.partition(half)
    upper = values[half]
    middles = (upper,) if values.size % 2 else (values[:half].max(), upper)
    if column is not None and 0.0 in middles:
        return float(np.median(column))
    return middles[0] if len(middles) == 1 else (middles[0] + middles[1]) / 2


@SCALERS.register("robust")
def _robust(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x − median) / (1.4826 · MAD), as Qlib's RobustZScoreNorm: heavy tails of returns do not inflate
    the scale the way a standard deviation does. A column with MAD 0 (e.g. a constant) gets scale 1.

    Column by column through one scratch row (the same numbers as np.median over axis 0, see
    `_median_in_place`): no `[rows, f]` temporaries, whose fresh pages cost more than the arithmetic."""
    scratch = np.empty(x.shape[0])
    median = np.empty(x.shape[1])
    mad = np.empty(x.shape[1])
    for i in range(x.shape[1]):
        column = x[:, i]
        np.copyto(scratch, column)
        median[i] = _median_in_place(scratch, column)
        np.abs(np.subtract(column, median[i], out=scratch), out=scratch)  # no −0.0 after abs
        mad[i] = _median_in_place(scratch, None)
    mad *= _MAD_TO_STD
    scale = 1.0 / np.where(mad > 0, mad, 1.0)
    return -median * scale, scale


def fit_scaler(
    kind: str, train_rows: np.ndarray, feature_names: tuple[str, ...], open_time_ms: np.ndarray | None = None
) -> FittedScaler:
    """Fit on the rows given — callers pass the train segment only (see `dataset.build_datasets`)."""
    fit = SCALERS.get(kind)
    if train_rows.ndim != 2 or train_rows.shape[0] == 0:
        raise DataError(f"cannot fit a scaler on {train_rows.shape} rows")
    if not np.isfinite(train_rows).all():
        raise DataError("cannot fit a scaler on non-finite values")
    mins, scales = fit(np.asarray(train_rows, dtype=np.float64))
    return FittedScaler(
        kind=kind,
        feature_names=tuple(feature_names),
        min=tuple(float(v) for v in mins),
        scale=tuple(float(v) for v in scales),
        fit_rows=int(train_rows.shape[0]),
        fit_first_time_ms=None if open_time_ms is None else int(open_time_ms[0]),
        fit_last_time_ms=None if open_time_ms is None else int(open_time_ms[-1]),
        clip=SCALER_CLIP.get(kind),
    )
