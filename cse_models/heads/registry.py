"""The forecast heads, in card order: one module per head (`cse_models.heads.<name>`, exposing `HEAD`),
listed once here. Adding a head is its file and one line in `HEAD_MODULES`; everything that iterates
heads — targets, scoring, baselines, walk-forward, the ensembles, export, serving — reads this registry.

`registered_head` adds a head for the length of a `with` block (tests take a toy head through the whole
pipeline with it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from cse_models.errors import UnknownNameError
from cse_models.heads.spec import HeadSpec

T = TypeVar("T")

HEAD_MODULES = ("price", "interval", "volatility", "direction")


class HeadRegistry:
    """Head name → `HeadSpec`, in registration order (the card's order: price first)."""

    def __init__(self) -> None:
        self._specs: dict[str, HeadSpec] = {}

    def add(self, spec: HeadSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"head {spec.name!r} is already registered")
        taken = {o for s in self._specs.values() for o in s.outputs} & set(spec.outputs)
        if taken:
            raise ValueError(f"head {spec.name!r}: outputs {sorted(taken)} belong to another head")
        self._specs[spec.name] = spec

    def remove(self, name: str) -> None:
        self.get(name)
        del self._specs[name]

    def get(self, name: str) -> HeadSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError(f"unknown head {name!r}; known: {', '.join(self._specs) or 'none'}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


HEAD_SPECS = HeadRegistry()
for _module in HEAD_MODULES:
    HEAD_SPECS.add(importlib.import_module(f"cse_models.heads.{_module}").HEAD)


class HeadView(Mapping[str, T]):
    """head → one field of its spec (`read`), looked up in the registry on every access: a mapping that
    sees heads registered after it was made (`HEAD_OUTPUTS`, `scoring.rules.SCORING`, `REFERENCE`)."""

    def __init__(self, read: Callable[[HeadSpec], T]) -> None:
        self._read = read

    def __getitem__(self, head: str) -> T:
        if head not in HEAD_SPECS:
            raise KeyError(head)
        return self._read(HEAD_SPECS.get(head))

    def __iter__(self) -> Iterator[str]:
        return iter(HEAD_SPECS.names())

    def __len__(self) -> int:
        return len(HEAD_SPECS.names())


@contextmanager
def registered_head(spec: HeadSpec) -> Iterator[HeadSpec]:
    """`spec` is a registered head inside the block, and no longer after it (even on an error)."""
    HEAD_SPECS.add(spec)
    try:
        yield spec
    finally:
        HEAD_SPECS.remove(spec.name)
