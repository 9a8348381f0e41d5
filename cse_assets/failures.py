"""Bad input surfaces as a failed materialization carrying the library's own message.

The library raises typed `CseError`s whose messages name the symbol, row or column at fault. Left to
propagate, Dagster buries that message under "Error occurred while executing op ..." and a stack trace
of its own frames; as a `dagster.Failure` the message is the step's failure description in the UI and
the logs, with the error type as metadata. Only source errors (rate limits, network) may be retried:
bad data or config fails the same way every time. Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure

from cse_models.errors import CseError, SourceError


@contextmanager
def library_errors_as_failure() -> Iterator[None]:
    try:
        yield
    except CseError as exc:
        raise Failure(
            description=str(exc),
            metadata={"error_type": type(exc).__name__},
            allow_retries=isinstance(exc, SourceError),
        ) from exc
