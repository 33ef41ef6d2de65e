"""`patient-qa eval retrieval`: a BEIR-layout folder indexed with our pipeline, scored per retrieval mode."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.metrics import evaluate_run, latency_summary
from knowledge.errors import PatientQAError
from knowledge.settings import RETRIEVAL_MODES

MEASURES = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100")
MODES = tuple(sorted(RETRIEVAL_MODES))  # the table reads bm25, dense, then their fusion (hybrid)
DOCS_PER_QUERY = 100  # recall@100 needs 100 documents; a document can own several chunks
CHUNK_DEPTH = 300


class BeirFormatError(PatientQAError, ValueError):
    """The folder is not in BEIR layout; the message says which file is missing or wrong."""


@dataclass(frozen=True)
class BeirData:
    """A BEIR dataset: corpus id -> (title, text), query id -> text, query id -> {corpus id: relevance}."""

    corpus: Mapping[str, tuple[str, str]]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    # Ids seen more than once: the last entry wins, as in BEIR's own loader; reported so nobody is surprised.
    duplicate_ids: Mapping[str, int] = field(default_factory=dict)

    @property
    def judged_queries(self) -> list[str]:
        """Queries that have text and at least one relevant document, in file order."""
        return [q for q in self.queries if any(r > 0 for r in self.qrels.get(q, {}).values())]


@dataclass(frozen=True)
class ModeResult:
    """One retrieval mode's ranked documents per query, its scores and its per-query latency."""

    mode: str
    run: Mapping[str, tuple[tuple[str, float], ...]]
    metrics: Mapping[str, float]
    latency_ms: Mapping[str, float | None]


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise BeirFormatError(f"{path}: line {number} is not JSON ({err})") from None
        if not isinstance(row, dict) or "_id" not in row:
            raise BeirFormatError(f'{path}: line {number} needs an object with an "_id"')
        rows.append(row)
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id, corpus-id, score per tab-separated line; a header line is skipped."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split("\t") if "\t" in line else line.split()
        if not parts or not line.strip():
            continue
        if len(parts) < 3:
            raise BeirFormatError(f"{path}: line {number} needs query-id, corpus-id and score")
        query, doc, value = parts[0], parts[1], parts[-1]
        try:
            relevance = int(float(value))
        except ValueError:
            if number == 1:
                continue  # the "query-id corpus-id score" header
            raise BeirFormatError(f"{path}: line {number} has a score that is not a number ({value!r})") from None
        qrels.setdefault(query, {})[doc] = relevance
    return qrels


def read_beir(folder: Path) -> BeirData:
    """corpus.jsonl, queries.jsonl and qrels.tsv (or qrels/test.tsv) from a BEIR folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BeirFormatError(f"no folder at {folder}; give a BEIR folder with --beir DIR")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).exists():
            raise BeirFormatError(f"{folder} has no {name}; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels")
    qrels_path = next((p for p in (folder / "qrels.tsv", folder / "qrels" / "test.tsv") if p.exists()), None)
    if qrels_path is None:
        raise BeirFormatError(f"{folder} has neither qrels.tsv nor qrels/test.tsv")
    corpus_rows = _read_jsonl(folder / "corpus.jsonl")
    query_rows = _read_jsonl(folder / "queries.jsonl")
    corpus = {str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or "")) for r in corpus_rows}
    queries = {str(r["_id"]): str(r.get("text") or "") for r in query_rows}
    duplicates = {"corpus": len(corpus_rows) - len(corpus), "queries": len(query_rows) - len(queries)}
    data = BeirData(corpus, queries, read_qrels(qrels_path), {k: v for k, v in duplicates.items() if v})
    if not data.judged_queries:
        raise BeirFormatError(f"{folder}: no query in queries.jsonl has a relevant document in {qrels_path.name}")
    return data


# ---------------------------------------------------------------- indexing


def _safe_stem(doc_id: str, taken: set[str]) -> str:
    """A file name for a corpus id; collisions after cleaning get a numbered suffix."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", doc_id)[:100] or "doc"
    stem, n = base, 1
    while stem.lower() in taken:
        n += 1
        stem = f"{base}~{n}"
    taken.add(stem.lower())
    return stem


def write_corpus_files(data: BeirData, folder: Path) -> dict[str, str]:
    """One Markdown file per corpus entry (title in front matter); returns file stem -> corpus id."""
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    stems: dict[str, str] = {}
    for doc_id, (title, text) in data.corpus.items():
        stem = _safe_stem(doc_id, taken)
        stems[stem] = doc_id
        front = f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n---\n\n" if title.strip() else ""
        (folder / f"{stem}.md").write_text(front + text + "\n", encoding="utf-8")
    return stems


def build_beir_index(data: BeirData, workdir: Path, settings, embedder, progress: bool = False):
    """(KnowledgeIndex, index doc id -> corpus ids, BuildReport): every corpus entry indexed as a document."""
    from knowledge.build import build_index
    from knowledge.index import KnowledgeIndex

    stems = write_corpus_files(data, workdir / "corpus")
    report = build_index([workdir / "corpus"], settings.updated(index_dir=workdir / "index"), embedder=embedder,
                         progress=progress)
    index = KnowledgeIndex.load(workdir / "index")
    # Identical entries are one document in our index; each of their corpus ids is ranked at its place.
    corpus_ids = {
        doc_id: [stems[Path(p).stem] for p in info["paths"] if Path(p).stem in stems]
        for doc_id, info in index.manifest["documents"].items()
    }
    return index, corpus_ids, report


# ---------------------------------------------------------------- retrieval


def rank_documents(retriever, query: str, corpus_ids: Mapping[str, Sequence[str]],
                   limit: int = DOCS_PER_QUERY) -> tuple[tuple[str, float], ...]:
    """Documents in the order of their best chunk, scored by that chunk's fused score."""
    result = retriever.retrieve(query, k=CHUNK_DEPTH)
    ranked: dict[str, float] = {}
    for hit in result.chunks:
        for corpus_id in corpus_ids.get(hit.chunk.doc_id, ()):
            ranked.setdefault(corpus_id, hit.score)
        if len(ranked) >= limit:
            break
    return tuple(ranked.items())[:limit]


def run_mode(index, embedder, glossary, data: BeirData, corpus_ids, mode: str) -> ModeResult:
    """Every judged query through `qa.retrieval.Retriever` in one mode, scored against the qrels."""
    from qa.retrieval import Retriever

    retriever = Retriever(index, embedder, glossary, mode=mode, depth=CHUNK_DEPTH)
    run: dict[str, tuple[tuple[str, float], ...]] = {}
    times: list[float] = []
    for query_id in data.judged_queries:
        started = time.perf_counter()
        run[query_id] = rank_documents(retriever, data.queries[query_id], corpus_ids)
        times.append((time.perf_counter() - started) * 1000)
    rankings = {q: [doc for doc, _ in docs] for q, docs in run.items()}
    qrels = {q: data.qrels[q] for q in data.judged_queries}
    return ModeResult(mode, run, evaluate_run(rankings, qrels, MEASURES), latency_summary(times))


def write_trec_run(run: Mapping[str, Sequence[tuple[str, float]]], path: Path, tag: str) -> Path:
    """TREC run format: `qid Q0 docid rank score tag`, ranks from 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for query_id, docs in run.items():
            for rank, (doc_id, value) in enumerate(docs, start=1):
                handle.write(f"{query_id} Q0 {doc_id} {rank} {value:.6f} {tag}\n")
    return path


def run_paths(run_out: Path, modes: Sequence[str]) -> dict[str, Path]:
    """One run file per mode: the given name for one mode, name.MODE.ext for several."""
    if len(modes) == 1:
        return {modes[0]: run_out}
    return {mode: run_out.with_name(f"{run_out.stem}.{mode}{run_out.suffix}") for mode in modes}


def evaluate_beir(folder: Path, modes: Sequence[str] = MODES, run_out: Path | None = None,
                  progress: bool = False) -> dict:
    """Index the corpus in a temporary folder, run each mode, return the results (and write run files)."""
    from knowledge.embedding import query_embedder
    from knowledge.glossary import load_glossary
    from knowledge.settings import Settings

    data = read_beir(folder)
    settings = Settings.from_env()
    glossary = load_glossary(settings.index.glossary) if settings.index.glossary.exists() else None
    with tempfile.TemporaryDirectory(prefix="patient-qa-beir-") as tmp:
        index, corpus_ids, build = build_beir_index(data, Path(tmp), settings, None, progress)  # the build picks
        embedder = query_embedder(index.query_encoder_file(), index.manifest, settings.index.embedding_backend, settings.retrieval.threads)
        results = [run_mode(index, embedder, glossary, data, corpus_ids, mode) for mode in modes]
    written = {}
    if run_out is not None:
        for mode, path in run_paths(Path(run_out), modes).items():
            result = next(r for r in results if r.mode == mode)
            written[mode] = str(write_trec_run(result.run, path, f"patient-qa-{mode}"))
    return {
        "dataset": str(folder),
        "corpus": len(data.corpus),
        "queries": len(data.judged_queries),
        "duplicate_ids": dict(data.duplicate_ids),
        "index": {"documents": build.documents, "chunks": build.chunks, "build_seconds": build.seconds,
                  "skipped": len(build.skipped)},
        "measures": list(MEASURES),
        "modes": {r.mode: {"metrics": {k: round(v, 4) for k, v in r.metrics.items()}, "latency_ms": dict(r.latency_ms)}
                  for r in results},
        "run_files": written,
    }


def render_beir_table(result: dict) -> str:
    """Modes side by side as a Markdown table."""
    modes = list(result["modes"])
    lines = [
        f"BEIR retrieval on `{result['dataset']}`: {result['corpus']} documents "
        f"({result['index']['chunks']} chunks), {result['queries']} judged queries.",
        "",
    ]
    if result.get("duplicate_ids"):
        dupes = ", ".join(f"{n} in {where}" for where, n in result["duplicate_ids"].items())
        lines += [f"Repeated ids ({dupes}): the last entry of each was used, as BEIR's loader does.", ""]
    lines += [
        "| Measure | " + " | ".join(modes) + " |",
        "|---|" + "---|" * len(modes),
    ]
    for measure in result["measures"]:
        values = [result["modes"][m]["metrics"][measure] for m in modes]
        best = max(values)
        cells = [f"**{v:.4f}**" if v == best and len(modes) > 1 else f"{v:.4f}" for v in values]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    lines.append("| query p50 (ms) | " + " | ".join(f"{result['modes'][m]['latency_ms']['p50']:.1f}" for m in modes) + " |")
    return "\n".join(lines) + "\n"
