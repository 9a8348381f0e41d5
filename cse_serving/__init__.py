"""cse_serving — the prediction API: Litestar + onnxruntime + numpy over the model store.

Never imports jax, flax, optax, orbax or dagster: the serving process stays small and starts fast,
and a test proves it (tests/serving/test_serving_imports.py).
"""

from cse_serving.app import create_app
from cse_serving.settings import Settings

__all__ = ["Settings", "create_app"]
