"""Scoring forecasts: metrics, each head's scoring rule, the naive baselines, walk-forward folds, the
Diebold–Mariano test and look-ahead guards. Below training and the members (which score their validation
segments with it) and below the walk-forward orchestration in `cse_models.evaluation` (which re-exports
these names). numpy + polars only."""
