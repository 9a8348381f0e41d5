"""The model store: the one contract between training and serving (DESIGN.md §4).

- `layout`: the names — versions, LATEST / PINNED, model.onnx, scaler.json, manifest.json, sha256;
- `manifest`, `sections`: the typed manifest of a version (metrics, training, ensemble, variants typed,
  every other key kept), read with its checks (`json_fields`);
- `base`: `ModelStore`, the protocol, with the publish / pin / retention sequence written once;
- `local` / `objects`: a directory (rename into place) and an fsspec URL (manifest.json written last);
- `open_store(root)`: the one that fits a root.

Pure stdlib at import: serving imports this package and must not pull in jax (fsspec comes in only when
an object store is opened).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cse_models.store.base import ModelStore
from cse_models.store.layout import (
    LATEST,
    MANIFEST,
    MODEL_FILE,
    PINNED,
    SCALER_FILE,
    STALE_AFTER_S,
    is_store_url,
    is_version,
    new_version,
    sha256_file,
)
from cse_models.store.local import LocalModelStore
from cse_models.store.manifest import SCHEMA_VERSION, HeadVerdict, Manifest, Member, TensorSpec
from cse_models.store.objects import ObjectModelStore
from cse_models.store.sections import (
    BoardRow,
    BoardSummary,
    DataFacts,
    DataRange,
    EnsembleEntry,
    Metrics,
    Probe,
    TrainingFacts,
    Variant,
)


def open_store(root: str | Path, **options: Any) -> ModelStore:
    """The store at `root`: an `ObjectModelStore` for an fsspec URL (`s3://bucket/prefix`; options
    `storage_options`, `cache_dir`), else a `LocalModelStore` directory. Both take `stale_after_s`."""
    if is_store_url(root):
        return ObjectModelStore(str(root), **options)
    return LocalModelStore(root, **options)


__all__ = [
    "LATEST",
    "MANIFEST",
    "MODEL_FILE",
    "PINNED",
    "SCALER_FILE",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "BoardRow",
    "BoardSummary",
    "DataFacts",
    "DataRange",
    "EnsembleEntry",
    "HeadVerdict",
    "LocalModelStore",
    "Manifest",
    "Member",
    "Metrics",
    "ModelStore",
    "ObjectModelStore",
    "Probe",
    "TensorSpec",
    "TrainingFacts",
    "Variant",
    "is_store_url",
    "is_version",
    "new_version",
    "open_store",
    "sha256_file",
]
