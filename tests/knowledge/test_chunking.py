"""Chunking: every embedded text fits the model, no sentence is cut, headings and exact offsets are kept."""

from __future__ import annotations

import pytest
from kb_fixtures import whitespace_tokens

from knowledge.chunking import chunk_document, chunk_section, embedding_prefix
from knowledge.documents import Document, Section
from knowledge.loaders import load_document
from knowledge.sentences import split_sentences
from knowledge.settings import DEFAULT_ARTICLES

WORDS = "fever chills rash cough headache nausea dizziness confusion tremor seizure fatigue".split()


def prose(n_sentences: int, seed: int = 0) -> str:
    """Sentences of varying length (4 to 30 words), each distinct."""
    out = []
    for i in range(n_sentences):
        length = 4 + (i * 7 + seed) % 27
        body = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(length))
        out.append(f"Sentence {i} says {body}.")
    return " ".join(out)


def weighted_tokens(texts: list[str]) -> list[int]:
    """A fake tokenizer where long words cost more word pieces, like drug names and URLs do."""
    return [sum(len(w) // 6 + 1 for w in t.split()) + 2 for t in texts]


def embedded_sizes(doc: Document, chunks, count=whitespace_tokens) -> list[int]:
    return count([embedding_prefix(doc.title, c.heading_path) + c.text for c in chunks])


def test_no_embedded_text_exceeds_the_token_limit() -> None:
    doc = Document("Cytokine release syndrome", "crs.md", (Section(("Signs", "At home"), prose(120)),))

    for max_tokens in (64, 128, 256):
        chunks = chunk_document(doc, "d", whitespace_tokens, target_words=160, max_tokens=max_tokens)
        assert chunks
        assert max(embedded_sizes(doc, chunks)) <= max_tokens


def test_list_markers_between_sentences_count_towards_the_limit() -> None:
    symptoms = "\n".join(f"{i}. {word}" for i, word in enumerate(WORDS * 15, 1))
    bullets = "\n".join(f"- {word} now" for word in WORDS * 15)
    doc = Document("Symptoms", "s.md", (Section(("Numbered",), symptoms), Section(("Bulleted",), bullets)))

    chunks = chunk_document(doc, "d", whitespace_tokens, target_words=160, max_tokens=64)

    assert max(embedded_sizes(doc, chunks)) <= 64


def test_an_over_long_sentence_is_cut_into_pieces_that_each_fit() -> None:
    # Short words first, then long ones: cutting into equal word counts would overflow the second piece.
    sentence = " ".join(["a"] * 150 + ["interleukin6receptorantagonisttocilizumabactemra"] * 25) + "."
    doc = Document("T", "t.md", (Section((), sentence + " Next sentence here."),))

    chunks = chunk_document(doc, "d", weighted_tokens, target_words=160, max_tokens=64, overlap=0)

    assert max(embedded_sizes(doc, chunks, weighted_tokens)) <= 64
    pieces = [s for c in chunks for s in c.sentence_texts()]
    assert " ".join(pieces[:-1]).split() == sentence.split()  # every word kept, in order, once
    assert pieces[-1] == "Next sentence here."


def test_chunks_are_whole_sentences_with_one_sentence_of_overlap() -> None:
    section = Section(("Treatment",), prose(60, seed=3))
    sentence_spans = split_sentences(section.text)

    chunks = chunk_section("Title", section, whitespace_tokens, target_words=60, max_tokens=256, overlap=1)

    assert len(chunks) > 3
    absolute = []
    for text, offsets, start, end in chunks:
        assert text == section.text[start:end]
        spans = [(start + s, start + e) for s, e in offsets]
        assert spans[0][0] == start and spans[-1][1] == end  # a chunk starts and ends on sentence bounds
        assert set(spans) <= set(sentence_spans)  # never a piece of a sentence
        absolute.append(spans)
    for previous, current in zip(absolute, absolute[1:]):
        assert previous[-1] == current[0]  # exactly one sentence repeated
        assert len(set(previous) & set(current)) == 1
    covered = sorted({span for spans in absolute for span in spans})
    assert covered == sentence_spans  # nothing is lost between chunks


def test_sentence_offsets_are_exact_spans_of_the_chunk_text() -> None:
    text = "1. Rest at home.\n2. Drink water. Call us at 38.5 degrees!\n\nDr. Lee (the nurse) will call."
    doc = Document("T", "t.md", (Section(("A",), text),))

    (chunk,) = chunk_document(doc, "d", whitespace_tokens)

    assert chunk.sentence_texts() == ["Rest at home.", "Drink water.", "Call us at 38.5 degrees!", "Dr. Lee (the nurse) will call."]
    assert all(chunk.text[s:e] in text for s, e in chunk.sentences)


def test_chunks_keep_their_heading_path_and_never_cross_sections() -> None:
    doc = Document(
        "Guide", "g.md",
        (Section((), prose(5)), Section(("Signs",), prose(30, 1)), Section(("Signs", "In children"), prose(3, 2))),
    )

    chunks = chunk_document(doc, "doc-1", whitespace_tokens, target_words=60)

    for chunk in chunks:
        section = next(s for s in doc.sections if s.heading_path == chunk.heading_path)
        assert chunk.text in section.text
        assert chunk.doc_id == "doc-1"
    assert [c.heading_path for c in chunks][0] == ()
    assert [c.heading_path for c in chunks][-1] == ("Signs", "In children")
    assert sum(c.heading_path == ("Signs",) for c in chunks) > 1


def test_chunk_size_stays_near_the_target_in_words() -> None:
    doc = Document("T", "t.md", (Section((), prose(200, 5)),))

    chunks = chunk_document(doc, "d", whitespace_tokens, target_words=100, max_tokens=10_000)

    sizes = [len(c.text.split()) for c in chunks]
    assert max(sizes) <= 130
    assert min(sizes[:-1]) >= 50


@pytest.mark.slow
def test_real_tokenizer_every_embedded_text_fits_the_model(embedder) -> None:
    """With MiniLM's own word pieces: the bundled articles plus lists and jargon that are hard to fit."""
    docs = [load_document(p) for p in sorted(DEFAULT_ARTICLES.glob("*.md"))]
    numbered = "\n".join(f"{i}) {w} now" for i, w in enumerate(WORDS * 25, 1))
    jargon = " ".join(["a"] * 200 + ["https://clinicaltrials.gov/study/NCT04196413?cond=CAR-T"] * 40) + "."
    docs.append(Document("Lists", "lists.md", (Section(("Numbered list",), numbered), Section(("Long",), jargon))))
    limit = embedder.max_tokens

    for doc in docs:
        chunks = chunk_document(doc, doc.stem, embedder.count_tokens, 160, limit, 1)
        sizes = embedder.count_tokens([embedding_prefix(doc.title, c.heading_path) + c.text for c in chunks])
        assert max(sizes) <= limit, f"{doc.source_path}: a chunk of {max(sizes)} word pieces would be truncated"


def test_a_section_of_one_sentence_is_one_chunk() -> None:
    doc = Document("T", "t.md", (Section(("A",), "Only one sentence here."),))

    (chunk,) = chunk_document(doc, "d", whitespace_tokens)

    assert chunk.sentence_texts() == ["Only one sentence here."]
