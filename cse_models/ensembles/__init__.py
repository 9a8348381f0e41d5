"""Ensembles of forecast members (Flax networks and classical models alike): weighted, stacking and
voting, fit on the members' out-of-sample validation forecasts, scored walk-forward like any model, and
exported as ONE ONNX graph holding every member (`compose`). numpy at import; jax/optax only while
fitting, onnx only while composing."""

from cse_models.ensembles import stacking as _stacking  # noqa: F401  (registers "stacking")
from cse_models.ensembles import voting as _voting  # noqa: F401  (registers "voting")
from cse_models.ensembles import weighted as _weighted  # noqa: F401  (registers "weighted")
from cse_models.ensembles.config import ENSEMBLE_METHODS, EnsembleConfig, default_ensembles
from cse_models.ensembles.fitted import COMBINED_HEADS, FittedEnsemble
from cse_models.ensembles.kinds import ENSEMBLES, fit_ensemble
from cse_models.ensembles.rows import EnsembleLeakageError, FitRows, check_after_training, segment_fit_rows

__all__ = [
    "COMBINED_HEADS",
    "ENSEMBLES",
    "ENSEMBLE_METHODS",
    "EnsembleConfig",
    "EnsembleLeakageError",
    "FitRows",
    "FittedEnsemble",
    "check_after_training",
    "default_ensembles",
    "fit_ensemble",
    "segment_fit_rows",
]
