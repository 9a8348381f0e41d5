"""`make ui`: `dagster dev` on 127.0.0.1:3000 with default signal handlers restored first.

A shell that starts a job in the background makes it ignore SIGINT (and some runners ignore SIGTERM),
and children inherit that: `dagster dev` would then outlive `kill`. Restoring the defaults before the
exec keeps Ctrl-C and `kill PID` working however the UI was started.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    os.execv(dagster, [dagster, "dev", "-h", "127.0.0.1", "-p", "3000", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
