"""HTTP controllers, one module per concern (DESIGN.md §5)."""

from cse_serving.routes.health import HealthController
from cse_serving.routes.klines import KlinesController
from cse_serving.routes.leaderboard import LeaderboardController
from cse_serving.routes.metrics import MetricsController
from cse_serving.routes.models import ModelsController
from cse_serving.routes.monitoring import MonitoringController
from cse_serving.routes.page import PageController, static_files
from cse_serving.routes.predict import PredictController
from cse_serving.routes.scorecard import ScorecardController

CONTROLLERS = [
    HealthController,
    PredictController,
    ModelsController,
    MetricsController,
    MonitoringController,
    KlinesController,
    LeaderboardController,
    ScorecardController,
    PageController,
    static_files,
]

__all__ = [
    "CONTROLLERS",
    "HealthController",
    "KlinesController",
    "LeaderboardController",
    "MetricsController",
    "ModelsController",
    "MonitoringController",
    "PageController",
    "PredictController",
    "ScorecardController",
]
