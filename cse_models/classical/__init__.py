"""Classical ensemble members: tree models on tabular summaries of each window, one kind per file.

`CLASSICAL` maps a model spec's architecture to its entry; registering imports neither LightGBM nor
scikit-learn (each kind imports its library when it fits or loads).
"""

from cse_models.classical import forest as _forest  # noqa: F401  (registers "random_forest")
from cse_models.classical import lightgbm as _lightgbm  # noqa: F401  (registers "lightgbm")
from cse_models.classical.architectures import CLASSICAL, PROBABILITY_FLOOR, ClassicalEntry, TreeModels

__all__ = ["CLASSICAL", "PROBABILITY_FLOOR", "ClassicalEntry", "TreeModels"]
