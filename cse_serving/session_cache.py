"""One onnxruntime session per distinct graph, however many series and versions serve it.

A global model is one ONNX graph published under many symbols: each symbol's version holds a
byte-identical `model.onnx`, so the sha256 its manifest lists for the file (checked against the bytes
before any session is built, `ModelStore.verified`) names the graph. `SessionCache.session` builds the
session of a graph the first time it is asked for and hands the same object out after that: fifty symbols
on one graph hold one session, not fifty.

The key is the file's sha256 alone. An int8 variant and each ensemble member are other files with sha256s
of their own, hence sessions of their own. The session options (threads, optimization level) come from
the settings the cache was made with and are the same for every session it holds, so they are not part
of the key. The registry owns one cache (`ModelRegistry.sessions`) for every series and version it loads.

Release by weak references (`WeakValueDictionary`), not hand-kept reference counts: each `LoadedModel`
holds its sessions strongly and the cache only weakly, so when a hot swap, a keep-versions eviction, a
fallback or a failed load lets the last model of a graph go, CPython frees the session at once and its
entry leaves the cache. Counting by hand would need a release at each of those places (one missed is a
leak, one too many drops a session that a request still runs on); a weak reference can do neither. What
it relies on: nothing keeps a swapped-out `LoadedModel` beyond its requests (the micro-batcher holds its
model weakly for that reason).

Thread safety: the watcher loads in a worker thread while requests run. Requests never touch the cache
(they run the sessions their model holds, and `InferenceSession.run` may be called concurrently); a lookup
and the build it may need happen under one lock, so two loads of one graph cannot build it twice.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import onnxruntime as ort

from cse_models.errors import StoreError
from cse_serving.settings import Settings


def make_session(path: Path, settings: Settings) -> ort.InferenceSession:
    """A CPU session with explicit threads: the service sizes parallelism with workers, not ORT pools."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_intra_op_threads
    options.inter_op_num_threads = settings.ort_inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        raise StoreError(f"{path}: onnxruntime cannot load it: {exc}") from exc


class SessionCache:
    """The live ORT sessions of one registry, by the sha256 of their graph file."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: weakref.WeakValueDictionary[str, ort.InferenceSession] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def session(self, sha256: str, path: Path) -> ort.InferenceSession:
        """The session of the graph whose file hashes to `sha256` (`path`, already verified against it),
        built now only when no live session has that graph; StoreError when onnxruntime cannot load it."""
        with self._lock:
            session = self._sessions.get(sha256)
            if session is None:
                session = self._sessions[sha256] = make_session(path, self._settings)
            return session

    def __len__(self) -> int:
        """Distinct sessions alive: the `cse_serving_ort_sessions` gauge."""
        return len(self._sessions)
