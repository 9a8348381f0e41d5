"""`Rate`: a count per period, the value type of the rate-limit and lockout settings.

Its own module because two layers need it: `settings` validates the configured rates with it, and
`ratelimit` (which imports `auth` for the presented token) enforces them; `auth` in turn reads
`settings`. With the value type here, each of them imports it and none imports the other in a circle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cse_models.errors import ConfigError

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
_UNITS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}
_OFF = {"off", "0", "false", "no", "none"}


@dataclass(frozen=True)
class Rate:
    """`limit` events per `period_s` seconds, written like "600/minute", "20/min", "5/10s"."""

    limit: int
    period_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.period_s > 0:
            raise ConfigError(f"a rate needs a limit ≥ 1 and a period > 0, got {self.limit}/{self.period_s}s")

    @classmethod
    def parse(cls, text: str, *, name: str) -> Rate | None:
        """None for "off" (also "0", "false", "none"); ConfigError naming `name` for anything unreadable."""
        if text.strip().lower() in _OFF:
            return None
        match = _RATE.match(text.lower())
        unit = _UNITS.get(match.group(3).rstrip("s") or "s") if match else None
        if match is None or unit is None or int(match.group(1)) < 1:
            raise ConfigError(
                f"{name} must read like 600/minute (units: second, minute, hour, day) or off, got {text!r}"
            )
        return cls(int(match.group(1)), unit * int(match.group(2) or 1))

    def __str__(self) -> str:
        units = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
        return f"{self.limit}/{units.get(int(self.period_s), f'{self.period_s:g}s')}"
