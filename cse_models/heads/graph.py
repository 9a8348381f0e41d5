"""The JAX side of the heads: the multi-head loss and the graph that turns raw network outputs into the
forecast card. Training differentiates `forecast_loss`; export, the parity check and walk-forward
evaluation all run `forecast_card` — so what is scored is exactly what is served.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from cse_models.config import DataConfig
from cse_models.errors import ConfigError
from cse_models.features.scaling import FittedScaler
from cse_models.features.sets import RANGE_FLOOR
from cse_models.heads.calibration import HeadCalibration
from cse_models.heads.layout import heads_of_task
from cse_models.heads.registry import HEAD_SPECS
from cse_models.heads.scales import RANGE_FEATURE, SIGMA_FEATURE, SIGMA_FLOOR
from cse_models.heads.spec import CardParts
from cse_models.heads.tasks import task_spec
from cse_models.registry import Registry

HUBER_DELTA = 1.0  # in trailing σ: returns beyond one σ are weighted linearly (robust to fat tails)


def forecast_loss(out: jax.Array, y: jax.Array) -> jax.Array:
    """out `[B, 5]` (ẑ, v̂, 3 logits), y `[B, 3]` (z, v, label): Huber on the σ-scaled return, L1 on the
    log range ratio (its minimiser is the median, the MAE-optimal point forecast), cross-entropy on the
    classes. Each term is O(1) on its natural scale, so they are summed unweighted."""
    labels = y[:, 2].astype(jnp.int32)
    price = optax.huber_loss(out[:, 0], y[:, 0], delta=HUBER_DELTA).mean()
    volatility = jnp.abs(out[:, 1] - y[:, 1]).mean()
    direction = optax.softmax_cross_entropy_with_integer_labels(out[:, 2:5], labels).mean()
    return price + volatility + direction


def forecast_card(
    out: jax.Array,
    raw_features: jax.Array,
    last_close: jax.Array,
    calibration: HeadCalibration,
    feature_names: tuple[str, ...],
    horizon: int,
) -> tuple[jax.Array, ...]:
    """Network outputs `[B, 5]`, raw feature windows `[B, seq, f]` and last closes `[B, 1]` → every
    registered head's outputs in order (`OUTPUT_NAMES["forecast"]`: close, return, lower, upper,
    volatility `[B, 1]` and probabilities `[B, 3]` for the built-in heads).

    λ = 0 makes close == last_close exactly (persistence); every price is last_close × exp(log return), so
    multiplying the input prices by k multiplies every price output by k."""
    root_h = math.sqrt(horizon)
    sigma = jnp.maximum(raw_features[:, -1, feature_names.index(SIGMA_FEATURE)][:, None] * root_h, SIGMA_FLOOR)
    range_ref = jnp.maximum(raw_features[:, -1, feature_names.index(RANGE_FEATURE)][:, None] * root_h, RANGE_FLOOR)
    c = calibration.clip_sigmas
    parts = CardParts(
        out=out,
        ret=calibration.shrink * jnp.clip(out[:, :1], -c, c) * sigma,
        sigma=sigma,
        range_ref=range_ref,
        last_close=last_close,
        calibration=calibration,
        exp=jnp.exp,
        softmax=lambda logits: jax.nn.softmax(logits, axis=-1),
    )
    return tuple(output for head in heads_of_task("forecast") for output in HEAD_SPECS.get(head).card(parts))


Network = Callable[[jax.Array], jax.Array]
# the function of one task's graph inputs: (network of raw features, scaler, data config, calibration) → it
ServingFunction = Callable[[Network, FittedScaler, DataConfig, HeadCalibration | None], Callable[..., tuple]]


def serving_function(
    model: nnx.Module, scaler: FittedScaler, data_cfg: DataConfig, calibration: HeadCalibration | None = None
) -> Callable[..., tuple[jax.Array, ...]]:
    """The exported computation, as a JAX function of the graph's inputs returning its outputs in order
    (`SERVING_FUNCTIONS[task]`): raw features [batch, seq, f] (and last_close [batch, 1] for the forecast
    task) → forecast card (`OUTPUT_NAMES["forecast"]`), or the close [batch, 1], or probabilities [batch, k]."""
    spec = task_spec(data_cfg.task)
    if spec.calibrated and calibration is None:
        raise ConfigError(f"exporting a {spec.name} model needs its HeadCalibration")
    scale = jnp.asarray(scaler.scale, jnp.float32)
    shift = jnp.asarray(scaler.min, jnp.float32)

    def network(features: jax.Array) -> jax.Array:
        scaled = features * scale + shift
        return model(scaled if scaler.clip is None else jnp.clip(scaled, -scaler.clip, scaler.clip))

    return SERVING_FUNCTIONS.get(spec.name)(network, scaler, data_cfg, calibration)


def _forecast_function(
    network: Network, scaler: FittedScaler, data_cfg: DataConfig, calibration: HeadCalibration | None
) -> Callable[..., tuple[jax.Array, ...]]:
    assert calibration is not None  # a calibrated task (checked in `serving_function`)

    def forecast(features: jax.Array, last_close: jax.Array) -> tuple[jax.Array, ...]:
        return forecast_card(
            network(features), features, last_close, calibration, scaler.feature_names, data_cfg.horizon
        )

    return forecast


def _class_probabilities(
    network: Network, scaler: FittedScaler, data_cfg: DataConfig, calibration: HeadCalibration | None
) -> Callable[..., tuple[jax.Array, ...]]:
    return lambda features: (jax.nn.softmax(network(features), axis=-1),)


def _unscaled_close(
    network: Network, scaler: FittedScaler, data_cfg: DataConfig, calibration: HeadCalibration | None
) -> Callable[..., tuple[jax.Array, ...]]:
    """The network predicts the min-max scaled close: undo the scaling of that column."""
    target = scaler.feature_names.index("close")
    scale, shift = (jnp.asarray(values, jnp.float32)[target] for values in (scaler.scale, scaler.min))
    return lambda features: ((network(features)[:, :1] - shift) / scale,)


# task name → its exported function (`heads.tasks` lists the registries a new task adds an entry to)
SERVING_FUNCTIONS: Registry[ServingFunction] = Registry("task serving function")
SERVING_FUNCTIONS.add("forecast", _forecast_function)
SERVING_FUNCTIONS.add("classification", _class_probabilities)
SERVING_FUNCTIONS.add("regression", _unscaled_close)
