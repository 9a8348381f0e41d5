"""What the asset catalog shows beside every asset: its group, its owners and its code version.

`code_version` is a fingerprint of the source the asset's value depends on — its asset module and the
library packages that compute it — so the UI flags an asset (and everything below it) stale when that code
changes, without anyone remembering to bump a number. It hashes files and imports nothing: the
fingerprint of the model domain must not load JAX. A docstring edit changes it too; a needless re-run
of a few cheap steps is a better failure than a stale model shown as fresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cse_models

PACKAGES_ROOT = Path(cse_models.__file__).parent.parent  # holds cse_models/ and cse_assets/
# Every domain's values depend on these: the configs, the spec and registry types, the error types.
COMMON = ("cse_models/config.py", "cse_models/specs.py", "cse_models/registry.py", "cse_models/errors.py")


def source_fingerprint(root: Path, sources: Iterable[str]) -> str:
    """First 12 hex digits of a sha256 over every `.py` file under `root / source` for each source (a file
    or a package directory), by its path relative to `root` and its content, in a stable order."""
    paths = [root / source for source in sources]
    files = sorted({f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py"))})
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Domain:
    """One asset group: its name in the UI, who answers for it, and the code its values come from (paths
    relative to the packages' root)."""

    group: str
    owners: tuple[str, ...]
    sources: tuple[str, ...]

    @cached_property
    def code_version(self) -> str:
        return source_fingerprint(PACKAGES_ROOT, (*COMMON, *self.sources))


# The Dagster pool of every step that runs JAX (training, walk-forward, export, parity). Its limit lives in
# dagster.yaml (`concurrency: pools:`): on a small machine two symbols training at once only share the
# cores and double the wall time of both, and on one GPU each JAX process would reserve most of its memory.
TRAINING_POOL = "training"

DATA = Domain(
    "data",
    ("team:cse-data",),
    ("cse_assets/assets/data.py", "cse_models/data", "cse_models/features", "cse_models/heads"),
)
MODELS = Domain(
    "models",
    ("team:cse-ml",),
    (
        "cse_assets/assets/models.py",
        "cse_models/models",
        "cse_models/training",
        "cse_models/export",
        "cse_models/heads",
        "cse_models/features",
    ),
)
EVALUATION = Domain(
    "evaluation",
    ("team:cse-ml",),
    (
        "cse_assets/assets/evaluation.py",
        "cse_models/evaluation",
        "cse_models/training",
        "cse_models/models",
        "cse_models/heads",
        "cse_models/features",
    ),
)
ENSEMBLE = Domain(
    "ensemble",
    ("team:cse-ml",),
    ("cse_assets/assets/ensemble.py", "cse_models/ensembles", "cse_models/heads", "cse_models/features"),
)
PUBLISH = Domain(
    "publish",
    ("team:cse-ml",),
    ("cse_assets/assets/publish.py", "cse_models/publication/publish.py", "cse_models/store.py", "cse_models/heads"),
)
# Global models: one graph trained on every symbol's rows before one calendar cut, checked on each symbol's
# rows after it (zero-shot for a symbol it never saw) and published per symbol. The panel's training is its
# own group (run by the `global_training` job, never by a symbol's refresh); the per-symbol check and
# publication sit beside the per-symbol evaluation and publication.
_GLOBAL = ("cse_assets/assets/global_models.py", "cse_assets/global_check.py", "cse_models/publication/global_model.py")
GLOBAL_MODELS = Domain(
    "global",
    ("team:cse-ml",),
    (
        *_GLOBAL,
        "cse_models/datasets",
        "cse_models/scoring",
        "cse_models/models",
        "cse_models/classical",
        "cse_models/training",
        "cse_models/export",
        "cse_models/heads",
        "cse_models/features",
    ),
)
GLOBAL_EVALUATION = Domain(
    "evaluation", ("team:cse-ml",), (*_GLOBAL, "cse_models/evaluation", "cse_models/scoring", "cse_models/heads")
)
GLOBAL_PUBLISH = Domain(
    "publish", ("team:cse-ml",), (*_GLOBAL, "cse_models/publication", "cse_models/store", "cse_models/heads")
)
