"""Bad files are skipped with a one-line reason while the rest is indexed; the exit code says if anything was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_fixtures import fake_settings, make_pdf, write_articles

from knowledge.build import NothingIndexedError, build_index
from knowledge.index import IndexError_, KnowledgeIndex

BUILD_KEYS = {"documents", "chunks", "sentences", "added", "updated", "removed", "unchanged", "skipped", "seconds"}


def _encrypted_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "Private notes about the treatment plan.")
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.output(str(path))


def _image_only_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")  # a drawing, as in a scan: no text layer
    pdf.output(str(path))


def write_bad_files(folder: Path) -> dict[str, str]:
    """One file of each bad kind; returns file name -> words its skip reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    valid = make_pdf(folder / "valid.pdf", [["A valid PDF, used to make broken ones."]])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage \x00\x01 no xref")
    (folder / "truncated.pdf").write_bytes(valid.read_bytes()[:400])
    valid.unlink()
    _encrypted_pdf(folder / "encrypted.pdf")
    (folder / "empty.pdf").write_bytes(b"")
    _image_only_pdf(folder / "scanned.pdf")
    (folder / "empty.md").write_text("  \n\n", encoding="utf-8")
    (folder / "image.md").write_bytes(bytes(range(256)) * 8)
    (folder / "latin1.txt").write_bytes("Caf\xe9 au lait and cr\xe8me br\xfbl\xe9e are desserts.".encode("latin-1"))
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04 not really a presentation")
    return {
        "corrupt.pdf": "unreadable PDF",
        "truncated.pdf": "unreadable PDF",
        "encrypted.pdf": "encrypted",
        "empty.pdf": "empty file",
        "scanned.pdf": "no extractable text",
        "empty.md": "empty file",
        "image.md": "binary data",
        "latin1.txt": "not UTF-8",
        "slides.pptx": "unsupported file type '.pptx'",
    }


def test_each_bad_file_is_skipped_with_a_one_line_reason_and_the_rest_is_indexed(tmp_path, fake_embedder) -> None:
    folder = write_articles(tmp_path / "articles", {"good.md": "# Good\n\nFever is common after CAR-T. Call us."})
    expected = write_bad_files(folder)

    report = build_index([folder], fake_settings(tmp_path / "index"), embedder=fake_embedder, progress=False)

    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], f"{name}: {reasons[name]!r}"
        assert "\n" not in reasons[name] and len(reasons[name]) < 200
    assert report.documents == 1
    index = KnowledgeIndex.load(tmp_path / "index")
    assert [c.article for c in index.chunks.values()] == ["good"]
    assert {Path(s["path"]).name for s in index.info()["skipped"]} == set(expected)


def test_an_owner_password_alone_does_not_stop_indexing(tmp_path) -> None:
    from fpdf import FPDF

    from knowledge.loaders import load_pdf

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "Anyone may read this leaflet.")
    pdf.set_encryption(owner_password="owner")  # opens without a password, only editing is restricted
    pdf.output(str(tmp_path / "leaflet.pdf"))

    assert load_pdf(tmp_path / "leaflet.pdf").sections[0].text == "Anyone may read this leaflet."


def test_missing_path_is_reported_not_fatal(tmp_path, fake_embedder) -> None:
    folder = write_articles(tmp_path / "articles", {"good.md": "Fever is common after CAR-T."})

    report = build_index([folder, tmp_path / "nowhere"], fake_settings(tmp_path / "index"), embedder=fake_embedder,
                         progress=False)

    assert report.documents == 1
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [("nowhere", "no such file or folder")]


def test_nothing_indexable_raises_with_the_report_and_keeps_the_previous_index(tmp_path, fake_embedder) -> None:
    good = write_articles(tmp_path / "good", {"good.md": "Fever is common after CAR-T."})
    bad = tmp_path / "bad"
    expected = write_bad_files(bad)
    settings = fake_settings(tmp_path / "index")
    build_index([good], settings, embedder=fake_embedder, progress=False)

    with pytest.raises(NothingIndexedError, match="nothing could be indexed") as caught:
        build_index([bad], settings, embedder=fake_embedder, progress=False)

    assert caught.value.report.documents == 0
    assert {Path(s.path).name for s in caught.value.report.skipped} == set(expected)
    assert [c.article for c in KnowledgeIndex.load(tmp_path / "index").chunks.values()] == ["good"]


def test_a_folder_that_is_not_an_index_is_never_replaced(tmp_path, fake_embedder) -> None:
    folder = write_articles(tmp_path / "articles", {"good.md": "Fever is common after CAR-T."})
    precious = tmp_path / "my-documents"
    precious.mkdir()
    (precious / "taxes.xlsx").write_bytes(b"numbers")

    with pytest.raises(IndexError_, match="not a patient-qa index"):
        build_index([folder], fake_settings(precious), embedder=fake_embedder, progress=False)

    assert (precious / "taxes.xlsx").read_bytes() == b"numbers"


def test_cli_exits_non_zero_with_json_when_nothing_could_be_indexed(tmp_path, capsys) -> None:
    from ui.cli import main  # in-process: the entry point is `sys.exit(main())`, and no model is needed here

    expected = write_bad_files(tmp_path / "bad")

    code = main(["index", "build", str(tmp_path / "bad"), "--index", str(tmp_path / "index"), "--json"])

    out, err = capsys.readouterr()
    assert code == 1
    data = json.loads(out)
    assert BUILD_KEYS <= set(data)
    assert data["documents"] == 0
    assert {Path(s["path"]).name for s in data["skipped"]} == set(expected)
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])
    assert "nothing could be indexed" in err and "Traceback" not in err
    assert not (tmp_path / "index").exists()


@pytest.mark.slow
def test_cli_indexes_the_good_files_exits_zero_and_prints_the_json_report(tmp_path, embedder, capsys) -> None:
    from ui.cli import main

    folder = write_articles(tmp_path / "articles", {"good.md": "# Good\n\nFever is common after CAR-T. Call us."})
    expected = write_bad_files(folder)

    code = main(["index", "build", str(folder), "--index", str(tmp_path / "index"), "--json"])

    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert BUILD_KEYS <= set(data)
    assert (data["documents"], data["added"], data["updated"], data["removed"], data["unchanged"]) == (1, 1, 0, 0, 0)
    assert data["chunks"] == 1 and data["sentences"] == 2
    assert {Path(s["path"]).name for s in data["skipped"]} == set(expected)
    assert isinstance(data["seconds"], float)
