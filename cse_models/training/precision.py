"""Mixed precision: fp32 master parameters, bf16 compute, fp32 loss (Micikevicius et al. 2018).

The step casts the floating parameters and the input windows to the compute dtype for the forward
pass only; gradients flow back through the cast into the fp32 parameters the optimizer updates.
bf16 keeps fp32's exponent range, so no loss scaling is needed.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16}


def compute_dtype(precision: str) -> jnp.dtype:
    return COMPUTE_DTYPES[precision]


def cast_floating(tree: Any, dtype: jnp.dtype) -> Any:
    """Cast every floating leaf of a pytree to `dtype`; integer and key leaves stay as they are."""

    def cast(leaf):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)
