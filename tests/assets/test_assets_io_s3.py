"""The IO manager's object-store option: asset values go to an s3:// URL (moto's server on 127.0.0.1,
started here) instead of $CSE_HOME/assets, and downstream assets read them back from there."""

from __future__ import annotations

import io

import polars as pl
from dagster import asset, materialize
from moto_s3 import running_moto_s3

from cse_assets.io import CseIOManager
from cse_assets.resources import CseHomeResource
from cse_models.store.objects import object_filesystem


@asset
def prices() -> pl.DataFrame:
    return pl.DataFrame({"close": [1.0, 2.0, 3.0]})


@asset
def doubled(prices: pl.DataFrame) -> pl.DataFrame:
    return prices.with_columns(pl.col("close") * 2)


def test_io_manager_writes_and_reads_asset_files_at_an_s3_url(tmp_path, monkeypatch):
    with running_moto_s3() as s3:
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        url = s3.url("assets")
        home = CseHomeResource(home=str(tmp_path / "home"))
        result = materialize([prices, doubled], resources={"io_manager": CseIOManager(home=home, url=url)})
        assert result.success
        fs, _ = object_filesystem(url)
        stored = pl.read_parquet(io.BytesIO(fs.cat_file(f"{url}/doubled/all.parquet")))
        assert stored["close"].to_list() == [2.0, 4.0, 6.0]
        assert fs.exists(f"{url}/prices/all.parquet")
        assert not (tmp_path / "home" / "assets").exists()
