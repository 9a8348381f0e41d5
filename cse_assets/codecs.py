"""The one table of what the IO manager stores and how: every asset value's type → file extension,
writer and reader. Parquet, JSON, npz; never pickle.

Adding a stored type is one row in CODECS. The types are the library's JSON-friendly records, importable
without JAX (`training.summary`, `export.exported`), so the definitions load without the training stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cse_assets.global_check import GlobalCheck
from cse_models.datasets.segments import SplitArrays, load_datasets, save_datasets
from cse_models.ensembles import FittedEnsemble
from cse_models.evaluation.report import Leaderboards
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.publication.global_model import GlobalModel
from cse_models.store import Manifest
from cse_models.training.summary import TrainedModel


@dataclass(frozen=True)
class Codec:
    """How one Python type goes to and from a file with extension `ext`."""

    ext: str
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


def _save_datasets(splits: dict, path: Path) -> None:
    """A dict is stored only as `datasets` (dict[str, SplitArrays]); other values need their own type."""
    wrong = sorted({type(v).__qualname__ for v in splits.values() if not isinstance(v, SplitArrays)})
    if wrong:
        raise TypeError(f"the cse IO manager stores a dict only as dict[str, SplitArrays], not of {', '.join(wrong)}")
    save_datasets(splits, path)


CODECS: dict[type, Codec] = {
    pl.DataFrame: Codec("parquet", lambda df, path: df.write_parquet(path), pl.read_parquet),
    FittedScaler: Codec("scaler.json", lambda scaler, path: scaler.save(path), FittedScaler.load),
    dict: Codec("npz", _save_datasets, load_datasets),
    TrainedModel: Codec(
        "model.json",
        lambda model, path: path.write_text(model.to_json()),
        lambda path: TrainedModel.from_json(path.read_text()),
    ),
    ExportedModel: Codec(
        "onnx.json",
        lambda model, path: path.write_text(model.to_json()),
        lambda path: ExportedModel.from_json(path.read_text()),
    ),
    Leaderboards: Codec(
        "leaderboards.json",
        lambda boards, path: path.write_text(boards.to_json()),
        lambda path: Leaderboards.from_dict(json.loads(path.read_text())),
    ),
    FittedEnsemble: Codec(
        "ensemble.json",
        lambda fitted, path: path.write_text(fitted.to_json()),
        lambda path: FittedEnsemble.from_json(path.read_text()),
    ),
    Manifest: Codec(
        "manifest.json",
        lambda manifest, path: path.write_text(json.dumps(manifest.to_dict(), indent=2)),
        lambda path: Manifest.from_dict(json.loads(path.read_text())),
    ),
    # loaded with the data settings it was trained with; `global_check.check_symbol` compares them with the run's
    GlobalModel: Codec(
        "global.json",
        lambda model, path: path.write_text(model.to_json()),
        lambda path: GlobalModel.from_json(path.read_text()),
    ),
    GlobalCheck: Codec(
        "global_check.json",
        lambda check, path: path.write_text(check.to_json()),
        lambda path: GlobalCheck.from_json(path.read_text()),
    ),
}


def codec_for(kind: type) -> Codec:
    """The codec of `kind` or of its nearest registered base class."""
    for base in getattr(kind, "__mro__", (kind,)):
        if base in CODECS:
            return CODECS[base]
    known = ", ".join(sorted(t.__qualname__ for t in CODECS))
    raise TypeError(f"the cse IO manager cannot store a {kind.__qualname__}; it stores: {known}")
