"""Storage URLs: local folders and S3-protocol buckets, never credentials in URLs or messages."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest

from lakehouse.resources.storage import LakehouseStorage, StorageConfigError


def test_local_defaults_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("LAKEHOUSE_RAW_URL", "LAKEHOUSE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", str(tmp_path / "elsewhere"))
    storage = LakehouseStorage()
    # The pipeline never invents a raw zone: a missing one is a configuration error.
    with pytest.raises(StorageConfigError, match="does not exist"):
        storage.raw()
    assert not (tmp_path / "data" / "raw").exists()
    assert storage.raw(create=True).root == (tmp_path / "data" / "raw").as_posix()
    assert storage.warehouse().root == (tmp_path / "elsewhere").as_posix()
    assert storage.raw().is_local


def test_s3_urls_build_an_s3_zone(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    zone = LakehouseStorage(raw_url="s3://bucket/some/prefix/").raw()
    assert isinstance(zone.filesystem, pafs.S3FileSystem)
    assert zone.root == "bucket/some/prefix"
    assert zone.display(zone.path("a/b.parquet")) == "s3://bucket/some/prefix/a/b.parquet"


def test_credentials_in_urls_are_refused_without_echoing_them():
    with pytest.raises(StorageConfigError) as caught:
        LakehouseStorage(raw_url="s3://AKIAX:supersecret@bucket/raw").raw()
    assert "supersecret" not in str(caught.value)
    with pytest.raises(StorageConfigError) as caught:
        LakehouseStorage(
            raw_url="s3://bucket/raw", endpoint_url="http://user:hunter2@minio:9000"
        ).raw()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["gs://bucket/x", "s3:///nobucket", "ftp://host/x"])
def test_unsupported_urls_are_refused(url):
    with pytest.raises(StorageConfigError):
        LakehouseStorage(raw_url=url).raw()


def test_listing_client_follows_the_storage_addressing_style(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    oss = LakehouseStorage(
        raw_url="s3://vehicle-raw/raw",
        endpoint_url="https://oss-cn-hangzhou.aliyuncs.com",
        virtual_addressing=True,
    )
    client = oss._s3_client()
    assert client.meta.config.s3["addressing_style"] == "virtual"
    assert client.meta.endpoint_url == "https://oss-cn-hangzhou.aliyuncs.com"
    minio = LakehouseStorage(raw_url="s3://b/raw", endpoint_url="http://127.0.0.1:9000")
    assert minio._s3_client().meta.config.s3["addressing_style"] == "path"
