"""Micro-batching: concurrent single predictions for one model share one onnxruntime call.

Under concurrent load several requests reach the event loop in the same turn. Each validated window
is queued with a future; the first one schedules a flush for the next loop turn (`call_soon`), which
stacks every window queued by then into one `[n, seq, f]` batch. One ORT call on n rows costs far
less than n calls (the LSTM kernel amortizes its per-call overhead), and nothing waits on a timer:
a lone request is flushed on the very next turn. A batch that fails (a non-finite output for one
window) is rerun row by row, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio

import numpy as np

from cse_serving.engine import LoadedModel


class MicroBatcher:
    def __init__(self, model: LoadedModel, max_batch: int = 64) -> None:
        self.model = model
        self.max_batch = max_batch
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.calls = 0
        self.rows = 0

    async def run(self, features: np.ndarray) -> np.ndarray:
        """Features `[seq, f]` of one request → its output row."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((features, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        elif len(self._pending) >= self.max_batch:
            self._flush()
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        self.calls += 1
        self.rows += len(pending)
        try:
            rows = self.model.run(np.stack([features for features, _ in pending]))
        except Exception:
            if len(pending) == 1:
                _settle_one(self.model, *pending[0])
                return
            for features, future in pending:
                _settle_one(self.model, features, future)
            return
        for (_, future), row in zip(pending, rows, strict=True):
            if not future.done():
                future.set_result(row)


def _settle_one(model: LoadedModel, features: np.ndarray, future: asyncio.Future) -> None:
    if future.done():
        return
    try:
        future.set_result(model.run(features[None])[0])
    except Exception as exc:  # the request's own error (DataError → 422) reaches its handler
        future.set_exception(exc)
