"""cse_models — the library: data, features, Flax models, training, export and the model store.

Importing this package must stay cheap and jax-free, so that the serving process can reuse
`cse_models.features` and `cse_models.store` without pulling in jax.
"""

__version__ = "0.1.0"
