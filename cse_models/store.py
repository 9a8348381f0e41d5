"""The model store: the one contract between training and serving (DESIGN.md §4).

```
{root}/{symbol}/{interval}/{version}/model.onnx, members/<name>.onnx, scaler.json, manifest.json
{root}/{symbol}/{interval}/LATEST        one version, replaced atomically
{root}/{symbol}/{interval}/PINNED        optional: the version an operator pinned; retention keeps it
```
Publication writes a temporary sibling directory, fsyncs it, renames it into place and then
replaces LATEST (write-temp + os.replace): a reader sees the old version or the new one, never half.
Readers verify every file against the manifest's sha256 before trusting it.

A version is complete when its directory holds manifest.json (the rename brings it in whole); only
complete versions are listed. Pruning renames a version to a hidden `.trash-*` name before deleting
it, so a kill mid-delete leaves nothing half-deleted in sight. What a killed process leaves behind
(`.tmp-*` directories, `.trash-*`, `.LATEST.*.tmp` / `.PINNED.*.tmp`) is removed by `clean_stale`,
which every publication runs first. The pin lives here, not in a server's memory, so that serving,
its restarts and retention all see the same one.

`ModelStore(root)` takes a local directory or an fsspec URL (`s3://bucket/prefix`); a URL gives an
`ObjectModelStore` (cse_models/store_objects.py), which keeps the same contract where nothing can be
renamed: a version's objects first and its manifest.json last, LATEST and PINNED as single objects.

Pure stdlib: serving imports this module and must not pull in jax (fsspec comes in only for a URL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cse_models.errors import ConfigError, StoreError, UnknownNameError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
LATEST = "LATEST"
PINNED = "PINNED"
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
SCALER_FILE = "scaler.json"
_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
_TRASH_RE = re.compile(r"^\.trash-(?P<version>\d{8}T\d{6}Z-[0-9a-f]{8})-[0-9a-f]{8}$")
_PUBLISH_TEMP_PREFIX = ".tmp-"
_POINTER_TEMP_RE = re.compile(rf"^\.({LATEST}|{PINNED})\.[0-9a-f]{{8}}\.tmp$")  # what _write_atomic leaves
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")
STALE_AFTER_S = 15 * 60.0


def is_store_url(root: str | Path) -> bool:
    """Whether a store root is an fsspec URL (`s3://bucket/prefix`) rather than a local directory."""
    return isinstance(root, str) and bool(_URL_RE.match(root))


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
    # The published model is an ensemble: method, members' weights, each member's graph outputs inside
    # model.onnx and why the ensemble (not its best member) was chosen. Empty for a single model.
    ensemble: dict[str, Any] = field(default_factory=dict)
    # Other encodings of model.onnx serving may run instead, by name ("int8"): file, parity delta, skill.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
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


def _read_pointer(path: Path) -> str | None:
    """The version a pointer file (LATEST, PINNED) names; None when there is no such file."""
    try:
        version = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not is_version(version):
        raise StoreError(f"{path} holds {version!r}, not a version")
    return version


def _last_modified(path: Path) -> float:
    """The newest mtime of `path` and everything under it: a publisher copying a big file into
    `.tmp-*/members/` changes nothing at the top, yet it is still at work."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for sub in path.rglob("*"):
            newest = max(newest, sub.lstat().st_mtime)
    return newest


def _is_unfinished(path: Path) -> bool:
    """A `.tmp-*` publication, a `.LATEST.*.tmp` / `.PINNED.*.tmp` pointer file, or a version
    directory without manifest.json: what a writer killed mid-way leaves, or one still at work."""
    name = path.name
    if name.startswith(_PUBLISH_TEMP_PREFIX) or _POINTER_TEMP_RE.match(name):
        return True
    return is_version(name) and not (path / MANIFEST).is_file()


def _trash_path(series: Path, version: str) -> Path:
    """A fresh hidden name for a version on its way to deletion (matches _TRASH_RE)."""
    return series / f".trash-{version}-{secrets.token_hex(4)}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


class ModelStore:
    """A local-directory model store; given a URL root, an `ObjectModelStore` (same API, same contract).

    `stale_after_s` is how long a temporary entry must have been left untouched before `clean_stale`
    takes its writer for dead: a younger one may belong to a publisher still writing (tests pass 0)."""

    def __new__(cls, root: str | Path, **kwargs: Any) -> ModelStore:
        if cls is ModelStore and is_store_url(root):
            from cse_models.store_objects import ObjectModelStore  # fsspec only for a URL root

            return super().__new__(ObjectModelStore)
        return super().__new__(cls)

    def __init__(self, root: str | Path, *, stale_after_s: float = STALE_AFTER_S) -> None:
        if stale_after_s < 0:
            raise ConfigError(f"stale_after_s must be ≥ 0 seconds, got {stale_after_s}")
        self.root = Path(root)
        self.stale_after_s = stale_after_s

    def series_dir(self, symbol: str, interval: str) -> Path:
        return self.root / symbol / interval

    def version_dir(self, symbol: str, interval: str, version: str) -> Path:
        if not is_version(version):
            raise StoreError(f"{version!r} is not a store version (YYYYMMDDTHHMMSSZ-xxxxxxxx)")
        return self.series_dir(symbol, interval) / version

    def publish(self, manifest: Manifest, files: dict[str, Path], *, keep: int = 5) -> Path:
        """Copy `files` (relative name → source path) into a new version, then point LATEST at it.

        `manifest.files` is filled here with the sha256 of every copied file. Leftovers of killed
        publishers are cleaned first, and LATEST and PINNED are read first, so that a garbage pointer
        fails the publication before anything is written rather than in `prune` after LATEST moved."""
        if MODEL_FILE not in files:
            raise StoreError(f"a published model needs {MODEL_FILE}")
        series = self.series_dir(manifest.symbol, manifest.interval)
        series.mkdir(parents=True, exist_ok=True)
        self.latest(manifest.symbol, manifest.interval)
        self.pinned(manifest.symbol, manifest.interval)
        self.clean_stale(manifest.symbol, manifest.interval)
        final = self.version_dir(manifest.symbol, manifest.interval, manifest.version)
        if final.exists():
            raise StoreError(f"version {manifest.version} already exists in {series}")
        tmp = series / f"{_PUBLISH_TEMP_PREFIX}{manifest.version}"
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
        return _read_pointer(self.series_dir(symbol, interval) / LATEST)

    def pinned(self, symbol: str, interval: str) -> str | None:
        """The version an operator pinned: serving holds it instead of following LATEST, and retention
        keeps it. It lives in the store so that every server, after any restart, sees the same pin."""
        return _read_pointer(self.series_dir(symbol, interval) / PINNED)

    def pin(self, symbol: str, interval: str, version: str) -> None:
        """Pin `version` (write PINNED atomically) until `unpin`.

        StoreError for a malformed version, UnknownNameError for one the series lacks or holds
        incomplete. The version is checked again once PINNED is written: a prune that renamed it away
        in between wins, the previous pin is put back and the pin fails, so a pin that succeeds is one
        retention will honour (prune reads PINNED again after each rename and undoes it)."""
        version_dir = self.version_dir(symbol, interval, version)
        if version not in self.versions(symbol, interval):
            raise self._unknown_version(symbol, interval, version)
        pointer = self.series_dir(symbol, interval) / PINNED
        before = self.pinned(symbol, interval)
        _write_atomic(pointer, version + "\n")
        if not (version_dir / MANIFEST).is_file():
            if before is None:
                self.unpin(symbol, interval)
            else:
                _write_atomic(pointer, before + "\n")
            raise self._unknown_version(symbol, interval, version)
        log.info("pinned %s %s to version %s", symbol, interval, version)

    def unpin(self, symbol: str, interval: str) -> bool:
        """Remove the pin → whether there was one."""
        pointer = self.series_dir(symbol, interval) / PINNED
        try:
            pointer.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(pointer.parent)
        log.info("unpinned %s %s", symbol, interval)
        return True

    def _unknown_version(self, symbol: str, interval: str, version: str) -> UnknownNameError:
        known = ", ".join(self.versions(symbol, interval)) or "none"
        return UnknownNameError(f"{symbol} {interval} has no version {version!r} (complete); versions: {known}")

    def versions(self, symbol: str, interval: str) -> list[str]:
        """Complete versions, oldest first. A version directory without manifest.json is not one: the
        rename of publication brings the manifest in with everything else, so only a half-deleted or
        hand-made directory lacks it."""
        series = self.series_dir(symbol, interval)
        if not series.is_dir():
            return []
        return sorted(p.name for p in series.iterdir() if is_version(p.name) and (p / MANIFEST).is_file())

    def series(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has a LATEST or a PINNED pointer."""
        if not self.root.is_dir():
            return []
        pointers = [*self.root.glob(f"*/*/{LATEST}"), *self.root.glob(f"*/*/{PINNED}")]
        return sorted({(p.parent.parent.name, p.parent.name) for p in pointers})

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
        """Delete all but the newest `keep` complete versions, never LATEST, the PINNED version nor
        those in `pinned` (extra versions a caller still needs) → the versions deleted.

        Each version is first renamed to a hidden `.trash-*` name (atomic; the series directory is
        fsynced) and only then deleted, so a kill mid-delete leaves trash for `clean_stale`, never a
        half-deleted version in `versions()`. PINNED is read again after each rename: a pin written
        meanwhile gets its version renamed back, unless a concurrent `clean_stale` already claimed
        the trash (then the version is gone whole, never restored half-deleted)."""
        if keep < 1:
            raise StoreError(f"retention keep must be ≥ 1, got {keep}")
        series = self.series_dir(symbol, interval)
        versions = self.versions(symbol, interval)
        protect = {*versions[-keep:], *pinned, self.latest(symbol, interval), self.pinned(symbol, interval)}
        removed = []
        for version in versions:
            if version in protect:
                continue
            trash = _trash_path(series, version)
            try:
                os.rename(series / version, trash)
            except FileNotFoundError:
                continue  # a concurrent prune took it
            _fsync_dir(series)
            try:
                if self.pinned(symbol, interval) == version:
                    os.rename(trash, series / version)
                    _fsync_dir(series)
                    continue
                shutil.rmtree(trash)
            except FileNotFoundError:
                log.warning("%s %s version %s: its trash was claimed by a concurrent clean", symbol, interval, version)
            removed.append(version)
        return removed

    def clean_stale(self, symbol: str, interval: str) -> list[str]:
        """Remove what killed processes left in a series → the names removed.

        Trash goes whenever it is found (it is out of sight already), except trash holding the pinned
        version, which the prune that made it is about to rename back; it is claimed by a rename to a
        fresh trash name first, so that a prune can never rename back a half-deleted version. A `.tmp-*` publication, a
        `.LATEST.*.tmp` / `.PINNED.*.tmp` file and a version directory without manifest.json (what the
        in-place delete of earlier releases left) go once nothing in them has changed for
        `stale_after_s`: a younger one may belong to a publisher still writing."""
        series = self.series_dir(symbol, interval)
        if not series.is_dir():
            return []
        pinned = self.pinned(symbol, interval)
        cutoff = time.time() - self.stale_after_s
        removed = []
        for path in sorted(series.iterdir()):
            name = path.name
            try:
                if trash := _TRASH_RE.match(name):
                    if trash["version"] == pinned:
                        continue
                    claimed = _trash_path(series, trash["version"])
                    os.rename(path, claimed)
                    shutil.rmtree(claimed)
                elif _is_unfinished(path) and _last_modified(path) <= cutoff:
                    _remove(path)
                else:
                    continue
                removed.append(name)
            except FileNotFoundError:
                continue  # another cleaner, prune or publisher moved it meanwhile
        if removed:
            log.info("cleaned %s %s: removed %s", symbol, interval, ", ".join(removed))
        return removed
