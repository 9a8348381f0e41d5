"""A real, throwaway S3 endpoint for tests: moto's server (`moto_server`, from moto[server]) as a
subprocess on 127.0.0.1 and a free port, one bucket created with boto3, no internet; stopped by its PID.

A module of its own under tests/ (on sys.path through tests/conftest.py), like `postgres_server`.
Tests point the store at it through the environment a deployment would use (`s3_env`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUCKET = "cse-models"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    bucket: str
    pid: int

    def env(self) -> dict[str, str]:
        """What a process needs to reach the bucket: the store's endpoint variable and AWS credentials."""
        return {"CSE_STORE_S3_ENDPOINT": self.endpoint, **CREDENTIALS}

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(endpoint: str, process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout_s} s")


@contextmanager
def running_moto_s3(bucket: str = BUCKET) -> Iterator[MotoS3]:
    import boto3

    port = _free_port()
    binary = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_up(endpoint, process)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=bucket)
        yield MotoS3(endpoint=endpoint, bucket=bucket, pid=process.pid)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
