"""Typed errors of the library; the service maps them to 4xx, Dagster to a failed materialization."""


class CseError(Exception):
    """Base of every error the library raises on purpose."""


class DataError(CseError, ValueError):
    """Input data is unusable: missing columns, bad values, empty ranges. The message names row/column."""


class SourceError(CseError):
    """A kline source could not deliver (ban, exhausted retries, unknown symbol)."""


class TransientSourceError(SourceError):
    """A source failure that a later attempt may not meet: rate limits outlasting the source's own
    retries, HTTP 5xx, a dropped connection. Orchestrators retry these with back-off; every other
    SourceError (an unknown symbol, a missing file, a ban) fails the same way until someone acts."""


class ConfigError(CseError, ValueError):
    """A configuration value is out of range; the message names the field."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup failed; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ExportParityError(CseError):
    """The exported ONNX graph disagrees with the JAX model beyond tolerance."""


class StoreError(CseError):
    """The model store is missing a file, or a file fails its checksum."""


class QuantizationError(CseError):
    """A quantized variant of an exported graph is refused: it differs from the fp32 graph beyond its
    stated tolerance, or nothing in the graph was quantized."""


class PublicationError(CseError):
    """Nothing can be published: no head of any candidate passed the promotion gate, or the candidates
    are inconsistent."""
