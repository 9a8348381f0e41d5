"""Shared fixtures for model tests: real bundled klines, prepared once per session."""

from __future__ import annotations

import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler


@pytest.fixture(scope="session")
def btc_features() -> pl.DataFrame:
    raw = SampleSource().fetch("BTCUSDT", "1h", None, None)
    klines, _ = clean_klines(raw, "1h")
    return compute_features(klines.tail(1200), "mur9")


@pytest.fixture(scope="session")
def data_cfg() -> DataConfig:
    return DataConfig.seed(seq_len=12)


@pytest.fixture(scope="session")
def prepared(btc_features, data_cfg):
    scaler = fit_feature_scaler(btc_features, data_cfg)
    return scaler, build_datasets(btc_features, scaler, data_cfg)


@pytest.fixture(scope="session")
def forecast_data():
    """The published setup (`DataConfig()`, seq 12) on the last 1,500 ETHUSDT hours: config, scaler,
    datasets and the feature table."""
    klines, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    data_cfg = DataConfig(seq_len=12)
    features = compute_features(klines.tail(1500), data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    return data_cfg, scaler, build_datasets(features, scaler, data_cfg), features
