"""The command line's pieces that need no server: addresses, the config file, rendering."""

from __future__ import annotations

import json
import stat

import pytest

from kargo_cli import config
from kargo_cli.client import ApiError, ExitCode, normalize_url
from kargo_cli.main import table, usage


@pytest.mark.parametrize(
    "given",
    [
        "http://k.example:8001",
        "http://k.example:8001/",
        "http://k.example:8001/api/v1/",
        " http://k.example:8001/api/v1 ",
    ],
)
def test_server_addresses_are_normalized(given):
    assert normalize_url(given) == "http://k.example:8001"


@pytest.mark.parametrize("given", ["k.example:8001", "ftp://k.example", "http://", ""])
def test_a_bad_address_is_a_usage_error(given):
    with pytest.raises(ApiError) as caught:
        normalize_url(given)
    assert caught.value.exit_code == ExitCode.USAGE


def test_the_config_file_is_private_and_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "dir" / "config.json"
    monkeypatch.setenv("KARGO_CONFIG", str(path))
    assert config.load() == config.Settings()
    config.save(config.Settings(url="http://k", token="t1", username="ada"))
    config.save(config.Settings(url="http://k", token="t2", username="ada"))
    assert config.load().token == "t2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary left
    config.forget_token()
    assert config.load() == config.Settings(url="http://k", username="ada")


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", json.dumps({"url": 1, "x": 2})])
def test_an_unreadable_config_is_no_config(tmp_path, monkeypatch, content):
    path = tmp_path / "config.json"
    path.write_text(content)
    monkeypatch.setenv("KARGO_CONFIG", str(path))
    assert config.load() == config.Settings()


def test_rendering():
    assert table([], ["A"]) == "(none)"
    assert table([["1", "prod"]], ["ID", "NAME"]) == "ID  NAME\n1   prod"
    resources = {"cpu": {"used": 1.5, "capacity": 4}, "ram": {"used": 0, "capacity": 8}}
    assert usage(resources) == "cpu 1.5/4, ram 0/8 GiB"
