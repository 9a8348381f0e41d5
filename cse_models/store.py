"""The model store: the one contract between training and serving (DESIGN.md §4).

```
{root}/{symbol}/{interval}/{version}/model.onnx, members/<name>.onnx, scaler.json, manifest.json
{root}/{symbol}/{interval}/LATEST        one version, replaced atomically
```
Publication writes a temporary sibling directory, fsyncs it, renames it into place and then
replaces LATEST (write-temp + os.replace): a reader sees the old version or the new one, never half.
Readers verify every file against the manifest's sha256 before trusting it.

Pure stdlib: serving imports this module and must not pull in jax.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cse_models.errors import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
LATEST = "LATEST"
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
SCALER_FILE = "scaler.json"
_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def new_version(now: datetime | None = None) -> str:
    """UTC "YYYYMMDDTHHMMSSZ-<8 hex>": sortable by time, unique across concurrent publishers."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_version(text: str) -> bool:
    return bool(_VERSION_RE.match(text))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | str]  # "batch" marks the dynamic axis


@dataclass(frozen=True)
class Member:
    name: str
    architecture: str
    weight: float = 1.0


@dataclass(frozen=True)
class HeadVerdict:
    """One head of a published version: its graph outputs, its walk-forward skill against its reference
    and the gate's verdict. Serving answers only heads with `publish` true; `passed` is false for a head
    published only because publication was forced."""

    name: str
    outputs: list[str]
    reference: str
    skill: float
    p_value: float
    publish: bool
    passed: bool
    forced: bool
    reason: str


@dataclass(frozen=True)
class Manifest:
    symbol: str
    interval: str
    version: str
    created_at: str
    task: str
    feature_set: str
    feature_names: list[str]
    seq_len: int
    horizon: int
    warmup: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    class_names: list[str] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    heads: list[HeadVerdict] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
    schema_version: int = SCHEMA_VERSION

    def head(self, name: str) -> HeadVerdict | None:
        return next((h for h in self.heads if h.name == name), None)

    @property
    def min_klines(self) -> int:
        """Klines a request must carry: one window plus the feature set's warm-up."""
        return self.seq_len + self.warmup

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(f"manifest schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        try:
            return cls(
                **{
                    **data,
                    "inputs": [TensorSpec(**t) for t in data["inputs"]],
                    "outputs": [TensorSpec(**t) for t in data["outputs"]],
                    "members": [Member(**m) for m in data.get("members", [])],
                    "heads": [HeadVerdict(**h) for h in data.get("heads", [])],
                }
            )
        except (TypeError, KeyError) as exc:
            raise StoreError(f"manifest is malformed: {exc}") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ModelStore:
    """A local-directory model store."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def series_dir(self, symbol: str, interval: str) -> Path:
        return self.root / symbol / interval

    def version_dir(self, symbol: str, interval: str, version: str) -> Path:
        if not is_version(version):
            raise StoreError(f"{version!r} is not a store version (YYYYMMDDTHHMMSSZ-xxxxxxxx)")
        return self.series_dir(symbol, interval) / version

    def publish(self, manifest: Manifest, files: dict[str, Path], *, keep: int = 5) -> Path:
        """Copy `files` (relative name → source path) into a new version, then point LATEST at it.

        `manifest.files` is filled here with the sha256 of every copied file."""
        if MODEL_FILE not in files:
            raise StoreError(f"a published model needs {MODEL_FILE}")
        series = self.series_dir(manifest.symbol, manifest.interval)
        series.mkdir(parents=True, exist_ok=True)
        final = self.version_dir(manifest.symbol, manifest.interval, manifest.version)
        if final.exists():
            raise StoreError(f"version {manifest.version} already exists in {series}")
        tmp = series / f".tmp-{manifest.version}"
        tmp.mkdir()
        try:
            hashes = {}
            for rel, src in sorted(files.items()):
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                hashes[rel] = sha256_file(dest)
            complete = Manifest.from_dict({**manifest.to_dict(), "files": hashes})
            with (tmp / MANIFEST).open("w") as fh:
                json.dump(complete.to_dict(), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            for path in tmp.rglob("*"):
                if path.is_file():
                    with path.open("rb") as fh:
                        os.fsync(fh.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, final)
            _fsync_dir(series)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _write_atomic(series / LATEST, manifest.version + "\n")
        self.prune(manifest.symbol, manifest.interval, keep=keep)
        log.info("published %s %s version %s", manifest.symbol, manifest.interval, manifest.version)
        return final

    def latest(self, symbol: str, interval: str) -> str | None:
        path = self.series_dir(symbol, interval) / LATEST
        if not path.is_file():
            return None
        version = path.read_text().strip()
        if not is_version(version):
            raise StoreError(f"{path} holds {version!r}, not a version")
        return version

    def versions(self, symbol: str, interval: str) -> list[str]:
        series = self.series_dir(symbol, interval)
        if not series.is_dir():
            return []
        return sorted(p.name for p in series.iterdir() if p.is_dir() and is_version(p.name))

    def series(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has a LATEST pointer."""
        if not self.root.is_dir():
            return []
        return sorted((p.parent.parent.name, p.parent.name) for p in self.root.glob(f"*/*/{LATEST}"))

    def read_manifest(self, symbol: str, interval: str, version: str) -> Manifest:
        path = self.version_dir(symbol, interval, version) / MANIFEST
        try:
            return Manifest.from_dict(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise StoreError(f"{path} is missing") from exc
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path} is not valid JSON: {exc}") from exc

    def verified(self, symbol: str, interval: str, version: str) -> tuple[Manifest, Path]:
        """The manifest and directory of a version whose every file matches its sha256."""
        manifest = self.read_manifest(symbol, interval, version)
        root = self.version_dir(symbol, interval, version)
        if MODEL_FILE not in manifest.files:
            raise StoreError(f"{root}: manifest lists no {MODEL_FILE}")
        for rel, expected in manifest.files.items():
            path = root / rel
            if not path.is_file():
                raise StoreError(f"{path} is missing")
            if sha256_file(path) != expected:
                raise StoreError(f"{path} fails its sha256 check (corrupt or half-written)")
        return manifest, root

    def prune(self, symbol: str, interval: str, *, keep: int, pinned: tuple[str, ...] = ()) -> list[str]:
        """Delete all but the newest `keep` versions, never LATEST or a pinned one."""
        if keep < 1:
            raise StoreError(f"retention keep must be ≥ 1, got {keep}")
        versions = self.versions(symbol, interval)
        protect = {*versions[-keep:], *pinned, self.latest(symbol, interval)}
        removed = [v for v in versions if v not in protect]
        for version in removed:
            shutil.rmtree(self.version_dir(symbol, interval, version))
        return removed
