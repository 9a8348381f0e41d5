"""Reading a manifest's JSON into typed sections: each value is checked where it is read, and a wrong one
fails with its path (`metrics.walk_forward_skill.price must be a number, got 'x'`), so serving never
meets a half-parsed manifest. Each section keeps the keys it does not name in `extra` and writes them
back, so a manifest round-trips key for key (a reader of today's code or of the next one sees the same)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from cse_models.errors import StoreError

T = TypeVar("T")


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StoreError(f"manifest {where} must be a number, got {value!r}")
    return float(value)


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StoreError(f"manifest {where} must be a string, got {value!r}")
    return value


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StoreError(f"manifest {where} must be an object, got {type(value).__name__}")
    return value


def items(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise StoreError(f"manifest {where} must be a list, got {type(value).__name__}")
    return value


def mapping_of(value: Any, where: str, read: Callable[[Any, str], T]) -> dict[str, T]:
    """An object whose every value `read` accepts."""
    return {key: read(item, f"{where}.{key}") for key, item in obj(value, where).items()}


def optional(data: Mapping[str, Any], key: str, where: str, read: Callable[[Any, str], T]) -> T | None:
    """`data[key]` read by `read`, or None when the key is absent or null."""
    value = data.get(key)
    return None if value is None else read(value, f"{where}.{key}")


def rest(data: Mapping[str, Any], named: Iterable[str]) -> dict[str, Any]:
    """The keys a section does not name, kept as they are."""
    known = set(named)
    return {key: value for key, value in data.items() if key not in known}


def present(values: Mapping[str, Any]) -> dict[str, Any]:
    """The named values that were in the JSON (None stands for absent)."""
    return {key: value for key, value in values.items() if value is not None}
