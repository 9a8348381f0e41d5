"""Data parallelism: the only module that knows about devices.

One 1-D mesh with a `data` axis over all devices (or the first N). Model parameters, optimizer state
and the per-split feature arrays `[rows, f]` are replicated (`P()`); each step's vector of window
starts `[batch]` is sharded on `data` (`P('data')`), and since the windows are gathered inside the
jitted step, GSPMD splits the forward/backward over devices and all-reduces the gradients — the
pattern of Flax's `04_data_parallel_with_jit.py`, with no shard_map.

Multi-host: call `initialize_distributed(...)` once per process before any other JAX call; the mesh
then spans every process's devices and arrays are built with `jax.make_array_from_callback`, so each
process only materialises its own shards (every process derives the same batch from (seed, epoch)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cse_models.errors import ConfigError

DATA_AXIS = "data"


def initialize_distributed(
    coordinator_address: str,
    num_processes: int,
    process_id: int,
    local_device_ids: Sequence[int] | None = None,
) -> None:
    """Join a multi-host run (`jax.distributed.initialize`); never called by the library itself."""
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )


@dataclass(frozen=True)
class DataParallel:
    """A `data` mesh plus the two shardings training needs."""

    mesh: Mesh

    @property
    def device_count(self) -> int:
        return self.mesh.devices.size

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(DATA_AXIS))

    def check_batch(self, global_batch: int, field: str = "batch_size") -> None:
        if global_batch % self.device_count:
            raise ConfigError(
                f"TrainingConfig.{field} = {global_batch} is not divisible by the {self.device_count} devices "
                f"of the data mesh; pick a multiple of {self.device_count}"
            )

    def replicate(self, tree: Any) -> Any:
        """Put a pytree of arrays (model state, optimizer state, feature arrays) on every device."""
        return jax.tree.map(lambda leaf: _put(leaf, self.replicated), tree)

    def shard_batch(self, array: np.ndarray) -> jax.Array:
        """Split the leading (batch) axis over the `data` axis."""
        self.check_batch(array.shape[0])
        return _put(array, self.batch)


def _put(array: Any, sharding: NamedSharding) -> jax.Array:
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    host = np.asarray(array)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def data_parallel(devices: int | Sequence[jax.Device] | None = None) -> DataParallel:
    """A data mesh over all devices, the first `devices` of them, or the given device list."""
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, int):
        if not 1 <= devices <= len(available):
            raise ConfigError(f"devices must be in [1, {len(available)}] (the devices present), got {devices}")
        chosen = available[:devices]
    else:
        chosen = list(devices)
    return DataParallel(Mesh(np.asarray(chosen), (DATA_AXIS,)))
