"""Hot swaps under load: a real server on 127.0.0.1 answers 8 concurrent clients for 20 s while a new
version is published every 2 s (with retention pruning old ones), picked up by the store watcher alone.
No request may fail, and every answer must come from a version that was published."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
from serving_helpers import make_klines, manifest_for, real_server, regression_onnx, version_at

from cse_models.store import MODEL_FILE, ModelStore

DURATION_S = 20.0
PUBLISH_EVERY_S = 2.0
CONCURRENCY = 8


def _publish(store: ModelStore, work: Path, offset: float) -> str:
    version = version_at()
    folder = work / version
    folder.mkdir(parents=True)
    store.publish(
        manifest_for("BTCUSDT", "regression", version),
        {MODEL_FILE: regression_onnx(folder / "model.onnx", offset)},
        keep=3,
    )
    return version


async def _load(url: str, stop_at: float) -> list[tuple[int, str | None]]:
    body = {"symbol": "BTCUSDT", "klines": make_klines()}
    results: list[tuple[int, str | None]] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
            while time.monotonic() < stop_at:
                response = await http.post("/predict", json=body)
                version = response.json().get("model_version") if response.status_code == 200 else None
                results.append((response.status_code, version))

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return results


def test_versions_published_under_load_are_swapped_in_without_a_failed_request(tmp_path: Path, store: ModelStore):
    published = [_publish(store, tmp_path / "build", 0.0)]
    env = {
        "CSE_HOME": str(tmp_path / "home"),
        "CSE_STORE": str(store.root),
        "CSE_SERVING_WATCH_SECONDS": "0.25",
        "CSE_SERVING_RATE_LIMIT": "off",
    }
    with real_server(env, "--no-auth") as url:
        stop_at = time.monotonic() + DURATION_S
        done = threading.Event()

        def publisher() -> None:
            offset = 1.0
            while not done.wait(PUBLISH_EVERY_S) and time.monotonic() < stop_at - PUBLISH_EVERY_S:
                published.append(_publish(store, tmp_path / "build", offset))
                offset += 1.0

        thread = threading.Thread(target=publisher, name="publisher")
        thread.start()
        try:
            results = asyncio.run(_load(url, stop_at))
        finally:
            done.set()
            thread.join()
        loads = httpx.get(f"{url}/metrics").text

    served = {version for _, version in results}
    print(f"hot swaps under load: {len(results)} requests, {len(published)} published, {len(served)} served")
    statuses = [status for status, _ in results]
    failed = [status for status in statuses if not 200 <= status < 300]
    assert len(results) > 1000, f"only {len(results)} requests in {DURATION_S} s"
    assert failed == [], f"{len(failed)} of {len(results)} requests failed: {sorted(set(failed))}"
    assert served <= set(published), f"answers from unpublished versions: {served - set(published)}"
    # The watcher alone (no reload call) swapped in nearly every version: each was served for ~2 s.
    assert len(served) >= len(published) - 1, f"served {len(served)} of {len(published)} published versions"
    assert 'outcome="failed"' not in loads
