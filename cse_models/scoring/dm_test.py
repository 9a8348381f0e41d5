"""Diebold–Mariano test of equal predictive accuracy, with the Harvey–Leybourne–Newbold correction.

Diebold & Mariano (1995): with loss differential d_t = L(e_model,t) − L(e_base,t), the statistic is
DM = d̄ / sqrt(V̂ / n), V̂ = γ̂_0 + 2 Σ_{k=1}^{h−1} γ̂_k (autocovariances of d, divisor n: an h-step
forecast error is at most MA(h−1)). Harvey, Leybourne & Newbold (1997) scale it by
sqrt((n + 1 − 2h + h(h−1)/n) / n) and compare with Student's t with n − 1 degrees of freedom, which keeps
the size honest in small samples. The t CDF is computed here (regularized incomplete beta, Lentz's
continued fraction) so the library needs no scipy.

Sign convention: d̄ < 0 means the model's loss is lower, so the one-sided "model better" p-value is
P(T ≤ DM*).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from cse_models.errors import ConfigError, DataError
from cse_models.registry import Registry

DM_LOSSES: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("DM loss")
DM_LOSSES.add("squared", np.square)
DM_LOSSES.add("absolute", np.abs)


@dataclass(frozen=True)
class DMResult:
    statistic: float  # HLN-corrected DM*; negative: the model's loss is lower
    p_value: float  # two-sided: the two forecasts are equally accurate
    p_value_model_better: float  # one-sided: the model's expected loss is lower
    mean_loss_difference: float  # d̄ = mean(L_model − L_base)
    n: int
    horizon: int
    loss: str

    def as_dict(self) -> dict:
        return asdict(self)


def diebold_mariano(
    errors_model: np.ndarray, errors_base: np.ndarray, *, horizon: int = 1, loss: str = "squared"
) -> DMResult:
    """DM test of forecast errors `[n]` (forecast − actual) of a model against a baseline, same points;
    `loss` is "squared" or "absolute"."""
    e_model = np.asarray(errors_model, dtype=np.float64).reshape(-1)
    e_base = np.asarray(errors_base, dtype=np.float64).reshape(-1)
    fn = DM_LOSSES.get(loss)
    return diebold_mariano_losses(fn(e_model), fn(e_base), horizon=horizon, loss=loss)


def diebold_mariano_losses(
    loss_model: np.ndarray, loss_base: np.ndarray, *, horizon: int = 1, loss: str = "custom"
) -> DMResult:
    """DM test on per-point losses `[n]` already computed (e.g. Brier losses of class forecasts)."""
    l_model = np.asarray(loss_model, dtype=np.float64).reshape(-1)
    l_base = np.asarray(loss_base, dtype=np.float64).reshape(-1)
    if l_model.shape != l_base.shape:
        raise DataError(f"DM test needs losses on the same points, got {l_model.shape} and {l_base.shape}")
    if horizon < 1:
        raise ConfigError(f"DM horizon must be ≥ 1, got {horizon}")
    n = l_model.size
    if n < max(3, 2 * horizon):
        raise DataError(f"DM test needs at least {max(3, 2 * horizon)} forecast points, got {n}")
    d = l_model - l_base
    if not np.isfinite(d).all():
        raise DataError("DM test: the losses contain NaN or inf")
    mean = float(d.mean())
    variance = long_run_variance(d, lags=horizon - 1)
    if variance <= 0.0:  # identical losses at every point (e.g. the baseline against itself)
        statistic = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
        statistic = mean / math.sqrt(variance / n) * correction
    lower = student_t_cdf(statistic, n - 1)
    return DMResult(
        statistic=statistic,
        p_value=min(1.0, 2.0 * min(lower, 1.0 - lower)),
        p_value_model_better=lower,
        mean_loss_difference=mean,
        n=n,
        horizon=horizon,
        loss=loss,
    )


def long_run_variance(d: np.ndarray, lags: int) -> float:
    """γ̂_0 + 2 Σ_{k=1}^{lags} γ̂_k with divisor n (rectangular kernel, as in Diebold–Mariano). Should the
    truncated sum come out non-positive (possible for lags ≥ 1), fall back to γ̂_0 alone."""
    centred = d - d.mean()
    n = centred.size
    gamma0 = float(centred @ centred) / n
    total = gamma0 + 2.0 * sum(float(centred[k:] @ centred[:-k]) / n for k in range(1, lags + 1))
    return total if total > 0 else gamma0


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def student_t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom: 1 − ½·I_{df/(df+t²)}(df/2, ½) for t > 0."""
    if df <= 0:
        raise ConfigError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if math.isnan(t):
        return math.nan
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) by the continued fraction (Numerical Recipes §6.4), using the symmetry
    I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges faster."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float, *, max_terms: int = 100_000, eps: float = 1e-15) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_terms + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge for a={a}, b={b}, x={x}")
