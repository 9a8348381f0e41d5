"""The model store protocol, and the publish / pin / retention sequence written once for every store.

The contract (DESIGN.md §4): a version becomes visible whole or not at all, LATEST moves only after it
is, readers verify every file against the manifest's sha256, retention never removes LATEST or PINNED,
and what a killed writer leaves behind is cleaned by the next one. `LocalModelStore` (a directory:
rename into place) and `ObjectModelStore` (an fsspec URL: manifest.json written last) implement the
few primitives that differ — writing a version whole, reading and writing a pointer, hiding a version
before deleting it — and inherit the sequence, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, TypeVar

from cse_models.errors import ConfigError, StoreError, UnknownNameError
from cse_models.store.layout import LATEST, MANIFEST, MODEL_FILE, PINNED, STALE_AFTER_S, is_version
from cse_models.store.manifest import Manifest

log = logging.getLogger(__name__)

Hidden = TypeVar("Hidden")  # what `_hide` hands to `_restore` / `_delete_hidden`: a trash path, the manifest


class ModelStore(ABC, Generic[Hidden]):
    """A versioned model store. Build one with `open_store(root)` (a directory or an fsspec URL).

    `stale_after_s` is how long a temporary entry must have been left untouched before `clean_stale`
    takes its writer for dead: a younger one may belong to a publisher still writing (tests pass 0)."""

    def __init__(self, *, stale_after_s: float = STALE_AFTER_S) -> None:
        if stale_after_s < 0:
            raise ConfigError(f"stale_after_s must be ≥ 0 seconds, got {stale_after_s}")
        self.stale_after_s = stale_after_s

    # -- where things are -------------------------------------------------------------------------------
    @abstractmethod
    def series_location(self, symbol: str, interval: str) -> str:
        """The series as a path or URL, for people and logs."""

    def version_location(self, symbol: str, interval: str, version: str) -> str:
        if not is_version(version):
            raise StoreError(f"{version!r} is not a store version (YYYYMMDDTHHMMSSZ-xxxxxxxx)")
        return f"{self.series_location(symbol, interval)}/{version}"

    # -- the primitives each store implements -----------------------------------------------------------
    @abstractmethod
    def _read_pointer(self, symbol: str, interval: str, name: str) -> str | None:
        """The version LATEST or PINNED names; None when there is none; StoreError for garbage."""

    @abstractmethod
    def _write_pointer(self, symbol: str, interval: str, name: str, version: str) -> None:
        """Replace a pointer whole."""

    @abstractmethod
    def _remove_pointer(self, symbol: str, interval: str, name: str) -> bool:
        """Delete a pointer → whether there was one."""

    @abstractmethod
    def _version_exists(self, symbol: str, interval: str, version: str) -> bool:
        """Whether anything of the version is there, complete or not."""

    @abstractmethod
    def _write_version(self, manifest: Manifest, files: dict[str, Path]) -> None:
        """Write the files and the manifest (with every file's sha256) so that the version appears whole or
        not at all; leave nothing behind on failure."""

    @abstractmethod
    def _is_complete(self, symbol: str, interval: str, version: str) -> bool:
        """Whether the version's manifest.json is there (a version without one is not listed)."""

    @abstractmethod
    def _read_manifest_text(self, symbol: str, interval: str, version: str) -> bytes | str:
        """manifest.json's text; FileNotFoundError when it is not there."""

    @abstractmethod
    def _hide(self, symbol: str, interval: str, version: str) -> Hidden | None:
        """Take a version out of `versions()` in one step before deleting it → what `_restore` needs to put
        it back, or None when a concurrent pruner got there first."""

    @abstractmethod
    def _restore(self, symbol: str, interval: str, version: str, hidden: Hidden) -> bool:
        """Put a hidden version back (it was pinned meanwhile) → False when a concurrent cleaner had already
        taken it whole (it is gone, never restored half-deleted)."""

    @abstractmethod
    def _delete_hidden(self, symbol: str, interval: str, version: str, hidden: Hidden) -> None:
        """Delete a hidden version."""

    @abstractmethod
    def versions(self, symbol: str, interval: str) -> list[str]:
        """Complete versions (those with manifest.json), oldest first."""

    @abstractmethod
    def series(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has a LATEST or a PINNED pointer."""

    @abstractmethod
    def verified(self, symbol: str, interval: str, version: str) -> tuple[Manifest, Path]:
        """The manifest and a local directory holding the version, every file matching its sha256."""

    @abstractmethod
    def clean_stale(self, symbol: str, interval: str) -> list[str]:
        """Remove what killed writers left in a series (untouched for `stale_after_s`) → the names removed."""

    # -- the sequence, written once ---------------------------------------------------------------------
    def publish(self, manifest: Manifest, files: dict[str, Path], *, keep: int = 5) -> str:
        """Write `files` (relative name → local path) as a new version, point LATEST at it, apply retention
        → the version's location.

        `manifest.files` is filled with the sha256 of every file. LATEST and PINNED are read first, so a
        garbage pointer fails the publication before anything is written rather than in `prune` after
        LATEST moved; leftovers of killed publishers are cleaned first."""
        if MODEL_FILE not in files:
            raise StoreError(f"a published model needs {MODEL_FILE}")
        symbol, interval, version = manifest.symbol, manifest.interval, manifest.version
        location = self.version_location(symbol, interval, version)
        self.latest(symbol, interval)
        self.pinned(symbol, interval)
        self.clean_stale(symbol, interval)
        if self._version_exists(symbol, interval, version):
            raise StoreError(f"version {version} already exists in {self.series_location(symbol, interval)}")
        self._write_version(manifest, files)
        self._write_pointer(symbol, interval, LATEST, version)
        self.prune(symbol, interval, keep=keep)
        log.info("published %s %s version %s to %s", symbol, interval, version, location)
        return location

    def latest(self, symbol: str, interval: str) -> str | None:
        return self._read_pointer(symbol, interval, LATEST)

    def pinned(self, symbol: str, interval: str) -> str | None:
        """The version an operator pinned: serving holds it instead of following LATEST, and retention
        keeps it. It lives in the store so that every server, after any restart, sees the same pin."""
        return self._read_pointer(symbol, interval, PINNED)

    def pin(self, symbol: str, interval: str, version: str) -> None:
        """Pin `version` until `unpin`. StoreError for a malformed version, UnknownNameError for one the
        series lacks or holds incomplete. The version is checked again once PINNED is written: a prune that
        hid it in between wins, the previous pin is put back and the pin fails, so a pin that succeeds is
        one retention will honour (prune reads PINNED again after hiding a version and undoes it)."""
        self.version_location(symbol, interval, version)
        if version not in self.versions(symbol, interval):
            raise self._unknown_version(symbol, interval, version)
        before = self.pinned(symbol, interval)
        self._write_pointer(symbol, interval, PINNED, version)
        if not self._is_complete(symbol, interval, version):
            if before is None:
                self.unpin(symbol, interval)
            else:
                self._write_pointer(symbol, interval, PINNED, before)
            raise self._unknown_version(symbol, interval, version)
        log.info("pinned %s %s to version %s", symbol, interval, version)

    def unpin(self, symbol: str, interval: str) -> bool:
        """Remove the pin → whether there was one."""
        if not self._remove_pointer(symbol, interval, PINNED):
            return False
        log.info("unpinned %s %s", symbol, interval)
        return True

    def _unknown_version(self, symbol: str, interval: str, version: str) -> UnknownNameError:
        known = ", ".join(self.versions(symbol, interval)) or "none"
        return UnknownNameError(f"{symbol} {interval} has no version {version!r} (complete); versions: {known}")

    def read_manifest(self, symbol: str, interval: str, version: str) -> Manifest:
        where = f"{self.version_location(symbol, interval, version)}/{MANIFEST}"
        try:
            text = self._read_manifest_text(symbol, interval, version)
        except FileNotFoundError as exc:
            raise StoreError(f"{where} is missing") from exc
        try:
            return Manifest.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{where} is not valid JSON: {exc}") from exc

    def prune(self, symbol: str, interval: str, *, keep: int, pinned: tuple[str, ...] = ()) -> list[str]:
        """Delete all but the newest `keep` complete versions, never LATEST, the PINNED version nor those in
        `pinned` (extra versions a caller still needs) → the versions deleted.

        Each version is first hidden in one step (`_hide`) and only then deleted, so a kill mid-delete
        leaves something for `clean_stale`, never a half-deleted version in `versions()`. PINNED is read
        again after hiding: a pin written meanwhile gets its version back."""
        if keep < 1:
            raise StoreError(f"retention keep must be ≥ 1, got {keep}")
        versions = self.versions(symbol, interval)
        protect = {*versions[-keep:], *pinned, self.latest(symbol, interval), self.pinned(symbol, interval)}
        removed = []
        for version in versions:
            if version in protect:
                continue
            hidden = self._hide(symbol, interval, version)
            if hidden is None:
                continue
            if self.pinned(symbol, interval) == version:
                if self._restore(symbol, interval, version, hidden):
                    continue
            else:
                self._delete_hidden(symbol, interval, version, hidden)
            removed.append(version)
        return removed
