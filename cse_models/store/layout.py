"""Names in a model store (DESIGN.md §4) shared by every implementation: the version format, the pointer
and file names, and the sha256 every reader checks.

```
{root}/{symbol}/{interval}/{version}/model.onnx, members/<name>.onnx, scaler.json, manifest.json
{root}/{symbol}/{interval}/LATEST        one version, replaced whole
{root}/{symbol}/{interval}/PINNED        optional: the version an operator pinned; retention keeps it
```
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

LATEST = "LATEST"
PINNED = "PINNED"
POINTERS = (LATEST, PINNED)
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
SCALER_FILE = "scaler.json"
STALE_AFTER_S = 15 * 60.0
_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")


def is_store_url(root: str | Path) -> bool:
    """Whether a store root is an fsspec URL (`s3://bucket/prefix`) rather than a local directory."""
    return isinstance(root, str) and bool(_URL_RE.match(root))


def new_version(now: datetime | None = None) -> str:
    """UTC "YYYYMMDDTHHMMSSZ-<8 hex>": sortable by time, unique across concurrent publishers."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_version(text: str) -> bool:
    return bool(_VERSION_RE.match(text))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
