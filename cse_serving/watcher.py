"""The store watcher: every few seconds the registry follows the store's LATEST and PINNED pointers.

Polling, not file-system events, on purpose: the store may be a network file system or an S3 bucket,
where no events exist, and a poll costs two tiny reads per series. A new version is loaded beside the
serving one in a worker thread (verify, smoke-run, swap: `ModelRegistry.sync`), so the event loop keeps
answering while it loads; requests that started on the old version finish on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cse_serving.model_registry import ModelRegistry

log = logging.getLogger(__name__)


class StoreWatcher:
    def __init__(self, registry: ModelRegistry, interval_s: float) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling on the running loop (no-op when the interval is 0: the watcher is off)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cse-store-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                report = await asyncio.to_thread(self.registry.sync)
            except Exception:  # a store that vanished for a moment must not end the watcher; it is logged
                log.exception("store watcher: sync failed; retrying in %.1f s", self.interval_s)
                continue
            self.ticks += 1
            if report.swapped:
                log.info("store watcher: now serving %s", ", ".join(f"{s} {i}" for s, i in report.swapped))
