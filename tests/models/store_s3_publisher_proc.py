"""A publisher that publishes into an S3 model store until it is killed: the subject of
test_store_s3's kill test (the object-store twin of store_publisher_proc.py, whose `manifest` it reuses).

It imports cse_models.store.objects (stdlib + fsspec/s3fs, no jax). Before each phase it prints a
marker line, flushed, so the test knows in which phase each SIGKILL landed. The endpoint and the
credentials come from the environment (CSE_STORE_S3_ENDPOINT, AWS_*), as in a deployment.

    python store_s3_publisher_proc.py URL SOURCE_DIR KEEP FIRST_SECOND
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store_fault_harness import manifest_for
from store_publisher_proc import PhaseMarkers

from cse_models.store import new_version
from cse_models.store.objects import ObjectModelStore


class MarkedObjectStore(PhaseMarkers, ObjectModelStore):
    """An ObjectModelStore that announces its phases."""


def main(url: str, source: str, keep: str, first_second: str) -> None:
    store = MarkedObjectStore(url)
    files = {p.relative_to(source).as_posix(): p for p in sorted(Path(source).rglob("*")) if p.is_file()}
    start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=int(first_second))
    print("ready", flush=True)
    for i in range(1_000_000):
        print("publish", flush=True)
        store.publish(manifest_for(new_version(start + timedelta(seconds=i))), files, keep=int(keep))


if __name__ == "__main__":
    main(*sys.argv[1:])
