"""The direction head: Sell / Hold / Buy probabilities, the network's softmax shrunk toward the train
class frequencies (`HeadCalibration.direction_weight`, `class_prior`), scored by the Brier score against
those frequencies (climatology)."""

import numpy as np

from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.spec import HeadSpec


def _card(p):
    prior = np.asarray(p.calibration.class_prior, np.float32)
    a = p.calibration.direction_weight
    return (a * p.softmax(p.out[:, 2:5]) + (1 - a) * prior,)


HEAD = HeadSpec(
    name="direction",
    outputs=("probabilities",),
    shape=(len(CLASS_NAMES),),
    card=_card,
    from_outputs=lambda named: named["probabilities"],
    truth=lambda t: t.label,
    scoring="brier",
    reference="class_frequencies",
    space="probabilities",
    render="direction",
)
