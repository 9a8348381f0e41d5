"""Micro-batching: the windows queued for one model in the same event-loop turn share one onnxruntime call.

Under concurrent load several requests reach the event loop in the same turn, and a batch request
brings several windows at once. Each validated window is queued with a future; the first one schedules
a flush for the next loop turn (`call_soon`), which stacks every window queued by then into one batch
(features `[n, seq, f]`, and last closes `[n, 1]` for a forecast model). One ORT call on n rows costs
far less than n calls (the LSTM kernel amortizes its per-call overhead), and nothing waits on a timer:
a lone request is flushed on the very next turn. When a queued window asks for the members, every
member session runs on the same stacked batch. A batch that fails (a non-finite output for one window)
is rerun row by row, so one bad request never fails its neighbours.

A batcher belongs to one immutable `LoadedModel`: a swapped-in version gets a new batcher, and windows
queued on the old one finish on the old session. It holds its model weakly: the requests queued on it
hold the model until answered, and an idle batcher of a swapped-out version must not keep that version,
and the ORT sessions only it runs, alive (`cse_serving.session_cache`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from cse_serving.answers import Row
from cse_serving.loaded_model import LoadedModel, Window, batch_rows

MemberRows = dict[str, Row]


@dataclass(frozen=True, slots=True)
class FlushStats:
    """One ORT call of a batcher: rows in it, how long the oldest window waited in the queue, and how
    long the graph(s) ran."""

    rows: int
    queued_s: float
    compute_s: float


FlushObserver = Callable[[LoadedModel, FlushStats], None]


@dataclass(slots=True)
class _Pending:
    window: Window
    members: bool
    future: asyncio.Future
    queued_at: float


class MicroBatcher:
    def __init__(self, model: LoadedModel, *, max_batch: int = 64, on_flush: FlushObserver | None = None) -> None:
        self._model = weakref.ref(model)
        self.max_batch = max_batch
        self._on_flush = on_flush
        self._pending: list[_Pending] = []
        self.calls = 0
        self.rows = 0

    @property
    def model(self) -> LoadedModel | None:
        """The batcher's model; None once nothing else holds it (no request waits on this batcher then)."""
        return self._model()

    async def run(self, window: Window, members: bool = False) -> tuple[Row, MemberRows | None]:
        """The window of one request → its output row, and each member's when `members` is asked."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(_Pending(window, members, future, time.perf_counter()))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        elif len(self._pending) >= self.max_batch:
            self._flush()
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        model = self.model
        if not pending or model is None:  # a model gone means every request queued here was cancelled
            return
        started = time.perf_counter()
        self.calls += 1
        self.rows += len(pending)
        try:
            rows, member_rows = _run(model, [p.window for p in pending], any(p.members for p in pending))
        except Exception:
            for item in pending:
                _settle_one(model, item)
            return
        finally:
            if self._on_flush is not None:
                stats = FlushStats(len(pending), started - pending[0].queued_at, time.perf_counter() - started)
                self._on_flush(model, stats)
        for position, item in enumerate(pending):
            if not item.future.done():
                members = {name: out[position] for name, out in member_rows.items()} if item.members else None
                item.future.set_result((rows[position], members))


def _run(model: LoadedModel, windows: list[Window], members: bool) -> tuple[list[Row], dict[str, list[Row]]]:
    """One run of the served graph; members' rows come from that same run when the graph is an ensemble
    (its `member_outputs` are graph outputs), else from each member's own session."""
    feeds = model.feeds(windows)
    rows = batch_rows(model.run(feeds))
    if not members:
        return rows, {}
    ensemble = model.manifest.ensemble
    inside = ensemble.member_outputs if ensemble is not None else {}
    if inside:
        return rows, {name: [{o: row[g] for o, g in outs.items()} for row in rows] for name, outs in inside.items()}
    return rows, {name: batch_rows(model.run(feeds, session)) for name, session in model.members.items()}


def _settle_one(model: LoadedModel, item: _Pending) -> None:
    if item.future.done():
        return
    try:
        [row], member_rows = _run(model, [item.window], item.members)
        item.future.set_result((row, {name: out[0] for name, out in member_rows.items()} if item.members else None))
    except Exception as exc:  # the request's own error (DataError → 422) reaches its handler
        item.future.set_exception(exc)
