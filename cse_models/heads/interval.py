"""The interval head: lower and upper close around the forecast return, ± a conformal multiple of σ·√h
(`HeadCalibration.interval_scale`), scored by the Winkler interval score at the calibrated level."""

import numpy as np

from cse_models.heads.spec import HeadSpec


def _card(p):
    half = p.calibration.interval_scale * p.sigma
    return p.last_close * p.exp(p.ret - half), p.last_close * p.exp(p.ret + half)


HEAD = HeadSpec(
    name="interval",
    outputs=("lower", "upper"),
    shape=(2,),
    card=_card,
    from_outputs=lambda named: np.concatenate([named["lower"], named["upper"]], axis=1),
    truth=lambda t: t.close,
    scoring="winkler",
    reference="trailing_quantiles",
    space="interval",
    render="interval",
)
