"""Classical ensemble members: tree models on tabular summaries of each window, one kind per file.

`CLASSICAL` maps a model spec's architecture to its entry; registering imports neither LightGBM nor
scikit-learn (each kind imports its library when it fits or loads).
"""

from cse_models.classical.registry import CLASSICAL, ClassicalEntry, TreeModels

__all__ = ["CLASSICAL", "ClassicalEntry", "TreeModels"]
