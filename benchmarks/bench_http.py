"""HTTP prediction throughput: cse's Litestar API beside the bare stack and the seed's FastAPI server.

cse and the seed serve one 24-step LSTM (h128×2) from ONNX on 127.0.0.1 with one worker, under
`wrk -t1 -c8 -d<duration>s` after a 2 s warm-up. The seed takes 24 klines (9 mur9 features); cse serves what
`cse-models train` publishes on the bundled sample (the honest setup: level-free features with a
warm-up, so the body holds the model's `min_klines`, 192 klines, read from GET /models). cse's side
runs its defaults: token auth on, sha256-verified model, request ids on, access log off; its rate
limit is raised to 10⁹/minute so that the limiter's cost is measured without it ever answering 429.

"bare" is the stack's own limit on this machine: a Litestar app with one handler that reads the same
POST body and answers a constant JSON of the same size, on the same server (`cse_serving.server`: the
same uvicorn settings, protocol, read deadlines and concurrency limit). cse's req/s as a fraction of
it says what the service itself costs; cse / seed says what it gained.

    python benchmarks/bench_http.py [--full] [--duration 5] [--conns 8] [--rounds 1]

Needs the seed's venv and wrk (`bash ../shared/bench/seed_baseline/setup.sh` makes both). Default run (a few
minutes on 2 cores, most of it publishing the model): `wrk -d5s` per server. `--full` takes `-d10s`, the
duration the README's figures were measured with.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from _common import ROOT, SEED_DIR, machine_info, parse_with_sweep, print_table, versions, warn_if_busy, write_json

SEED_VENV = Path(os.environ.get("SEED_VENV", "/tmp/benchvenv"))
LUA = ROOT / "benchmarks" / "post_predict.lua"
if TYPE_CHECKING:
    from litestar import Litestar

_SUMMARY = re.compile(r"(\w+)=([\d.]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, payload: Path, *, token: str, method: str, duration: int, conns: int) -> dict[str, float]:
    env = {**os.environ, "PAYLOAD": str(payload), "TOKEN": token, "METHOD": method}
    base = ["wrk", "-t1", f"-c{conns}", "-s", str(LUA), url]
    subprocess.run([*base[:3], "-d2s", *base[3:]], env=env, check=True, capture_output=True)  # warm-up
    out = subprocess.run(
        [*base[:3], f"-d{duration}s", "--latency", *base[3:]], env=env, check=True, capture_output=True, text=True
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("non200="))
    return {key: float(value) for key, value in _SUMMARY.findall(line)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def publish_model(work: Path) -> Path:
    """A real model in a real store: `cse-models train` (tiny budget) on the bundled BTCUSDT sample."""
    store = work / "store"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cse_models.cli",
            "train",
            "--symbol",
            "BTCUSDT",
            "--budget",
            "tiny",
            "--out",
            str(work / "train"),
            "--publish",
            str(store),
        ],
        check=True,
        capture_output=True,
    )
    return store


def cse_payload(work: Path, n_klines: int) -> Path:
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SampleSource

    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    rows = klines.tail(n_klines).select("open_time", "open", "high", "low", "close", "volume")
    rows = [{**row, "open_time": int(row["open_time"].timestamp() * 1000)} for row in rows.to_dicts()]
    path = work / "cse_payload.json"
    path.write_text(json.dumps({"symbol": "BTCUSDT", "interval": "1h", "klines": rows}))
    return path


def run_cse(work: Path, store: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {
        **os.environ,
        "CSE_HOME": str(work),
        "CSE_STORE": str(store),
        "CSE_SERVING_RATE_LIMIT": "1000000000/minute",
        "CSE_SERVING_ACCESS_LOG": "1" if args.access_log else "0",
    }
    token = subprocess.run(
        [sys.executable, "-m", "cse_serving", "token", "create", "--name", f"bench{time.time()}"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = (work / "cse_server.log").open("ab")  # the access log, when on, is written for real, not to a terminal
    server = subprocess.Popen(
        [sys.executable, "-m", "cse_serving", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stderr=log,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        payload = cse_payload(work, min_klines(f"http://127.0.0.1:{port}/models", token))
        (work / "cse_answer.json").write_bytes(cse_answer(f"http://127.0.0.1:{port}/predict", payload, token))
        result = wrk(
            f"http://127.0.0.1:{port}/predict",
            payload,
            token=token,
            method="POST",
            duration=args.duration,
            conns=args.conns,
        )
        return {**result, "rss_mb": rss_mb(server.pid)}
    finally:
        stop(server)
        log.close()


def bare_app(answer: bytes) -> Litestar:
    """A Litestar app that reads a POST /predict body and answers `answer`: the framework and server only.
    (Litestar is imported here: only the `--serve-bare` process needs it.)"""
    from litestar import Litestar, Request, Response, get, post

    @post("/predict", status_code=200)
    async def predict(request: Request) -> Response[bytes]:
        await request.body()
        return Response(answer, media_type="application/json")

    @get("/readyz", sync_to_thread=False)
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return Litestar(
        [predict, readyz], openapi_config=None, signature_namespace={"Request": Request, "Response": Response}
    )


def serve_bare(port: int, answer_path: Path) -> None:
    from cse_serving.server import serve
    from cse_serving.settings import Settings

    serve(bare_app(answer_path.read_bytes()), Settings(port=port), log_level="warning")


def min_klines(url: str, token: str) -> int:
    """The klines the served BTCUSDT 1h model needs (its manifest's min_klines, via GET /models)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        models = json.loads(response.read())["models"]
    return next(m["min_klines"] for m in models if (m["symbol"], m["interval"]) == ("BTCUSDT", "1h"))


def cse_answer(url: str, payload: Path, token: str) -> bytes:
    request = urllib.request.Request(
        url, data=payload.read_bytes(), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"cse answered {exc.code} to the benchmark's request: {exc.read().decode()}") from exc


def run_bare(work: Path, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port), "--answer", str(work / "cse_answer.json")], cwd=ROOT
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        result = wrk(
            f"http://127.0.0.1:{port}/predict",
            work / "cse_payload.json",
            token="bench",
            method="POST",
            duration=args.duration,
            conns=args.conns,
        )
        return {**result, "rss_mb": rss_mb(server.pid)}
    finally:
        stop(server)


def run_seed(work: Path, args: argparse.Namespace) -> dict[str, float]:
    payload = work / "seed_payload.json"
    subprocess.run(
        [str(SEED_VENV / "bin/python"), "serve_fastapi.py", "payload", "--seq-len", "24", "--out", str(payload)],
        cwd=SEED_DIR,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(SEED_VENV / "bin/uvicorn"),
            "serve_fastapi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=SEED_DIR,
        env={**os.environ, "SEED_MODEL_DIR": "artifacts"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", server)
        result = wrk(
            f"http://127.0.0.1:{port}/predict",
            payload,
            token="",
            method="PUT",
            duration=args.duration,
            conns=args.conns,
        )
        return {**result, "rss_mb": rss_mb(server.pid)}
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per server")
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="alternate cse / bare / seed this many times")
    parser.add_argument("--access-log", action="store_true", help="run cse with its access log on")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parse_with_sweep(parser, {"duration": 10}, "10 s of wrk per server")
    if args.serve_bare:
        serve_bare(args.serve_bare, args.answer)
        return
    if not (SEED_VENV / "bin/uvicorn").exists():
        sys.exit(f"seed venv missing: run `bash {SEED_DIR / 'setup.sh'}` (it also installs wrk)")
    load = warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="cse-bench-http-") as tmp:
        work = Path(tmp)
        store = publish_model(work)
        rounds = [
            {"cse": run_cse(work, store, args), "bare": run_bare(work, args), "seed": run_seed(work, args)}
            for _ in range(args.rounds)
        ]
    rows = []
    for i, r in enumerate(rounds):
        r["cse_of_bare"] = r["cse"]["rps"] / r["bare"]["rps"]
        r["cse_over_seed"] = r["cse"]["rps"] / r["seed"]["rps"]
        rows.append(
            [
                i,
                *(f"{r[side]['rps']:.0f}" for side in ("cse", "bare", "seed")),
                f"{r['cse']['p50_ms']:.2f}",
                f"{r['cse']['p99_ms']:.2f}",
                f"{r['cse']['rss_mb']:.0f}",
                f"{r['bare']['p99_ms']:.2f}",
                f"{r['seed']['p99_ms']:.2f}",
                f"{r['cse_of_bare']:.0%}",
                f"{r['cse_over_seed']:.1f}x",
            ]
        )
    print_table(
        [
            "round",
            "cse rps",
            "bare rps",
            "seed rps",
            "cse p50 ms",
            "cse p99 ms",
            "cse RSS MB",
            "bare p99 ms",
            "seed p99 ms",
            "cse/bare",
            "cse/seed",
        ],
        rows,
    )
    write_json(
        "bench_http",
        {
            "sweep": args.sweep,
            "wrk": {"threads": 1, "connections": args.conns, "duration_s": args.duration, "warmup_s": 2},
            "cse_access_log": args.access_log,
            "rounds": rounds,
            "load_before": load,
            "machine": machine_info(),
            "versions": versions(["litestar", "uvicorn", "msgspec", "onnxruntime", "numpy", "httptools", "uvloop"]),
        },
    )


if __name__ == "__main__":
    main()
