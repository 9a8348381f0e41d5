"""Flax NNX architectures, registered by name (`build_model`, `MODELS`)."""

from cse_models.models import cnn as _cnn  # noqa: F401
from cse_models.models import lstm as _lstm  # noqa: F401  (registers its architectures)
from cse_models.models import rnn as _rnn  # noqa: F401
from cse_models.models import transformer as _transformer  # noqa: F401
from cse_models.models.architectures import MODELS, build_model, parameter_count, register_model

__all__ = ["MODELS", "build_model", "parameter_count", "register_model"]
