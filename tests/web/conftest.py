"""Web-page tests use the serving tests' fixtures (see web_helpers)."""

from web_helpers import serving_helpers

client_factory = serving_helpers.client_factory
publish = serving_helpers.publish
settings = serving_helpers.settings
store = serving_helpers.store
tokens = serving_helpers.tokens

__all__ = ["client_factory", "publish", "settings", "store", "tokens"]
