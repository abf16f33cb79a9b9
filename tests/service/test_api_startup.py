"""The service refuses to start on a malformed authority list, with one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ranker.authority import DOMAIN_HEADER, AuthorityListError
from service.server import serve
from service.settings import ServiceSettings
from tests.service.conftest import failed_startup

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def bad_list(tmp_path) -> Path:
    directory = tmp_path / "authority"
    directory.mkdir()
    rows = [",".join(DOMAIN_HEADER), "examplebank.org,Example Bank,central_bank,us,7,tier out of range"]
    (directory / "banks.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def test_app_startup_fails_with_one_line(tiny_bm25_root, bad_list):
    """`create_app`'s lifespan (what every uvicorn worker runs) stops the server before it binds."""
    line = failed_startup({"DRSEARCH_AUTHORITY_LIST": str(bad_list), "DRSEARCH_SERVE_INDEX": str(tiny_bm25_root)}, "banks.csv")
    assert "drsearch: cannot serve: banks.csv:2: tier" in line, line


def test_serve_checks_the_list_before_starting(tiny_bm25_root, bad_list, monkeypatch):
    monkeypatch.setenv("DRSEARCH_AUTHORITY_LIST", str(bad_list))
    with pytest.raises(AuthorityListError) as err:
        serve(ServiceSettings(index=tiny_bm25_root, port=0))
    assert str(err.value).startswith("banks.csv:2: tier")
