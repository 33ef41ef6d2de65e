"""Section-aware, sentence-aligned chunks that always fit the embedding model's window."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from knowledge.documents import Chunk, Document, Section
from knowledge.question_key_vectors import section_questions
from knowledge.sentences import split_sentences

TokenCounter = Callable[[list[str]], list[int]]
_SAFETY_TOKENS = 8  # word pieces are nearly additive across sentences; keep a margin for the joins


def embedding_prefix(title: str, heading_path: Sequence[str]) -> str:
    """Context put before a chunk's text when it is embedded or BM25-indexed, never when quoted."""
    parts = [title, *heading_path]
    return " > ".join(p for p in parts if p) + "\n"


def asked_words(meta: object, heading_path: Sequence[str]) -> str:
    """The question keys of a chunk's '##' section, as extra BM25 words (doc2query): how patients ask it."""
    asked = section_questions(meta).get(heading_path[0]) if heading_path else None
    return (" " + " ".join(asked)) if asked is not None else ""


def lexical_text(title: str, heading_path: Sequence[str], text: str, meta: object, question_keys: bool) -> str:
    """What BM25 indexes for a chunk, in every store: title, headings, text and (optionally) its section's keys."""
    return embedding_prefix(title, heading_path) + text + (asked_words(meta, heading_path) if question_keys else "")


def _split_long(text: str, span: tuple[int, int], count_tokens: TokenCounter, limit: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into word-aligned pieces that each fit `limit` word pieces."""
    start, end = span
    words: list[tuple[int, int]] = []
    pos = start
    for token in text[start:end].split():
        s = text.index(token, pos)
        words.append((s, s + len(token)))
        pos = s + len(token)
    # Fill pieces word by word: word pieces per word vary too much (a URL, a drug name) to cut evenly.
    sizes = [max(1, c - 2) for c in count_tokens([text[s:e] for s, e in words])]
    pieces: list[tuple[int, int]] = []
    first, used = 0, 0
    for i, size in enumerate(sizes):
        if i > first and used + size > limit:
            pieces.append((words[first][0], words[i - 1][1]))
            first, used = i, 0
        used += size
    pieces.append((words[first][0], words[-1][1]))
    return pieces


def chunk_section(
    title: str,
    section: Section,
    count_tokens: TokenCounter,
    target_words: int,
    max_tokens: int,
    overlap: int,
) -> list[tuple[str, tuple[tuple[int, int], ...], int, int]]:
    """Chunks of one section as (text, sentence offsets, start, end) with offsets into the section text."""
    text = section.text
    spans = split_sentences(text)
    if not spans:
        return []
    prefix_tokens = count_tokens([embedding_prefix(title, section.heading_path)])[0]
    budget = max(16, max_tokens - prefix_tokens - _SAFETY_TOKENS)
    counts = [max(0, c - 2) for c in count_tokens([text[s:e] for s, e in spans])]
    fitted: list[tuple[tuple[int, int], int]] = []
    for span, count in zip(spans, counts):
        if count <= budget:
            fitted.append((span, count))
            continue
        for piece in _split_long(text, span, count_tokens, budget):
            fitted.append((piece, max(0, count_tokens([text[piece[0] : piece[1]]])[0] - 2)))
    words = [len(text[s:e].split()) for (s, e), _ in fitted]
    # What lies between sentences (list markers such as "- " or "12. ") is embedded too, so it counts.
    joins = [text[a[1] : b[0]] for (a, _), (b, _) in zip(fitted, fitted[1:])]
    gaps = [0] + ([max(0, c - 2) for c in count_tokens(joins)] if joins else [])

    groups: list[list[int]] = []
    i = 0
    while i < len(fitted):
        group = [i]
        tokens, n_words = fitted[i][1], words[i]
        j = i + 1
        while j < len(fitted) and n_words < target_words:
            if tokens + gaps[j] + fitted[j][1] > budget or n_words + words[j] > target_words * 1.3:
                break
            group.append(j)
            tokens += gaps[j] + fitted[j][1]
            n_words += words[j]
            j += 1
        groups.append(group)
        if j >= len(fitted):
            break
        i = max(j - overlap, group[0] + 1) if len(group) > overlap else j

    # A short tail chunk reads badly alone: fold it into its neighbour when it fits.
    if len(groups) > 1:
        tail, prev = groups[-1], groups[-2]
        tail_new = [k for k in tail if k not in prev]
        joined = prev + tail_new
        tokens = sum(fitted[k][1] for k in joined) + sum(gaps[k] for k in joined[1:])
        if sum(words[k] for k in tail_new) < target_words // 4 and tokens <= budget:
            groups[-2] = prev + tail_new
            groups.pop()

    chunks = []
    for group in groups:
        start, end = fitted[group[0]][0][0], fitted[group[-1]][0][1]
        offsets = tuple((s - start, e - start) for (s, e), _ in (fitted[k] for k in group))
        chunks.append((text[start:end], offsets, start, end))
    return chunks


def chunk_document(
    doc: Document,
    doc_id: str,
    count_tokens: TokenCounter,
    target_words: int = 160,
    max_tokens: int = 256,
    overlap: int = 1,
) -> list[Chunk]:
    """All chunks of a document in reading order; no chunk crosses a section or splits a sentence."""
    chunks: list[Chunk] = []
    for section in doc.sections:
        for text, offsets, start, end in chunk_section(doc.title, section, count_tokens, target_words, max_tokens, overlap):
            chunks.append(
                Chunk(
                    doc_id=doc_id,
                    heading_path=section.heading_path,
                    text=text,
                    sentences=offsets,
                    page_start=section.page_at(start),
                    page_end=section.page_at(max(start, end - 1)),
                    page_breaks=tuple((at - start, page) for at, page in section.pages if start < at < end),
                )
            )
    return chunks
