"""The demo drives the packages from outside: `cse_assets` stays Dagster wiring, and the demo's request is what
a client would send — the latest clean klines of the bundled sample, accepted by the API's request schema."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import msgspec

from cse_demo.cli import request_body
from cse_models.data.file_sources import SampleSource
from cse_serving.schemas import PredictRequest

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_cse_assets_neither_serves_nor_runs_the_demo() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & {"cse_serving", "cse_demo", "subprocess", "urllib"})
        for path in (ROOT / "cse_assets").rglob("*.py")
    }
    assert {path: roots for path, roots in offenders.items() if roots} == {}
    assert not (ROOT / "cse_assets" / "demo.py").exists()


def test_request_body_is_the_latest_clean_klines_the_api_accepts() -> None:
    body = request_body("BTCUSDT", rows=64)
    request = msgspec.json.decode(msgspec.json.encode(body), type=PredictRequest)
    opens = [kline.open_time for kline in request.klines]
    assert len(opens) == 64
    assert all(later - earlier == HOUR_MS for earlier, later in itertools.pairwise(opens))
    newest = SampleSource().anchor("BTCUSDT", "1h")
    assert opens[-1] == int(newest.timestamp() * 1000)
