"""The model store on an object store (S3, MinIO, GCS, ...) through fsspec: the contract of DESIGN.md §4
where nothing can be renamed.

```
{url}/{symbol}/{interval}/{version}/model.onnx, members/<name>.onnx, scaler.json   objects first
{url}/{symbol}/{interval}/{version}/manifest.json                                  last: the version appears
{url}/{symbol}/{interval}/LATEST, PINNED                                           one object each, written whole
```
A version is complete when its manifest.json exists (the listing rule of the local store too), so
publication uploads every file first and the manifest last; a PUT replaces an object whole and S3 reads
are strongly consistent, so a reader that sees the manifest sees every file it names. Pruning claims a
version with a `.pruning` marker (an exclusive create: one pruner per version), deletes its manifest
(now invisible), reads PINNED again (a pin written meanwhile gets the manifest back) and only then deletes
the rest. A killed publisher or pruner leaves a prefix without manifest: `clean_stale` removes it once its
newest object is older than `stale_after_s`.

Serving needs files on disk (onnxruntime opens paths): `verified` downloads a version into a local cache
and checks every file's sha256 there; cached copies of versions the store has pruned are evicted then.
On a cache hit the files are hashed again, not trusted by a marker: hashing a few MB costs milliseconds,
the local store checks as much on every load, and it also catches a cache file damaged on disk or left
half-written by a killed server. Only missing or mismatching files are downloaded again.

Where the S3 endpoint and credentials come from: `storage_options` (fsspec's), else the environment —
`CSE_STORE_S3_ENDPOINT` (MinIO, moto) and botocore's own `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3`. The cache lives in
`cache_dir`, else `$CSE_STORE_CACHE`, else `$CSE_HOME/store-cache` (default `.cse/store-cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cse_models.errors import StoreError
from cse_models.store.base import ModelStore
from cse_models.store.layout import LATEST, MANIFEST, MODEL_FILE, PINNED, STALE_AFTER_S, is_version, sha256_file
from cse_models.store.manifest import Manifest

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

PRUNING = ".pruning"  # the marker a pruner claims a version with


def storage_options_from_env(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """fsspec storage options for `url` from the environment: for s3, `CSE_STORE_S3_ENDPOINT` and no
    listings cache (a watcher must see new versions; botocore reads the AWS_* variables itself)."""
    env = os.environ if env is None else env
    if not url.startswith(("s3://", "s3a://")):
        return {}
    options: dict[str, Any] = {"use_listings_cache": False}
    if endpoint := env.get("CSE_STORE_S3_ENDPOINT"):
        options["endpoint_url"] = endpoint
    return options


def object_filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """(filesystem, path without protocol) for an fsspec URL; explicit options win over the environment."""
    from fsspec.core import url_to_fs  # imported here: a local store (and serving on one) never loads it

    return url_to_fs(url, **{**storage_options_from_env(url), **(storage_options or {})})


def _default_cache_dir() -> Path:
    if cache := os.environ.get("CSE_STORE_CACHE"):
        return Path(cache)
    return Path(os.environ.get("CSE_HOME") or ".cse") / "store-cache"


class ObjectModelStore(ModelStore[bytes]):
    """The model store on an fsspec URL; `open_store(url)` builds one. `verified` gives a local (cached)
    directory; what `_hide` keeps to restore a version is its manifest's bytes."""

    def __init__(
        self,
        root: str,
        *,
        stale_after_s: float = STALE_AFTER_S,
        storage_options: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(stale_after_s=stale_after_s)
        self.root = root.rstrip("/")
        self.fs, self._base = object_filesystem(self.root, storage_options)
        self._base = self._base.rstrip("/")
        digest = hashlib.sha256(self.root.encode()).hexdigest()[:12]  # one cache per store
        self.cache_dir = Path(cache_dir or _default_cache_dir()) / digest

    def _key(self, *parts: str) -> str:
        return "/".join([self._base, *parts])

    def series_location(self, symbol: str, interval: str) -> str:
        return f"{self.root}/{symbol}/{interval}"

    def _objects(self, *parts: str) -> dict[str, dict[str, Any]]:
        """Every object under a prefix, by name relative to it, with its details (size, mtime)."""
        prefix = self._key(*parts)
        found = self.fs.find(prefix, detail=True)
        return {name[len(prefix) + 1 :]: info for name, info in found.items() if name.startswith(prefix + "/")}

    def _read_pointer(self, symbol: str, interval: str, name: str) -> str | None:
        try:
            version = self.fs.cat_file(self._key(symbol, interval, name)).decode().strip()
        except FileNotFoundError:
            return None
        if not is_version(version):
            raise StoreError(f"{self.series_location(symbol, interval)}/{name} holds {version!r}, not a version")
        return version

    def _write_pointer(self, symbol: str, interval: str, name: str, version: str) -> None:
        self.fs.pipe_file(self._key(symbol, interval, name), (version + "\n").encode())  # one PUT: whole

    def _remove_prefix(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # already gone: another cleaner or pruner took it
            self.fs.rm(key, recursive=True)

    def _version_exists(self, symbol: str, interval: str, version: str) -> bool:
        return bool(self._objects(symbol, interval, version))

    def _write_version(self, manifest: Manifest, files: dict[str, Path]) -> None:
        """Upload every file, manifest.json last. Each file is hashed before its upload; a file changed in
        between fails the readers' sha256 check, so it can never serve."""
        prefix = self._key(manifest.symbol, manifest.interval, manifest.version)
        try:
            hashes = {}
            for rel, src in sorted(files.items()):
                hashes[rel] = sha256_file(Path(src))
                self.fs.put_file(str(src), f"{prefix}/{rel}")
            self.fs.pipe_file(
                f"{prefix}/{MANIFEST}", json.dumps(manifest.with_files(hashes).to_dict(), indent=2).encode()
            )
        except Exception:
            self._remove_prefix(prefix)
            raise

    def _is_complete(self, symbol: str, interval: str, version: str) -> bool:
        return self.fs.exists(self._key(symbol, interval, version, MANIFEST))

    def _read_manifest_text(self, symbol: str, interval: str, version: str) -> bytes:
        return self.fs.cat_file(self._key(symbol, interval, version, MANIFEST))

    def _remove_pointer(self, symbol: str, interval: str, name: str) -> bool:
        key = self._key(symbol, interval, name)
        if not self.fs.exists(key):  # an S3 DELETE of a missing key succeeds: ask first
            return False
        self.fs.rm_file(key)
        return True

    def versions(self, symbol: str, interval: str) -> list[str]:
        """Complete versions (those with manifest.json), oldest first."""
        found = (rel.split("/") for rel in self._objects(symbol, interval))
        return sorted(p[0] for p in found if len(p) == 2 and p[1] == MANIFEST and is_version(p[0]))

    def series(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has a LATEST or a PINNED object (one paged listing of the store)."""
        found = set()
        for rel in self._objects():
            parts = rel.split("/")
            if len(parts) == 3 and parts[2] in (LATEST, PINNED):
                found.add((parts[0], parts[1]))
        return sorted(found)

    def verified(self, symbol: str, interval: str, version: str) -> tuple[Manifest, Path]:
        """The manifest and a local directory holding the version, every file matching its sha256.

        Files already in the cache are hashed again (cheap) and kept when they match; the others are
        downloaded to a temporary name, checked and renamed into place, so concurrent servers sharing
        the cache never see half a file under a real name."""
        manifest = self.read_manifest(symbol, interval, version)
        where = self.version_location(symbol, interval, version)
        if MODEL_FILE not in manifest.files:
            raise StoreError(f"{where}: manifest lists no {MODEL_FILE}")
        local = self.cache_dir / symbol / interval / version
        for rel, expected in manifest.files.items():
            path = local / rel
            if path.is_file() and sha256_file(path) == expected:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            try:
                self.fs.get_file(self._key(symbol, interval, version, rel), str(tmp))
            except FileNotFoundError as exc:
                raise StoreError(f"{where}/{rel} is missing") from exc
            if sha256_file(tmp) != expected:
                tmp.unlink()
                raise StoreError(f"{where}/{rel} fails its sha256 check (corrupt or half-written)")
            os.replace(tmp, path)
        copy = local / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"  # for people looking at the cache
        copy.write_text(json.dumps(manifest.to_dict(), indent=2))
        os.replace(copy, local / MANIFEST)
        self._evict_pruned(symbol, interval)
        return manifest, local

    def _evict_pruned(self, symbol: str, interval: str) -> None:
        """Delete cached copies of versions the store no longer lists (pruned): the cache holds at most
        what the store does. Sessions already built from them stay in memory."""
        cached = self.cache_dir / symbol / interval
        listed = set(self.versions(symbol, interval))
        for path in cached.iterdir():
            if is_version(path.name) and path.name not in listed:
                shutil.rmtree(path, ignore_errors=True)  # another server sharing the cache may be at it too

    def _hide(self, symbol: str, interval: str, version: str) -> bytes | None:
        """Claim the version with an exclusively created `.pruning` marker (one pruner per version), keep
        its manifest's bytes and delete the manifest: the version is out of sight."""
        prefix = self._key(symbol, interval, version)
        try:
            self.fs.pipe_file(f"{prefix}/{PRUNING}", b"", mode="create")
            text = self.fs.cat_file(f"{prefix}/{MANIFEST}")
        except FileExistsError:
            return None  # another pruner holds it
        except FileNotFoundError:
            self.fs.rm_file(f"{prefix}/{PRUNING}")
            return None  # a pruner that came first took it whole
        self.fs.rm_file(f"{prefix}/{MANIFEST}")
        return text

    def _restore(self, symbol: str, interval: str, version: str, hidden: bytes) -> bool:
        prefix = self._key(symbol, interval, version)
        self.fs.pipe_file(f"{prefix}/{MANIFEST}", hidden)
        self.fs.rm_file(f"{prefix}/{PRUNING}")
        return True

    def _delete_hidden(self, symbol: str, interval: str, version: str, hidden: bytes) -> None:
        self._remove_prefix(self._key(symbol, interval, version))

    def clean_stale(self, symbol: str, interval: str) -> list[str]:
        """Remove what killed publishers and pruners left → the version names removed: a version
        prefix without manifest.json (or a stale `.pruning` claim on a complete one) whose newest
        object is older than `stale_after_s`. A prefix the PINNED version names is left for the pruner
        that is about to put its manifest back."""
        pinned = self.pinned(symbol, interval)
        cutoff = time.time() - self.stale_after_s
        by_version: dict[str, dict[str, float]] = {}
        for rel, info in self._objects(symbol, interval).items():
            name, _, inside = rel.partition("/")
            if inside and is_version(name):
                modified = info.get("LastModified") or info.get("mtime") or info.get("created")
                stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0)
                by_version.setdefault(name, {})[inside] = stamp
        removed = []
        for version, objects in sorted(by_version.items()):
            if version == pinned or max(objects.values()) > cutoff:
                continue
            if MANIFEST not in objects:
                self._remove_prefix(self._key(symbol, interval, version))
            elif PRUNING in objects:
                self.fs.rm_file(self._key(symbol, interval, version, PRUNING))
            else:
                continue
            removed.append(version)
        if removed:
            log.info("cleaned %s %s: removed %s", symbol, interval, ", ".join(removed))
        return removed
