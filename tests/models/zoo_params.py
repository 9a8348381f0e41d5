"""The zoo's heaviest architectures (13–29 s a test on 2 cores): tests over every architecture run them only
with CSE_SLOW=1 (`slow`), so `make test` keeps one or more of every family — transformer_encoder /
transformer_with_*, financial_cnn1d / residual_cnn1d, lstm_regressor / stacked_lstm / financial_lstm /
conv_lstm, financial_gru — and stays near 10 minutes."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

HEAVY = frozenset(
    {"financial_transformer", "attention_cnn1d", "bidirectional_lstm", "financial_cnn2d", "transformer_decoder"}
)


def architectures(names: Iterable[str]) -> list:
    """`names` as pytest params, the heavy ones marked `slow`."""
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in names]
