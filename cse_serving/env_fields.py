"""Dataclass fields declared once: each with its default, its environment variable and what it means.

litestar-fullstack's `config/base.py` writes a setting as one field with its env name and default. Here
`setting(...)` does the same, and everything else is derived from the declaration: `read_env` (the
values an environment gives), `settings_table` (what `cse-serving settings` prints) and `described` (the
CLI's help for a flag that overrides a setting). An empty variable counts as unset, as a compose file's
`X=` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cse_models.errors import ConfigError

Parser = Callable[[str, str], Any]
"""(text, variable) → value; a ConfigError naming the variable for text it cannot read."""
Default = Callable[[Mapping[str, str]], Any]
"""environment → the default in it (paths under $CSE_HOME depend on it)."""

_KEY = "env"
_FALSE = frozenset({"0", "false", "off", "no"})


def is_off(text: str) -> bool:
    """Whether a switch's text turns it off: 0, false, off, no (any case, surrounding spaces ignored)."""
    return text.strip().lower() in _FALSE


def integer(text: str, variable: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{variable} must be an integer, got {text!r}") from None


def number(text: str, variable: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{variable} must be a number, got {text!r}") from None


def switch(text: str, variable: str) -> bool:
    """On unless the text is one of `is_off`'s: a typo leaves a default-on check on."""
    return not is_off(text)


def verbatim(text: str, variable: str) -> str:
    return text


def lowercase(text: str, variable: str) -> str:
    """A name from a fixed list (validated where it is looked up), read case- and space-insensitively."""
    return text.strip().lower()


PARSERS: dict[type, Parser] = {int: integer, float: number, bool: switch, str: verbatim}
"""The parser of a setting whose default has this type, unless the declaration names another."""


@dataclass(frozen=True)
class EnvVar:
    """How one setting is read from the environment and written in the documentation."""

    variable: str
    help: str
    parse: Parser
    default: Default
    shown_default: str


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"{default:g}" if isinstance(default, float) else str(default)


def setting(default: object, variable: str, help: str, *, parse: Parser | None = None, shown: str | None = None) -> Any:
    """A field with a fixed default, read from `variable` by `parse` (by default the parser of the
    default's type in `PARSERS`) and documented by `help`."""
    declared = EnvVar(variable, help, parse or PARSERS[type(default)], lambda _env: default, shown or _shown(default))
    return field(default=default, metadata={_KEY: declared})


def derived_setting(default: Default, variable: str, help: str, *, parse: Parser, shown: str) -> Any:
    """A field whose default depends on other variables: computed from `os.environ` when the dataclass is
    built directly, from the given environment by `read_env`."""
    declared = EnvVar(variable, help, parse, default, shown)
    return field(default_factory=lambda: default(os.environ), metadata={_KEY: declared})


def declared(cls: type) -> dict[str, EnvVar]:
    """Field name → its declaration, in field order."""
    return {f.name: f.metadata[_KEY] for f in fields(cls) if _KEY in f.metadata}


def read_env(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """Field name → its value in `env`: the variable parsed where it is set and not empty, else the default."""
    values = {}
    for name, var in declared(cls).items():
        text = env.get(var.variable)
        values[name] = var.parse(text, var.variable) if text else var.default(env)
    return values


def described(cls: type, name: str) -> str:
    """A flag's help for the field it overrides: what it means, its variable and its default."""
    var = declared(cls)[name]
    return f"{var.help} [default: ${var.variable}, else {var.shown_default}]"


def settings_table(cls: type) -> str:
    """Every declared setting as aligned text: variable, default, meaning."""
    rows = [("VARIABLE", "DEFAULT", "MEANING")]
    rows += [(var.variable, var.shown_default, var.help) for var in declared(cls).values()]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows)
