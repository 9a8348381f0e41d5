"""Micro-batching: concurrent single predictions for one model share one onnxruntime call.

Under concurrent load several requests reach the event loop in the same turn. Each validated window
is queued with a future; the first one schedules a flush for the next loop turn (`call_soon`), which
stacks every window queued by then into one batch (features `[n, seq, f]`, and last closes `[n, 1]` for
a forecast model). One ORT call on n rows costs far
less than n calls (the LSTM kernel amortizes its per-call overhead), and nothing waits on a timer:
a lone request is flushed on the very next turn. A batch that fails (a non-finite output for one
window) is rerun row by row, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio

from cse_serving.answers import Row
from cse_serving.engine import LoadedModel, Window, batch_rows


class MicroBatcher:
    def __init__(self, model: LoadedModel, max_batch: int = 64) -> None:
        self.model = model
        self.max_batch = max_batch
        self._pending: list[tuple[Window, asyncio.Future]] = []
        self.calls = 0
        self.rows = 0

    async def run(self, window: Window) -> Row:
        """The window of one request → its output row."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((window, future))
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
            rows = batch_rows(self.model.run(self.model.feeds([window for window, _ in pending])))
        except Exception:
            for window, future in pending:
                _settle_one(self.model, window, future)
            return
        for (_, future), row in zip(pending, rows, strict=True):
            if not future.done():
                future.set_result(row)


def _settle_one(model: LoadedModel, window: Window, future: asyncio.Future) -> None:
    if future.done():
        return
    try:
        future.set_result(batch_rows(model.run(model.feeds([window])))[0])
    except Exception as exc:  # the request's own error (DataError → 422) reaches its handler
        future.set_exception(exc)
