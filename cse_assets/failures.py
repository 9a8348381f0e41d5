"""Bad input surfaces as a failed materialization carrying the library's own message.

The library raises typed `CseError`s whose messages name the symbol, row or column at fault. Left to
propagate, Dagster buries that message under "Error occurred while executing op ..." and a stack trace
of its own frames; as a `dagster.Failure` the message is the step's failure description in the UI and
the logs, with the error type as metadata. Other exceptions are bugs and keep their traceback.

Only a `TransientSourceError` (Binance 5xx, 429s that outlast the source's own Retry-After waits, a
dropped connection) may be retried: `SOURCE_RETRY_POLICY` retries it with exponential back-off and
jitter, so the symbols of one hourly tick do not hit the exchange again in lockstep. Everything else —
a symbol the bundled sample does not have, a missing archive, an IP ban, bad data or config — fails the
same way every time, so it is marked `allow_retries=False` and the policy never spends a retry on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, Jitter, RetryPolicy

from cse_models.errors import CseError, TransientSourceError

# Retries after about 10 s, 30 s and 70 s (each ± 10 s): past a Binance hiccup, well inside the hour.
SOURCE_RETRY_POLICY = RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


@contextmanager
def library_errors_as_failure() -> Iterator[None]:
    try:
        yield
    except CseError as exc:
        raise Failure(
            description=str(exc),
            metadata={"error_type": type(exc).__name__, "retryable": isinstance(exc, TransientSourceError)},
            allow_retries=isinstance(exc, TransientSourceError),
        ) from exc
