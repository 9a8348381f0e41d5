"""Which heads a task has, how many numbers the network emits for them, and what the graph outputs.

The multi-head `forecast` task: the network emits 5 numbers per window —
  0 `return_z`    next log return divided by the trailing volatility σ·√h (stationary, unit scale),
  1 `range_ratio` log of the next-horizon log(high/low) over its trailing mean (0 = the trailing mean),
  2–4           Sell / Hold / Buy logits (hold band = ± `hold_band_sigmas` · σ·√h),
and the exported graph turns them into the forecast card (`HEAD_OUTPUTS`). The seeds' tasks stay:
`regression` (the next close level, a price head) and `classification` (fixed-band Sell/Hold/Buy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cse_models.errors import ConfigError
from cse_models.features.windows import CLASS_NAMES

HEADS = ("price", "interval", "volatility", "direction")
_TASK_HEADS = {"regression": ("price",), "classification": ("direction",), "forecast": HEADS}
_NETWORK_OUTPUTS = {"regression": 1, "classification": len(CLASS_NAMES), "forecast": 2 + len(CLASS_NAMES)}

# Graph outputs of the forecast task per head, in the order the graph returns them.
HEAD_OUTPUTS = {
    "price": ("close", "return"),
    "interval": ("lower", "upper"),
    "volatility": ("volatility",),
    "direction": ("probabilities",),
}
FORECAST_OUTPUTS = tuple(name for head in HEADS for name in HEAD_OUTPUTS[head])

INPUT_NAME = "features"
LAST_CLOSE_INPUT = "last_close"
OUTPUT_NAMES = {"regression": ("close",), "classification": ("probabilities",), "forecast": FORECAST_OUTPUTS}

# Raw features the forecast graph reads from the last row of the window (the set must provide them).
SIGMA_FEATURE = "rv_24"  # trailing realized volatility of one-step log returns
RANGE_FEATURE = "range_mean_24"  # trailing mean of log(high/low)
# σ·√h below this is taken as this: real series have flat stretches (exchange outages with a frozen price),
# where the trailing volatility is 0 and a return could not be scaled by it.
SIGMA_FLOOR = 1e-6


def heads_of_task(task: str) -> tuple[str, ...]:
    try:
        return _TASK_HEADS[task]
    except KeyError:
        raise ConfigError(f"task must be one of {sorted(_TASK_HEADS)}, got {task!r}") from None


def network_outputs(task: str) -> int:
    heads_of_task(task)
    return _NETWORK_OUTPUTS[task]


def require_head_features(task: str, feature_names: Sequence[str], feature_set: str) -> None:
    """The forecast task scales by trailing volatility: its feature set must carry σ and the mean range."""
    if task != "forecast":
        return
    missing = [name for name in (SIGMA_FEATURE, RANGE_FEATURE) if name not in feature_names]
    if missing:
        raise ConfigError(
            f"task 'forecast' needs feature(s) {missing} in the feature set; {feature_set!r} has "
            f"{list(feature_names)} (use feature_set='stationary')"
        )


def input_names(task: str) -> tuple[str, ...]:
    """The graph's inputs. The forecast graph also takes each window's last close: its features are
    level-free, so the price level enters only there."""
    return (INPUT_NAME, LAST_CLOSE_INPUT) if task == "forecast" else (INPUT_NAME,)


def outputs_by_head(task: str, outputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's outputs (in `OUTPUT_NAMES[task]` order) as walk-forward head forecasts: price `[n]`,
    interval `[n, 2]`, volatility `[n]`, direction `[n, 3]`."""
    named = dict(zip(OUTPUT_NAMES[task], (np.asarray(o, dtype=np.float64) for o in outputs), strict=True))
    heads = {}
    if "close" in named:
        heads["price"] = named["close"][:, 0]
    if "lower" in named:
        heads["interval"] = np.concatenate([named["lower"], named["upper"]], axis=1)
    if "volatility" in named:
        heads["volatility"] = named["volatility"][:, 0]
    if "probabilities" in named:
        heads["direction"] = named["probabilities"]
    return heads
