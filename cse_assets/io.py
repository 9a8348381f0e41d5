"""One IO manager for every asset: files under `$CSE_HOME/assets/<asset key>/<partition>.<ext>`, in a
format chosen by the value's type from the codec table (`cse_assets.codecs`) — Parquet, JSON, npz; never
pickle. A type without a codec fails with the list of types that can be stored.
Files are written to a temporary sibling and renamed into place, so a crashed run never leaves half a
file where the next run would read it.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from cse_assets.codecs import CODECS, codec_for
from cse_assets.resources import CseHomeResource

UNPARTITIONED = "all"


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
