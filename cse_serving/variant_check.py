"""Which encoding of a version serves on THIS machine: the int8 variant only when `Settings.int8` asks
for it AND the variant answers like its fp32 graph here, on the probe windows stored with the version.

Integer kernels differ by CPU: a variant proved within tolerance on the publisher's CPU (with VNNI) can
answer wrong on a CPU without it (u8×s8 saturation, issue 21; `cse_models.export.quantize`). So at load
the fp32 graph and the variant run the version's probe windows (`variants["int8"]["probe"]`, an npz
among the sha256-verified files) each alone and all at once, and the difference is judged by the
tolerance the publisher stored, with the publisher's own rule (`Int8Tolerance.exceeded`). When the
variant is off here, or the version has no probe (published before probes were stored), fp32 serves
and `Served.reason` says why (logged, and shown as `encoding_reason` in GET /models).

A manifest that names a variant or probe file that is not one of its verified files is broken, not
merely old: StoreError, the version does not load (as for a tampered file).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cse_models.errors import StoreError
from cse_models.export.int8_parity import Int8Tolerance, parity, read_probe
from cse_models.store import MODEL_FILE, Manifest, Variant
from cse_serving.settings import Settings

log = logging.getLogger(__name__)

FP32 = "fp32"
INT8 = "int8"

OpenSession = Callable[[str], ort.InferenceSession]
"""A verified file of the version (path relative to it) → its session (`cse_serving.loading`)."""


@dataclass(frozen=True)
class Served:
    """The session to serve and why: `reason` is set when fp32 serves though the setting asked for int8."""

    encoding: str
    file: str
    session: ort.InferenceSession
    reason: str | None = None


def served_encoding(
    manifest: Manifest,
    root: Path,
    settings: Settings,
    roles: Mapping[str, str],
    output_names: tuple[str, ...],
    open_session: OpenSession,
) -> Served:
    """The encoding to serve for a verified version at `root`: fp32 unless `settings.int8` and the
    manifest's int8 variant passes its probe here. `roles`: input role → graph input name."""
    where = f"{manifest.symbol} {manifest.interval} {manifest.version}"
    if not settings.int8:
        return Served(FP32, MODEL_FILE, open_session(MODEL_FILE))
    if INT8 not in manifest.variants:
        return _fp32(open_session, where, "the version lists no int8 variant")
    variant = manifest.variants[INT8]
    file = _verified_file(variant.file, ".onnx", manifest, where, label="variants['int8']")
    if variant.probe is None:
        return _fp32(open_session, where, "its int8 variant has no probe windows to check it on this CPU")
    probe_file = _verified_file(variant.probe.file, ".npz", manifest, where, label="variants['int8']['probe']")
    fp32, int8 = open_session(MODEL_FILE), open_session(file)
    reason = probe_disagreement(variant, root / probe_file, roles, output_names, fp32, int8)
    if reason is not None:
        log.warning("%s: serving fp32, not its int8 variant: %s", where, reason)
        return Served(FP32, MODEL_FILE, fp32, reason)
    return Served(INT8, file, int8)


def _fp32(open_session: OpenSession, where: str, reason: str) -> Served:
    log.warning("%s: serving fp32 though int8 was asked for: %s", where, reason)
    return Served(FP32, MODEL_FILE, open_session(MODEL_FILE), reason)


def _verified_file(file: str, suffix: str, manifest: Manifest, where: str, *, label: str) -> str:
    """`file`, which must be a `suffix` file at the version's top level among its sha256-verified files;
    StoreError otherwise."""
    if "/" in file or not file.endswith(suffix) or file not in manifest.files:
        raise StoreError(
            f"{where}: {label} names file {file!r}, which is not a {suffix} file among the version's "
            f"sha256-verified files {sorted(manifest.files)}"
        )
    return file


def probe_disagreement(
    variant: Variant,
    probe_path: Path,
    roles: Mapping[str, str],
    output_names: tuple[str, ...],
    fp32: ort.InferenceSession,
    int8: ort.InferenceSession,
) -> str | None:
    """Why the variant may not serve here (None: it answers the probe within its stored tolerance)."""
    if variant.tolerance is None:
        return "its int8 variant records no tolerance to check it against"
    try:
        tolerance = Int8Tolerance(**variant.tolerance)
    except TypeError as exc:
        return f"its int8 variant has no usable tolerance ({exc!r})"
    try:
        arrays = read_probe(probe_path)
        feeds = {name: np.asarray(arrays[role], dtype=np.float32) for role, name in roles.items()}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        return f"its probe windows cannot be read ({exc!r})"
    try:
        deltas = parity(fp32, int8, output_names, feeds)
    except Exception as exc:  # onnxruntime's run errors are untyped
        return f"its probe windows do not run ({exc})"
    broken = tolerance.exceeded(deltas)
    if broken:
        windows = next(iter(feeds.values())).shape[0]
        return f"on this CPU the int8 variant differs from fp32 on {windows} probe windows: {'; '.join(broken)}"
    return None
