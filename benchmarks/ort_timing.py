"""How the ONNX benchmarks open and time an onnxruntime session: the same two settings and the same
per-call clock for every graph (bench_onnx.py, onnx_int8.py, onnx_ensemble.py)."""

from __future__ import annotations

import time

SETTINGS = ("default", "1thread")


def session(path: str, setting: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if setting == "1thread":
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def time_calls(sess, feed: dict, n: int, warmup: int) -> list[float]:
    """µs per `run` call."""
    run = sess.run
    for _ in range(warmup):
        run(None, feed)
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        run(None, feed)
        out.append((clock() - t0) / 1e3)
    return out
