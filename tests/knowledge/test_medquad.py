"""The acceptance build: `patient-qa index build` over the 214 MedQuAD dev articles (about a minute)."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from kb_fixtures import MEDQUAD

from knowledge.chunking import embedding_prefix
from knowledge.index import KnowledgeIndex

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def medquad_build(tmp_path_factory: pytest.TempPathFactory, embedder):
    """Build the MedQuAD dev index once through the CLI; returns (exit code, JSON report, index dir)."""
    if not MEDQUAD.is_dir():
        pytest.skip(f"MedQuAD dev articles not found at {MEDQUAD} (they ship with the shared datasets in CI)")
    from ui.cli import main

    index_dir = tmp_path_factory.mktemp("medquad") / "index"
    stdout = io.StringIO()  # capsys is function-scoped; this fixture is shared by the module
    with contextlib.redirect_stdout(stdout):
        code = main(["index", "build", str(MEDQUAD), "--index", str(index_dir), "--json"])
    return code, json.loads(stdout.getvalue()), index_dir


def test_medquad_dev_builds_214_documents_and_skips_nothing(medquad_build) -> None:
    code, report, _ = medquad_build

    assert code == 0
    assert report["documents"] == 214
    assert report["skipped"] == []
    assert report["added"] == 214 and report["chunks"] >= 214 and report["sentences"] > report["chunks"]


def test_medquad_chunks_fit_the_model_and_quote_cleanly(medquad_build, embedder) -> None:
    _, report, index_dir = medquad_build
    index = KnowledgeIndex.load(index_dir)
    chunks = list(index.chunks.values())

    sizes = embedder.count_tokens([embedding_prefix(c.title, c.heading_path) + c.text for c in chunks])
    too_long = [(c.article, n) for c, n in zip(chunks, sizes) if n > embedder.max_tokens]
    assert too_long == [], f"chunks the model would truncate: {too_long[:5]}"
    sentences = [s for c in chunks for s in c.sentence_texts()]
    assert len(sentences) == report["sentences"]
    assert [s for s in sentences if re.fullmatch(r"\W*\d{1,3}[.)]\W*", s)] == []  # no "2." as a quote
    assert len(index.doc_chunk_ids) == 214
