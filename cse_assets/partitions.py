"""The `symbols` dynamic partitions: one partition per trading pair, seeded with the bundled sample's.

A symbol gets added
- automatically: `seed_symbols_sensor` adds the bundled symbols when the daemon (`dagster dev`) runs;
- by hand: the UI's "Add partition" button on any data asset, or from a shell
  `DAGSTER_HOME=... python -m cse_assets.partitions add BTCUSDT SOLUSDT`.

The sensor is RUNNING by default: it only registers partition keys (never launches a run), so a fresh
`dagster dev` shows BTCUSDT and ETHUSDT within one tick without anyone touching the sensors page.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cse_models.data.file_sources import SAMPLE_SYMBOLS
from cse_models.data.schema import validate_symbol
from cse_models.errors import CseError

symbols = DynamicPartitionsDefinition(name="symbols")
BUNDLED_SYMBOLS: tuple[str, ...] = SAMPLE_SYMBOLS


def missing_symbols(instance: DagsterInstance, wanted: Iterable[str]) -> list[str]:
    """The symbols in `wanted` (validated, in order, deduplicated) that are not partitions yet."""
    known = set(instance.get_dynamic_partitions(symbols.name))
    return [s for s in dict.fromkeys(validate_symbol(s) for s in wanted) if s not in known]


def ensure_symbol_partitions(instance: DagsterInstance, wanted: Iterable[str]) -> list[str]:
    """Add the missing symbol partitions; returns the ones added (idempotent)."""
    added = missing_symbols(instance, wanted)
    if added:
        instance.add_dynamic_partitions(symbols.name, added)
    return added


@sensor(
    name="seed_symbols_sensor",
    description="Adds the bundled sample's symbols to the `symbols` partitions when they are missing.",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
def seed_symbols_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    added = missing_symbols(context.instance, BUNDLED_SYMBOLS)
    if not added:
        return SkipReason(f"bundled symbols {', '.join(BUNDLED_SYMBOLS)} are already partitions")
    return SensorResult(dynamic_partitions_requests=[symbols.build_add_request(added)])


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m cse_assets.partitions add|list [SYMBOL ...]` against the instance in $DAGSTER_HOME."""
    parser = argparse.ArgumentParser(prog="python -m cse_assets.partitions", description=main.__doc__)
    parser.add_argument("action", choices=("add", "list"))
    parser.add_argument("symbol", nargs="*", help=f"symbols to add (default: {' '.join(BUNDLED_SYMBOLS)})")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        if args.action == "add":
            try:
                added = ensure_symbol_partitions(instance, args.symbol or BUNDLED_SYMBOLS)
            except CseError as exc:
                parser.error(str(exc))
            print(f"added: {', '.join(added) or 'nothing (all present)'}")
        print(f"symbols: {', '.join(instance.get_dynamic_partitions(symbols.name)) or 'none'}")


if __name__ == "__main__":
    main()
