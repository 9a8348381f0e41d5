"""Serving-test fixtures, defined in `serving_helpers` (imported by that unique name from the tests)."""

from serving_helpers import client, client_factory, publish, settings, store, tokens

__all__ = ["client", "client_factory", "publish", "settings", "store", "tokens"]
