"""The definitions every Dagster process loads: cheap (no JAX, no environment reads outside the settings),
and every asset described, owned, kinded and versioned for the catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from cse_assets.catalog import source_fingerprint
from cse_assets.definitions import build_definitions
from cse_assets.settings import CseSettings
from cse_models.model_sets import ARCHITECTURES, CLASSICAL_ARCHITECTURES, MODEL_SETS

ROOT = Path(__file__).resolve().parents[2]
TRAINING_STACK = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax",
    "jax2onnx",
    "lightgbm",
    "sklearn",
    "skl2onnx",
    "onnxmltools",
)

LOAD_PROBE = f"""
import sys
from cse_assets.definitions import defs
defs.get_repository_def()
defs.resolve_job_def("refresh")
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({TRAINING_STACK!r}))
print(",".join(loaded))
"""

# Records which of our modules look up each CSE_* variable while the definitions load.
ENV_PROBE = """
import os, sys
readers = {}

class Recording(type(os.environ)):
    def __getitem__(self, key):
        if isinstance(key, str) and key.startswith("CSE_"):
            frame = sys._getframe(1)
            while frame.f_globals.get("__name__") in ("os", "collections.abc"):
                frame = frame.f_back
            module = frame.f_globals.get("__name__", "")
            if module.startswith("cse_"):
                readers.setdefault(key, set()).add(module)
        return super().__getitem__(key)

os.environ.__class__ = Recording
import cse_assets.definitions
print(sorted({reader for names in readers.values() for reader in names}))
print(sorted(readers))
"""


def _probe(code: str, tmp_path: Path, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CSE_HOME": str(tmp_path), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


@pytest.mark.parametrize("model_set", ["demo", "zoo"])
def test_loading_the_definitions_leaves_jax_out(tmp_path: Path, model_set: str) -> None:
    (loaded,) = _probe(LOAD_PROBE, tmp_path, CSE_MODEL_SET=model_set) or [""]
    assert loaded == ""


def test_only_the_settings_read_the_environment_while_definitions_load(tmp_path: Path) -> None:
    readers, names = _probe(ENV_PROBE, tmp_path, CSE_MODEL_SET="zoo", CSE_DEPLOYMENT="live")
    assert readers == "['cse_assets.settings']"
    assert names == "['CSE_BINANCE_API_URL', 'CSE_DEPLOYMENT', 'CSE_EXECUTOR', 'CSE_MODEL_SET']"


def test_every_run_executes_its_steps_in_one_process() -> None:
    defs = build_definitions(CseSettings())
    for job in ("refresh", "data_refresh"):
        assert defs.resolve_job_def(job).executor_def.name == "in_process", job
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"


def test_settings_come_from_the_environment_with_defaults() -> None:
    assert CseSettings.from_env({}) == CseSettings("local", "demo", None, "in_process")
    live = CseSettings.from_env({"CSE_DEPLOYMENT": "live", "CSE_MODEL_SET": "zoo", "CSE_BINANCE_API_URL": "http://x"})
    assert live == CseSettings("live", "zoo", "http://x")
    defs = build_definitions(live)
    assert defs.resources["kline_source"].api_url == "http://x"


def test_every_registered_architecture_is_in_the_zoo() -> None:
    from cse_models.classical import CLASSICAL
    from cse_models.models import MODELS

    assert list(ARCHITECTURES) == MODELS.names()
    assert list(CLASSICAL_ARCHITECTURES) == CLASSICAL.names()
    assert [s.architecture for s in MODEL_SETS.get("zoo")] == MODELS.names() + CLASSICAL.names()


@pytest.mark.parametrize("model_set", ["demo", "zoo"])
def test_every_asset_is_described_owned_kinded_and_versioned(model_set: str) -> None:
    graph = build_definitions(CseSettings(model_set=model_set)).resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert {AssetKey(f"model_{s.name}") for s in MODEL_SETS.get(model_set)} <= keys
    for key in keys:
        node = graph.get(key)
        assert node.description and node.owners and node.kinds, key
        assert node.code_version and len(node.code_version) == 12, key
        assert node.group_name in {"data", "models", "evaluation", "ensemble", "publish", "global"}, key


def test_code_version_follows_the_source_it_fingerprints(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    (package / "notes.txt").write_text("not code")
    first = source_fingerprint(tmp_path, ["pkg"])
    (package / "notes.txt").write_text("still not code")
    assert source_fingerprint(tmp_path, ["pkg"]) == first
    (package / "a.py").write_text("x = 2\n")
    assert source_fingerprint(tmp_path, ["pkg"]) != first
