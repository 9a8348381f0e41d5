"""One IO manager for every asset: files under `$CSE_HOME/assets/<asset key>/<partition>.<ext>`, in a
format chosen by the value's type from a codec registry — Parquet, JSON, npz; never pickle.

Adding a stored type is one `register_codec` call (e.g. model assets registering an orbax checkpoint
directory codec); an unregistered type fails with the list of types that can be stored.
Files are written to a temporary sibling and renamed into place, so a crashed run never leaves half a
file where the next run would read it.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from cse_assets.resources import CseHomeResource
from cse_models.features.dataset import SplitArrays, load_datasets, save_datasets
from cse_models.features.scaling import FittedScaler

UNPARTITIONED = "all"


@dataclass(frozen=True)
class Codec:
    """How one Python type goes to and from a file with extension `ext`."""

    ext: str
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


CODECS: dict[type, Codec] = {}


def register_codec(kind: type, codec: Codec) -> None:
    if kind in CODECS:
        raise ValueError(f"a codec for {kind.__qualname__} is already registered")
    CODECS[kind] = codec


def codec_for(kind: type) -> Codec:
    """The codec of `kind` or of its nearest registered base class."""
    for base in getattr(kind, "__mro__", (kind,)):
        if base in CODECS:
            return CODECS[base]
    known = ", ".join(sorted(t.__qualname__ for t in CODECS))
    raise TypeError(f"the cse IO manager cannot store a {kind.__qualname__}; it stores: {known}")


register_codec(pl.DataFrame, Codec("parquet", lambda df, path: df.write_parquet(path), pl.read_parquet))
register_codec(FittedScaler, Codec("scaler.json", lambda scaler, path: scaler.save(path), FittedScaler.load))


def _save_datasets(splits: dict, path: Path) -> None:
    """A dict is stored only as `datasets` (dict[str, SplitArrays]); other values need their own type."""
    wrong = sorted({type(v).__qualname__ for v in splits.values() if not isinstance(v, SplitArrays)})
    if wrong:
        raise TypeError(f"the cse IO manager stores a dict only as dict[str, SplitArrays], not of {', '.join(wrong)}")
    save_datasets(splits, path)


register_codec(dict, Codec("npz", _save_datasets, load_datasets))


class CseIOManager(ConfigurableIOManager):
    """Stores asset values as files under the cse home; see the module docstring for the layout."""

    home: CseHomeResource

    def asset_dir(self, context: InputContext | OutputContext) -> Path:
        return self.home.assets_dir.joinpath(*context.asset_key.path)

    def _stem(self, context: InputContext | OutputContext) -> str:
        return context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:  # assets whose effect is elsewhere (e.g. a publish to the model store)
            return
        codec = codec_for(type(obj))
        path = self.asset_dir(context) / f"{self._stem(context)}.{codec.ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.{codec.ext}")
        try:
            codec.save(obj, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        context.add_output_metadata({"path": MetadataValue.path(str(path)), "bytes": path.stat().st_size})

    def load_input(self, context: InputContext) -> Any:
        stem = self._stem(context)
        directory = self.asset_dir(context)
        wanted = _annotated_type(context)
        candidates = [codec_for(wanted)] if wanted is not None else list(CODECS.values())
        for codec in candidates:
            if (path := directory / f"{stem}.{codec.ext}").is_file():
                return codec.load(path)
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} [{stem}] has not been materialized: "
            f"no {' / '.join(f'{stem}.{c.ext}' for c in candidates)} in {directory}"
        )


def _annotated_type(context: InputContext) -> type | None:
    """The input's annotation as a plain class (`dict[str, SplitArrays]` → dict); None when untyped."""
    hint = context.dagster_type.typing_type if context.dagster_type else None
    kind = typing.get_origin(hint) or hint
    return kind if isinstance(kind, type) and kind is not object else None
