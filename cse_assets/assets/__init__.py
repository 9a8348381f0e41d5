"""Asset modules, one per domain; `definitions.build_definitions` assembles them into the graph.

The model domains are built by factories from the model specs, so each factory returns its assets and
their checks together (`DomainDefinitions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetChecksDefinition, AssetsDefinition


@dataclass(frozen=True)
class DomainDefinitions:
    """What a factory-built domain adds to the `Definitions`: assets and the checks on them."""

    assets: tuple[AssetsDefinition, ...]
    checks: tuple[AssetChecksDefinition, ...] = ()
