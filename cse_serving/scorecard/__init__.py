"""The live scorecard: every served prediction, scored against the candle it predicted once that candle has
closed, beside persistence (the next close = the last close).

Walk-forward skill says how a model did on history; live it can still decay (a regime change, a feature
bug only live klines trigger). Keeping what was served and scoring it when the truth arrives measures that
on the walk-forward scale: live skill = 1 − MAE / MAE(persistence), the price head's skill in the manifest.

Only forecasts are kept: an answer whose predicted candle had already closed when it was served (a client
replaying history) is not recorded, since its truth was known and may lie inside the training data.
Realized closes come from klines the service sees after the fact: a later request's klines, or the
server-side fetcher's. A served direction is scored by the label training would have given that candle
(`cse_models.heads.labels`, with the Hold band recorded when it was served).

  store       `Scorecard`: the SQLite table — record, observe (score), summary, recent points
  statements  the table, its migration and every SQL statement
  scoring     which closes are truth, the realized class, the scores of scored rows
  results     what it answers: `LiveScore`, `ScoredPoint`
  decay       `degraded`: live skill below the walk-forward skill by more than a margin
"""

from cse_serving.scorecard.decay import MIN_SCORED, degraded
from cse_serving.scorecard.results import LiveScore, ScoredPoint
from cse_serving.scorecard.scoring import final_closes, live_score
from cse_serving.scorecard.store import DEFAULT_MAX_ROWS, DEFAULT_WINDOWS, Scorecard, iso_to_ms

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_WINDOWS",
    "MIN_SCORED",
    "LiveScore",
    "Scorecard",
    "ScoredPoint",
    "degraded",
    "final_closes",
    "iso_to_ms",
    "live_score",
]
