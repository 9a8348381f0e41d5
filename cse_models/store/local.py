"""The model store in a local directory (DESIGN.md §4): publication writes a temporary sibling directory,
fsyncs it, renames it into place and then replaces LATEST (write-temp + os.replace), so a reader sees the
old version or the new one, never half.

A version is complete when its directory holds manifest.json (the rename brings it in whole); only
complete versions are listed. Pruning renames a version to a hidden `.trash-*` name before deleting
it, so a kill mid-delete leaves nothing half-deleted in sight. What a killed process leaves behind
(`.tmp-*` directories, `.trash-*`, `.LATEST.*.tmp` / `.PINNED.*.tmp`) is removed by `clean_stale`,
which every publication runs first. Pure stdlib: serving imports it and must not pull in jax.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from cse_models.errors import StoreError
from cse_models.store.base import ModelStore
from cse_models.store.layout import (
    LATEST,
    MANIFEST,
    MODEL_FILE,
    PINNED,
    STALE_AFTER_S,
    is_version,
    sha256_file,
)
from cse_models.store.manifest import Manifest

log = logging.getLogger(__name__)

_TRASH_RE = re.compile(r"^\.trash-(?P<version>\d{8}T\d{6}Z-[0-9a-f]{8})-[0-9a-f]{8}$")
_PUBLISH_TEMP_PREFIX = ".tmp-"
_POINTER_TEMP_RE = re.compile(rf"^\.({LATEST}|{PINNED})\.[0-9a-f]{{8}}\.tmp$")  # what _write_atomic leaves


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


class LocalModelStore(ModelStore[Path]):
    """The model store in a directory; `open_store(path)` builds one."""

    def __init__(self, root: str | Path, *, stale_after_s: float = STALE_AFTER_S) -> None:
        super().__init__(stale_after_s=stale_after_s)
        self.root = Path(root)

    def series_dir(self, symbol: str, interval: str) -> Path:
        return self.root / symbol / interval

    def series_location(self, symbol: str, interval: str) -> str:
        return str(self.series_dir(symbol, interval))

    def version_dir(self, symbol: str, interval: str, version: str) -> Path:
        self.version_location(symbol, interval, version)  # checks the version's format
        return self.series_dir(symbol, interval) / version

    def _read_pointer(self, symbol: str, interval: str, name: str) -> str | None:
        return _read_pointer(self.series_dir(symbol, interval) / name)

    def _write_pointer(self, symbol: str, interval: str, name: str, version: str) -> None:
        _write_atomic(self.series_dir(symbol, interval) / name, version + "\n")

    def _remove_pointer(self, symbol: str, interval: str, name: str) -> bool:
        pointer = self.series_dir(symbol, interval) / name
        try:
            pointer.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(pointer.parent)
        return True

    def _version_exists(self, symbol: str, interval: str, version: str) -> bool:
        return self.version_dir(symbol, interval, version).exists()

    def _is_complete(self, symbol: str, interval: str, version: str) -> bool:
        return (self.version_dir(symbol, interval, version) / MANIFEST).is_file()

    def _read_manifest_text(self, symbol: str, interval: str, version: str) -> str:
        return (self.version_dir(symbol, interval, version) / MANIFEST).read_text()

    def _write_version(self, manifest: Manifest, files: dict[str, Path]) -> None:
        """Copy into `.tmp-<version>`, write the manifest, fsync everything, rename into place."""
        series = self.series_dir(manifest.symbol, manifest.interval)
        series.mkdir(parents=True, exist_ok=True)
        tmp = series / f"{_PUBLISH_TEMP_PREFIX}{manifest.version}"
        tmp.mkdir()
        try:
            hashes = {}
            for rel, src in sorted(files.items()):
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                hashes[rel] = sha256_file(dest)
            with (tmp / MANIFEST).open("w") as fh:
                json.dump(manifest.with_files(hashes).to_dict(), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            for path in tmp.rglob("*"):
                if path.is_file():
                    with path.open("rb") as fh:
                        os.fsync(fh.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, series / manifest.version)
            _fsync_dir(series)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _hide(self, symbol: str, interval: str, version: str) -> Path | None:
        """Rename the version to a fresh `.trash-*` name (atomic; the series directory is fsynced)."""
        series = self.series_dir(symbol, interval)
        trash = _trash_path(series, version)
        try:
            os.rename(series / version, trash)
        except FileNotFoundError:
            return None  # a concurrent prune took it
        _fsync_dir(series)
        return trash

    def _restore(self, symbol: str, interval: str, version: str, hidden: Path) -> bool:
        series = self.series_dir(symbol, interval)
        try:
            os.rename(hidden, series / version)
        except FileNotFoundError:
            log.warning("%s %s version %s: its trash was claimed by a concurrent clean", symbol, interval, version)
            return False
        _fsync_dir(series)
        return True

    def _delete_hidden(self, symbol: str, interval: str, version: str, hidden: Path) -> None:
        try:
            shutil.rmtree(hidden)
        except FileNotFoundError:
            log.warning("%s %s version %s: its trash was claimed by a concurrent clean", symbol, interval, version)

    def versions(self, symbol: str, interval: str) -> list[str]:
        """Complete versions, oldest first. A version directory without manifest.json is not one: the
        rename of publication brings the manifest in with everything else, so only a half-deleted or
        hand-made directory lacks it."""
        series = self.series_dir(symbol, interval)
        if not series.is_dir():
            return []
        return sorted(p.name for p in series.iterdir() if is_version(p.name) and (p / MANIFEST).is_file())

    def series(self) -> list[tuple[str, str]]:
        if not self.root.is_dir():
            return []
        pointers = [*self.root.glob(f"*/*/{LATEST}"), *self.root.glob(f"*/*/{PINNED}")]
        return sorted({(p.parent.parent.name, p.parent.name) for p in pointers})

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
