"""The leaflet set of `patient-qa eval leaflets`: MedQuAD-dev articles rendered as PDF and HTML read back as the
Markdown reads (same titles, same sections, same text), with no header, footer or navigation text anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.leaflets import (
    CHROME,
    CONTACTS,
    FORMATS,
    LEAFLET_COUNT,
    RUNNING_HEADER,
    render_set,
)
from eval.workspace import MEDQUAD_DEV
from knowledge.loaders import LoadError, load_document
from knowledge.settings import Settings
from knowledge.text import squash_whitespace
from ui import cli

# One leaflet of each PDF kind (real /Title, a word processor's file name and two columns, none and the contacts
# table): rendering a leaflet costs about a second (fpdf2 parses its three TTF fonts each time), so the fast tests
# render three and one slow test reads back the full twelve.
FAST_COUNT = 3


def _render(tmp_path_factory: pytest.TempPathFactory, count: int):
    if not (MEDQUAD_DEV / "questions.jsonl").is_file():
        pytest.skip(f"MedQuAD-dev not found at {MEDQUAD_DEV} (it ships with the shared datasets in CI)")
    return render_set(MEDQUAD_DEV, tmp_path_factory.mktemp("leaflets"), count=count)


@pytest.fixture(scope="module")
def leaflets(tmp_path_factory: pytest.TempPathFactory):
    """The first three of the rendered set's kinds, once per module."""
    return _render(tmp_path_factory, FAST_COUNT)


def _load(path: Path):
    return load_document(path, html_min_words=Settings().html_min_words)


def _flat(text: str) -> str:
    return squash_whitespace(text)


def _check_the_set(leaflets, count: int) -> None:
    assert len(leaflets.articles) == count
    for fmt in FORMATS:
        assert len(list(leaflets.folders[fmt].iterdir())) == count + (fmt == "html")
    assert sum(len(a.questions) for a in leaflets.articles) >= 3 * count
    assert all(q.section in dict(a.sections) for a in leaflets.articles for q in a.questions)


def _check_reads_back(leaflets, fmt: str) -> None:
    """Every leaflet of `fmt` loads with the Markdown's title, sections and text, and no site chrome."""
    suffix = {"pdf": ".pdf", "html": ".html"}[fmt]
    for article in leaflets.articles:
        doc = _load(leaflets.folders[fmt] / f"{article.stem}{suffix}")
        found = {s.heading_path[-1]: _flat(s.text) for s in doc.sections if s.heading_path}

        assert doc.title == article.title, article.stem
        for name, text in article.sections:
            assert found.get(name) == _flat(text), f"{article.stem}: section {name!r} differs"
        source = article.source.read_text(encoding="utf-8").lower()
        for text in [doc.title, *found, *found.values()]:
            assert not [p for p in CHROME if p.lower() in text.lower() and p.lower() not in source], article.stem


def test_the_set_has_its_articles_in_every_format_with_their_questions(leaflets) -> None:
    _check_the_set(leaflets, FAST_COUNT)


@pytest.mark.parametrize("fmt", ["pdf", "html"])
def test_every_leaflet_reads_back_with_its_title_sections_and_text(leaflets, fmt: str) -> None:
    _check_reads_back(leaflets, fmt)


@pytest.mark.slow  # renders twelve PDFs (about a second each) and reads them back
def test_the_full_set_of_twelve_reads_back_in_every_format(tmp_path_factory: pytest.TempPathFactory) -> None:
    full = _render(tmp_path_factory, LEAFLET_COUNT)
    _check_the_set(full, LEAFLET_COUNT)
    for fmt in ("pdf", "html"):
        _check_reads_back(full, fmt)


def test_the_pdf_set_has_two_column_leaflets_a_table_and_running_headers_on_every_page(leaflets) -> None:
    from pypdf import PdfReader

    readers = {a.stem: PdfReader(leaflets.folders["pdf"] / f"{a.stem}.pdf") for a in leaflets.articles}
    assert all(RUNNING_HEADER in page.extract_text() for r in readers.values() for page in r.pages)
    assert any(len(r.pages) > 1 for r in readers.values())
    table = _load(leaflets.folders["pdf"] / f"{leaflets.articles[2].stem}.pdf").sections[-1]
    assert table.heading_path == ("Who to call",)
    assert table.text.split("\n\n") == [" | ".join(row) for row in CONTACTS]


def test_the_navigation_only_page_is_skipped_with_its_reason(leaflets) -> None:
    with pytest.raises(LoadError, match="too little main text"):
        _load(leaflets.folders["html"] / "site-map.html")
    assert leaflets.expected_skips["html"] == ("site-map.html",)


def test_a_missing_medquad_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["eval", "leaflets", "--medquad", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("patient-qa: no MedQuAD-dev questions at") and err.count("\n") == 1


@pytest.mark.slow
def test_leaflet_eval_scores_pdf_and_html_like_the_markdown(tmp_path: Path) -> None:
    from eval.leaflets import run_leaflet_eval

    if not (MEDQUAD_DEV / "questions.jsonl").is_file():
        pytest.skip(f"MedQuAD-dev not found at {MEDQUAD_DEV} (it ships with the shared datasets in CI)")
    report = run_leaflet_eval(MEDQUAD_DEV, tmp_path / "out", count=3)
    results = report["formats"]

    for fmt, result in results.items():
        assert result["titles_right"] == 1.0, fmt
        assert result["quotes_verbatim"] == 1.0, fmt
        assert result["chrome_leaks"] == 0, fmt
        assert result["expected_skips_ok"], (fmt, result["skipped"])
        assert abs(result["gold_section_quoted"] - results["markdown"]["gold_section_quoted"]) <= 0.05, fmt
    assert results["pdf"]["quotes_on_cited_page"] == 1.0
    assert (tmp_path / "out" / "leaflets.md").read_text(encoding="utf-8").startswith("# Leaflet eval")
