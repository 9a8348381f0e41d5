"""One IO manager for every asset: files under `$CSE_HOME/assets/<asset key>/<partition>.<ext>`, in a
format chosen by the value's type from the codec table (`cse_assets.codecs`) — Parquet, JSON, npz; never
pickle. A type without a codec fails with the list of types that can be stored.
Files are written to a temporary sibling and renamed into place, so a crashed run never leaves half a
file where the next run would read it.

With `url` (or `$CSE_ASSETS_URL`, read when a run uses it) set to an fsspec URL such as
`s3://bucket/assets`, the same files go to `<url>/<asset key>/<partition>.<ext>` instead: each is written
to a local temporary file by its codec and uploaded in one PUT (an object is replaced whole, so a reader
sees the old value or the new one), and read back through a local temporary copy. Endpoint and
credentials as for the model store (`CSE_STORE_S3_ENDPOINT`, `AWS_*`; cse_models/store/objects.py).

Inputs that read several partitions (an unpartitioned asset over every symbol's `features`, through
`AllPartitionMapping`; input metadata `partition_set: True` says so in any run) load as a dict partition →
value, typed by the annotation's value type (`dict[str, pl.DataFrame]`). As with Dagster's own IO managers,
input metadata `allow_missing_partitions` leaves the partitions never materialized out of that dict;
`allow_missing` loads a single value that was never materialized as None (an optional input, `X | None`).
"""

from __future__ import annotations

import os
import tempfile
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from cse_assets.codecs import CODECS, Codec, codec_for
from cse_assets.resources import CseHomeResource
from cse_models.store.objects import object_filesystem

UNPARTITIONED = "all"


class CseIOManager(ConfigurableIOManager):
    """Stores asset values as files under the cse home, or under `url`; see the module docstring."""

    home: CseHomeResource
    url: str | None = None  # None → $CSE_ASSETS_URL → files under $CSE_HOME/assets

    def _remote_root(self) -> str | None:
        return self.url or os.environ.get("CSE_ASSETS_URL") or None

    def _remote_key(self, root: str, context: InputContext | OutputContext, name: str) -> str:
        return "/".join([root.rstrip("/"), *context.asset_key.path, name])

    def asset_dir(self, context: InputContext | OutputContext) -> Path:
        return self.home.assets_dir.joinpath(*context.asset_key.path)

    def _stem(self, context: InputContext | OutputContext) -> str:
        return context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:  # assets whose effect is elsewhere (e.g. a publish to the model store)
            return
        codec = codec_for(type(obj))
        if root := self._remote_root():
            self._upload(context, root, obj, codec)
            return
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
        metadata = context.definition_metadata or {}
        if context.has_asset_partitions and _partition_set(context, metadata):
            codecs = _codecs(_element_type(context))
            loaded = {}
            for key in context.asset_partition_keys:
                try:
                    loaded[key] = self._load(context, key, codecs)
                except FileNotFoundError:
                    if not metadata.get("allow_missing_partitions"):
                        raise
            return loaded
        try:
            return self._load(context, self._stem(context), _codecs(_annotated_type(context)))
        except FileNotFoundError:
            if metadata.get("allow_missing"):
                return None
            raise

    def _load(self, context: InputContext, stem: str, candidates: list[Codec]) -> Any:
        if root := self._remote_root():
            return self._download(context, root, stem, candidates)
        directory = self.asset_dir(context)
        for codec in candidates:
            if (path := directory / f"{stem}.{codec.ext}").is_file():
                return codec.load(path)
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} [{stem}] has not been materialized: "
            f"no {' / '.join(f'{stem}.{c.ext}' for c in candidates)} in {directory}"
        )

    def _upload(self, context: OutputContext, root: str, obj: Any, codec: Codec) -> None:
        fs, _ = object_filesystem(root)
        name = f"{self._stem(context)}.{codec.ext}"
        key = self._remote_key(root, context, name)
        with tempfile.TemporaryDirectory(prefix="cse-io-") as work:
            local = Path(work) / name
            codec.save(obj, local)
            fs.put_file(str(local), key)  # one PUT: the object is replaced whole
            size = local.stat().st_size
        context.add_output_metadata({"path": MetadataValue.path(key), "bytes": size})

    def _download(self, context: InputContext, root: str, stem: str, candidates: list[Codec]) -> Any:
        fs, _ = object_filesystem(root)
        for codec in candidates:
            key = self._remote_key(root, context, f"{stem}.{codec.ext}")
            if fs.exists(key):
                with tempfile.TemporaryDirectory(prefix="cse-io-") as work:
                    local = Path(work) / f"{stem}.{codec.ext}"
                    fs.get_file(key, str(local))
                    return codec.load(local)
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} [{stem}] has not been materialized: "
            f"no {' / '.join(f'{stem}.{c.ext}' for c in candidates)} under {self._remote_key(root, context, '')}"
        )


def _partition_set(context: InputContext, metadata: Mapping[str, Any]) -> bool:
    """Whether the input is a set of upstream partitions (a dict partition → value), as for an unpartitioned
    asset reading every symbol's `features` through `AllPartitionMapping` — even when the set has one key,
    and even inside a partitioned run (metadata `partition_set`: the run's key says nothing then)."""
    return (
        bool(metadata.get("partition_set")) or not context.has_partition_key or len(context.asset_partition_keys) != 1
    )


def _codecs(wanted: type | None) -> list[Codec]:
    return [codec_for(wanted)] if wanted is not None else list(CODECS.values())


def _hint(context: InputContext) -> Any:
    """The input's annotation, `X | None` read as X (an input that may be missing)."""
    hint = context.dagster_type.typing_type if context.dagster_type else None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = args[0] if len(args) == 1 else None
    return hint


def _plain(hint: Any) -> type | None:
    kind = typing.get_origin(hint) or hint
    return kind if isinstance(kind, type) and kind not in (object, Any) else None


def _annotated_type(context: InputContext) -> type | None:
    """The input's annotation as a plain class (`dict[str, SplitArrays]` → dict); None when untyped."""
    return _plain(_hint(context))


def _element_type(context: InputContext) -> type | None:
    """A partition set's value type: `dict[str, pl.DataFrame]` → pl.DataFrame; None when untyped."""
    args = typing.get_args(_hint(context))
    return _plain(args[1]) if len(args) == 2 else None
