"""tests/serving/serving_helpers.py for tests outside tests/serving (web, deploy, assets): loaded by path under
its own module name, once, so that every folder can run in one pytest session (the folders are not packages,
and tests/serving's conftest imports the helpers as a top-level module of that folder)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "shared_serving_helpers"
_PATH = Path(__file__).resolve().parent / "serving" / "serving_helpers.py"


def serving_helpers() -> ModuleType:
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_NAME, _PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]
