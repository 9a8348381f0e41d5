"""The typed manifest: a manifest published before the types (tests/fixtures, written by the 2026-12 demo:
an LSTM + LightGBM weighted ensemble with an int8 variant) loads, reads as attributes, and writes back key
for key; a value of the wrong type fails with its path."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from cse_models.errors import StoreError
from cse_models.store import BoardSummary, DataRange, EnsembleEntry, Manifest, Metrics, Variant

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "manifest_v1_ensemble_2026-12.json"


@pytest.fixture
def old() -> dict:
    return json.loads(FIXTURE.read_text())


def test_a_manifest_written_before_the_types_loads_as_attributes(old: dict) -> None:
    manifest = Manifest.from_dict(old)
    assert isinstance(manifest.metrics, Metrics) and manifest.metrics.selected == "ensemble_weighted"
    assert manifest.metrics.walk_forward_skill["price"] == old["metrics"]["walk_forward_skill"]["price"]
    assert isinstance(manifest.metrics.leaderboards["price"], BoardSummary)
    assert (
        manifest.metrics.leaderboards["price"].rows[0].name
        == old["metrics"]["leaderboards"]["price"]["rows"][0]["name"]
    )
    assert manifest.metrics.data_range == DataRange(**old["metrics"]["data_range"])
    assert manifest.metrics.interval_level == 0.8  # an ensemble records no calibration: the default
    assert isinstance(manifest.ensemble, EnsembleEntry) and manifest.ensemble.members == ("lstm", "lightgbm")
    assert manifest.ensemble.member_outputs["lstm"]["close"] == "lstm/close"
    assert isinstance(manifest.variants["int8"], Variant) and manifest.variants["int8"].probe is None
    assert manifest.training.data.hold_band_sigmas == old["training"]["data"]["hold_band_sigmas"]


def test_a_manifest_reads_and_writes_back_key_for_key(old: dict) -> None:
    assert Manifest.from_dict(old).to_dict() == old
    assert json.loads(json.dumps(Manifest.from_dict(old).to_dict())) == old


def test_a_single_model_has_no_ensemble_and_writes_an_empty_one(old: dict) -> None:
    single = {**old, "ensemble": {}}
    manifest = Manifest.from_dict(single)
    assert manifest.ensemble is None and manifest.to_dict()["ensemble"] == {}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("metrics", "walk_forward_skill", "price"), "high", "metrics.walk_forward_skill.price must be a number"),
        (("metrics", "data_range"), ["2024"], "metrics.data_range must be an object"),
        (("ensemble", "member_outputs", "lstm", "close"), 3, "ensemble.member_outputs.lstm.close must be a string"),
        (("variants", "int8", "probe"), "probe.npz", "variants.int8.probe must be an object"),
        (("training", "data", "hold_band_sigmas"), True, "training.data.hold_band_sigmas must be a number"),
    ],
)
def test_a_value_of_the_wrong_type_fails_with_its_path(old: dict, path: tuple[str, ...], value, message: str) -> None:
    broken = copy.deepcopy(old)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(StoreError, match=re.escape(message)):
        Manifest.from_dict(broken)


def test_an_interval_level_outside_0_1_is_refused(old: dict) -> None:
    manifest = Manifest.from_dict({**old, "metrics": {**old["metrics"], "calibration": {"interval_level": 1.5}}})
    with pytest.raises(StoreError, match="interval_level must be a number in"):
        _ = manifest.metrics.interval_level
