"""Choosing the library: `open_store`/`open_writer`, the `store` setting and the --index/--store flags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kb_fixtures import FakeEmbedder, fake_settings

from knowledge.build import build_index
from knowledge.index import IndexNotFoundError, KnowledgeIndex
from knowledge.index_writer import EmbeddedWriter
from knowledge.settings import Settings
from knowledge.store import KnowledgeStore, StoreUnavailableError, open_store, open_writer, shown_location, where

URL = "postgresql://nurse:s3cret@db.example.org:5432/library"


@pytest.fixture
def no_pg_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without the postgres extra: importing knowledge.pg_store fails."""
    monkeypatch.setitem(sys.modules, "knowledge.pg_store", None)


def test_the_default_store_is_the_index_folder(tmp_path: Path, articles_dir: Path) -> None:
    settings = fake_settings(tmp_path / "index")
    writer = open_writer(settings)
    assert isinstance(writer, EmbeddedWriter) and writer.location == str(tmp_path / "index")
    build_index([articles_dir], settings, embedder=FakeEmbedder(), progress=False)
    store = open_store(settings)
    assert isinstance(store, KnowledgeIndex) and isinstance(store, KnowledgeStore)
    assert store.location == str(tmp_path / "index")


def test_a_store_folder_wins_over_the_index_folder(tmp_path: Path, articles_dir: Path) -> None:
    settings = fake_settings(tmp_path / "unused").updated(store=str(tmp_path / "library"))
    report = build_index([articles_dir], settings, embedder=FakeEmbedder(), progress=False)
    assert report.index_dir == str(tmp_path / "library")
    assert open_store(settings).location == str(tmp_path / "library")
    assert not (tmp_path / "unused").exists()


def test_a_missing_folder_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match=str(tmp_path / "nowhere")):
        open_store(Settings().updated(store=str(tmp_path / "nowhere")))


def test_a_server_url_without_the_postgres_extra_says_what_to_install(no_pg_store) -> None:
    settings = Settings().updated(store=URL)
    for opening in (open_store, open_writer):
        with pytest.raises(StoreUnavailableError, match=r"pip install '\.\[postgres\]'"):
            opening(settings)  # type: ignore[operator]


def test_the_cli_reports_a_server_it_cannot_open_in_one_line_without_the_password(no_pg_store, capsys) -> None:
    from ui.cli import main

    for argv in (["ask", "what is CAR-T?", "--store", URL], ["index", "info", "--store", URL],
                 ["index", "build", "--store", URL]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "s3cret" not in err
        assert ".[postgres]" in err


def test_shown_location_hides_only_the_password() -> None:
    assert shown_location(URL) == "postgresql://nurse@db.example.org:5432/library"
    assert shown_location("postgresql://db/lib?password=s3cret&sslmode=require") == "postgresql://db/lib?sslmode=require"
    assert shown_location("postgresql://db.example.org/library") == "postgresql://db.example.org/library"
    assert shown_location("/srv/index") == "/srv/index"


def test_an_explicit_index_folder_wins_over_a_store_from_the_environment() -> None:
    environ = {"PATIENT_QA_STORE": URL}
    assert Settings.from_env(environ).index.store == URL
    assert Settings.from_env(environ, **where("/srv/index", None)).index.store == ""
    assert Settings.from_env(environ, **where("/srv/index", "/srv/other")).index.store == "/srv/other"
    assert where(None, None) == {}


def test_a_named_store_is_never_rebuilt_from_the_bundled_articles(tmp_path: Path, monkeypatch) -> None:
    from ui.default_index import ensure_default_index

    def no_build(*args, **kwargs):
        raise AssertionError("the default index must not be built into a named store")

    monkeypatch.setattr("knowledge.build.build_index", no_build)
    settings = Settings().updated(index_dir=tmp_path / "missing-default", store=URL)
    assert ensure_default_index(settings) == 0
