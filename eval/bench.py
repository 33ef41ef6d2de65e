"""`patient-qa bench`: cold start, warm ask against its embedding floor, index build/load, and vector search at scale.

Numbers only: nothing here asserts a time. Results go to bench.json and bench.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.metrics import latency_summary
from eval.workspace import MEDQUAD_DEV

SCALE_SIZES = (10_000, 100_000, 1_000_000)
SCALE_QUERIES = 200
DIMENSION = 384
COLD_QUESTION = "What is CAR-T cell therapy?"
CHAT_TIMEOUT_S = 180.0
# Exact search may take at most this share of the embedding floor: issue 4 wants ask p50 <= 2 x the floor,
# and BM25, fusion and composing also need a share of the remaining headroom.
SEARCH_BUDGET_OF_FLOOR = 0.5
MIN_APPROXIMATE_RECALL = 0.95
EF_SEARCH_SWEEP = (64, 128, 256)  # HNSW search breadth: recall bought with latency


def rss_mb() -> float:
    """Resident memory of this process from /proc/self/status (Linux); 0 where that file does not exist."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cli_command() -> list[str]:
    """The `patient-qa` console script beside this Python, else `python -m ui.cli`."""
    script = Path(sys.executable).with_name("patient-qa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ui.cli"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "TOKENIZERS_PARALLELISM": "false"})
    return env


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cold start


def cold_ask(index_dir: Path, runs: int = 3) -> dict:
    """Wall time of `patient-qa ask ... --json` processes: to the answer on stdout and to exit."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(cli_command() + ["ask", COLD_QUESTION, "--json", "--index", str(index_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env())
        first_line = proc.stdout.readline()
        answered = time.perf_counter() - started
        rest, err = proc.communicate(timeout=300)
        exited = time.perf_counter() - started
        try:
            ok = bool(json.loads(first_line).get("quotes"))
        except ValueError:
            ok = False
        if proc.returncode != 0 or not ok:
            return {"error": f"exit {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}"}
        samples.append({"to_answer_s": round(answered, 3), "to_exit_s": round(exited, 3)})
    return {
        "command": " ".join(cli_command()[-1:] + ["ask", json.dumps(COLD_QUESTION), "--json"]),
        "runs": samples,
        "to_answer_s_median": round(statistics.median(s["to_answer_s"] for s in samples), 3),
        "to_exit_s_median": round(statistics.median(s["to_exit_s"] for s in samples), 3),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return None


def _stop(proc: subprocess.Popen) -> None:
    """End the chat server this bench started (its own process group), politely first."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def cold_chat(index_dir: Path, timeout_s: float = CHAT_TIMEOUT_S) -> dict:
    """Process start to the chat page answering 200; `seconds` is None when `patient-qa chat` is not available."""
    help_text = subprocess.run(cli_command() + ["chat", "--help"], capture_output=True, text=True,
                               env=_child_env()).stdout
    port = _free_port()
    args = cli_command() + ["chat", "--index", str(index_dir)]
    if "--port" in help_text:
        args += ["--port", str(port)]
    env = _child_env()
    env["GRADIO_SERVER_PORT"] = str(port)
    env["GRADIO_SERVER_NAME"] = "127.0.0.1"
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            while time.perf_counter() - started < timeout_s:
                if proc.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace").strip()
                    return {"seconds": None, "reason": f"`patient-qa chat` exited ({proc.returncode}) without serving: "
                                                       f"{output[-200:] or 'no output'}"}
                log.seek(0)
                announced = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)", log.read().decode(errors="replace"))
                if announced and announced.group(1) != str(port):
                    url = f"http://127.0.0.1:{announced.group(1)}/"
                if _http_status(url) == 200:
                    return {"seconds": round(time.perf_counter() - started, 3), "url": url}
                time.sleep(0.25)
            return {"seconds": None, "reason": f"no 200 from {url} within {timeout_s:.0f} s"}
        finally:
            _stop(proc)


# ---------------------------------------------------------------- warm ask vs embedding floor


def warm_ask(assistant, questions: Sequence[tuple[str, tuple[str, ...]]]) -> dict:
    """p50/p95 of Assistant.ask and of embedding the question alone, over the same questions, in one warm process."""
    assistant.warm_up()
    assistant.embedder.encode_query("warm up")
    ask_ms, embed_ms = [], []
    for question, history in questions:
        started = time.perf_counter()
        assistant.embedder.encode([question])  # uncached: the floor is a real model call
        embed_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        assistant.ask(question, history=list(history))
        ask_ms.append((time.perf_counter() - started) * 1000)
    ask, embed = latency_summary(ask_ms), latency_summary(embed_ms)
    return {
        "questions": len(questions),
        "ask_ms": ask,
        "embed_ms": embed,
        "ratio_p50": round(ask["p50"] / embed["p50"], 2) if embed["p50"] else None,
        "ratio_p95": round(ask["p95"] / embed["p95"], 2) if embed["p95"] else None,
    }


def triage_cost(assistant, questions: Sequence[tuple[str, tuple[str, ...]]]) -> dict:
    """What safety triage adds to an answer: its time with the question's vector already computed (retrieval
    needs that vector anyway); a conversation's extra embedding of the earlier turns is counted."""
    from qa import safety

    times = []
    for question, history in questions:
        assistant.triage_embedder.encode_query(question)
        started = time.perf_counter()
        safety.triage(question, list(history), assistant.glossary, embed=assistant.triage_embedder.encode_query,
                      model=assistant.triage_model)
        times.append((time.perf_counter() - started) * 1000)
    return {"questions": len(questions), "triage_ms": latency_summary(times)}


# ---------------------------------------------------------------- index build, load, memory


def build_throughput(articles: Path, settings, embedder) -> dict:
    """A fresh (nothing reused) build of `articles` into a temporary folder: seconds, chunks/s, sentences/s."""
    from knowledge.index import KnowledgeIndex, build_index

    with tempfile.TemporaryDirectory(prefix="patient-qa-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        report = build_index([articles], replace(settings, index_dir=index_dir), embedder=embedder, progress=False)
        load = index_load(index_dir)
        size = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
        KnowledgeIndex.load(index_dir)
    return {
        "articles": str(articles),
        "documents": report.documents,
        "chunks": report.chunks,
        "sentences": report.sentences,
        "seconds": report.seconds,
        "chunks_per_s": round(report.chunks / report.seconds, 1),
        "sentences_per_s": round(report.sentences / report.seconds, 1),
        "index_mb": round(size / 1e6, 2),
        "load": load,
    }


def index_load(index_dir: Path, runs: int = 5) -> dict:
    """Median and max seconds of KnowledgeIndex.load (files already in the page cache)."""
    from knowledge.index import KnowledgeIndex

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        KnowledgeIndex.load(index_dir)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4)}


def memory_probe(index_dir: Path) -> dict:
    """VmRSS of a fresh process: after start-up, after loading the index, after the model and a first answer."""
    code = ("import json; from eval.bench import probe_memory; "
            f"print(json.dumps(probe_memory({str(index_dir)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=300)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_memory(index_dir: str) -> dict:
    """Run inside the probe process: RSS at each stage, in MB."""
    stages = {"python_mb": round(rss_mb(), 1)}
    from knowledge.index import KnowledgeIndex
    from knowledge.settings import Settings

    index = KnowledgeIndex.load(Path(index_dir))
    stages["after_index_load_mb"] = round(rss_mb(), 1)
    from qa.assistant import Assistant

    assistant = Assistant(Settings.from_env(index_dir=index_dir), index=index)
    assistant.ask(COLD_QUESTION)
    stages["after_model_and_first_answer_mb"] = round(rss_mb(), 1)
    return stages


# ---------------------------------------------------------------- vector search at scale


def synthetic_vectors(n: int, reference: np.ndarray | None, seed: int) -> np.ndarray:
    """Unit vectors shaped like real embeddings: the mean and covariance spectrum of `reference` (else a power law).

    Independent Gaussian draws carry no clusters, so approximate search finds them harder than real text:
    the recall measured here is a floor, not a flattering number.
    """
    rng = np.random.default_rng(seed)
    if reference is not None and len(reference) > DIMENSION:
        mean = reference.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov((reference - mean).T))
        scale = np.sqrt(np.clip(values, 0, None)).astype(np.float32)
        basis = vectors.T.astype(np.float32)
    else:
        mean = np.zeros(DIMENSION, dtype=np.float32)
        scale = ((np.arange(DIMENSION) + 1.0) ** -0.5).astype(np.float32)
        basis = np.eye(DIMENSION, dtype=np.float32)
    out = np.empty((n, DIMENSION), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        rows = min(step, n - start)
        block = (rng.standard_normal((rows, DIMENSION), dtype=np.float32) * scale) @ basis + mean
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + rows] = block
    return out


def _product_index(kind: str, size: int):
    """The index knowledge.vectors makes, forced to exact or approximate regardless of its size threshold."""
    import knowledge.vectors as vectors

    saved = vectors.APPROXIMATE_FROM
    vectors.APPROXIMATE_FROM = 0 if kind == "approximate" else sys.maxsize
    try:
        return vectors.new_vector_index(DIMENSION, size)
    finally:
        vectors.APPROXIMATE_FROM = saved


def _describe(index) -> str:
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    name = type(inner).__name__
    if hasattr(inner, "hnsw"):
        name += f"(M={inner.hnsw.nb_neighbors(1)}, "
        name += f"efConstruction={inner.hnsw.efConstruction}, efSearch={inner.hnsw.efSearch})"
    return f"IndexIDMap2({name})"


def _search_timing(index, queries: np.ndarray, k: int = 10) -> tuple[list[list[int]], dict]:
    from knowledge.vectors import search_vectors

    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        hits = search_vectors(index, query, k)
        times.append((time.perf_counter() - started) * 1000)
        found.append([i for i, _ in hits])
    return found, latency_summary(times)


def _recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return round(float(np.mean([len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(found, exact)])), 4)


def _ef_sweep(index, queries: np.ndarray, exact_ids: list[list[int]]) -> list[dict]:
    """Latency and recall@10 of the HNSW index at other efSearch values; the product's value is restored."""
    import faiss

    hnsw = faiss.downcast_index(index.index).hnsw
    product_ef = hnsw.efSearch
    rows = []
    try:
        for ef in EF_SEARCH_SWEEP:
            hnsw.efSearch = ef
            found, latency = _search_timing(index, queries)
            rows.append({"ef_search": ef, "p50": latency["p50"], "p95": latency["p95"], "recall_at_10": _recall(found, exact_ids)})
    finally:
        hnsw.efSearch = product_ef
    return rows


def scale_one(n: int, reference: np.ndarray | None, build_threads: int, query_threads: int) -> dict:
    """Exact vs approximate index at one size: build time, index bytes, RSS growth, query latency, recall@10."""
    import faiss

    corpus = synthetic_vectors(n, reference, seed=n)
    queries = synthetic_vectors(SCALE_QUERIES, reference, seed=n + 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    row: dict = {"vectors": n, "dimension": DIMENSION, "queries": SCALE_QUERIES}
    exact_ids: list[list[int]] = []
    for kind in ("exact", "approximate"):
        _say(f"scale {n:,}: {kind} index")
        before = rss_mb()
        faiss.omp_set_num_threads(build_threads)
        started = time.perf_counter()
        index = _product_index(kind, n)
        index.add_with_ids(corpus, ids)
        build_s = time.perf_counter() - started
        grown = rss_mb() - before
        faiss.omp_set_num_threads(query_threads)
        found, latency = _search_timing(index, queries)
        entry = {
            "index": _describe(index),
            "build_s": round(build_s, 2),
            "index_mb": round(len(faiss.serialize_index(index)) / 1e6, 1),
            "rss_growth_mb": round(grown, 1),
            "latency_ms": latency,
        }
        if kind == "exact":
            exact_ids = found
        else:
            entry["recall_at_10"] = _recall(found, exact_ids)
            entry["ef_search_sweep"] = _ef_sweep(index, queries, exact_ids)
        row[kind] = entry
        del index
    del corpus
    return row


def vector_scale(sizes: Sequence[int], reference: np.ndarray | None, query_threads: int = 1) -> dict:
    """Every size, plus the size from which the approximate index should be used."""
    build_threads = os.cpu_count() or 1
    rows = [scale_one(n, reference, build_threads, query_threads) for n in sizes]
    return {"rows": rows, "build_threads": build_threads, "query_threads": query_threads,
            "vectors_shaped_like": "default index sentence vectors" if reference is not None else "power law"}


def recommend_switch(rows: Sequence[dict], embed_p50_ms: float | None) -> dict:
    """The smallest size at which exact search p50 exceeds its budget (a share of the embedding floor).

    Exact search is linear in the corpus, so the measured per-vector cost extrapolates between sizes.
    """
    if not rows or not embed_p50_ms:
        return {"approximate_from": None, "reason": "no measurements"}
    largest = max(rows, key=lambda r: r["vectors"])
    per_vector_ms = largest["exact"]["latency_ms"]["p50"] / largest["vectors"]
    budget = embed_p50_ms * SEARCH_BUDGET_OF_FLOOR
    size = int(budget / per_vector_ms)
    rounded = max(10_000, (size // 10_000) * 10_000)
    # Recall is judged at the first measured size past the switch: that is where the approximate index starts.
    near = min((r for r in rows if r["vectors"] >= rounded), key=lambda r: r["vectors"], default=largest)
    recall = near["approximate"]["recall_at_10"]
    sweep = near["approximate"].get("ef_search_sweep", [])
    enough = next((e["ef_search"] for e in sweep if e["recall_at_10"] >= MIN_APPROXIMATE_RECALL), None)
    from knowledge.vectors import APPROXIMATE_FROM

    return {
        "approximate_from": rounded,
        "current_setting": APPROXIMATE_FROM,
        "budget_ms": round(budget, 2),
        "exact_ms_per_100k": round(per_vector_ms * 100_000, 2),
        "recall_checked_at": near["vectors"],
        "approximate_recall_at_10": recall,
        "recall_ok": recall >= MIN_APPROXIMATE_RECALL,
        "ef_search_for_recall": enough,
        "reason": (f"exact search p50 reaches {SEARCH_BUDGET_OF_FLOOR:.0%} of the embedding floor "
                   f"({budget:.1f} ms) at about {size:,} vectors"),
    }


# ---------------------------------------------------------------- the whole bench


def run_bench(out_dir: Path, quick: bool = False, medquad: Path = MEDQUAD_DEV, index_dir: Path | None = None,
              skip: Sequence[str] = (), step: Callable[[str], None] = _say) -> dict:
    """Every measurement in order; a section that cannot run records why instead of failing the bench."""
    from eval.evaluate import load_assistant
    from eval.gold import DEFAULT_GOLD, load_gold
    from knowledge.settings import Settings

    started = time.perf_counter()
    settings = Settings.from_env()
    result: dict = {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "threads": settings.threads,
    }
    step("preparing the default index")
    assistant, info = load_assistant(index_dir, None if index_dir else settings.articles)
    result["index"] = info
    default_index = Path(info["directory"])

    if "cold" not in skip:
        step("cold start: patient-qa ask")
        result["cold_ask"] = cold_ask(default_index)
        step("cold start: patient-qa chat")
        result["cold_chat"] = cold_chat(default_index)

    step("warm ask vs embedding floor")
    gold = load_gold(DEFAULT_GOLD)
    result["warm"] = warm_ask(assistant, [(i.question, i.history) for i in gold.items])
    step("triage cost")
    result["triage"] = triage_cost(assistant, [(i.question, i.history) for i in gold.items])

    result["load"] = {"default_index": index_load(default_index)}
    result["memory"] = memory_probe(default_index)

    if "build" not in skip:
        articles = Path(medquad) / "articles"
        if articles.exists():
            step(f"index build throughput on {articles}")
            result["build"] = build_throughput(articles, settings, None)  # None: the build picks (ONNX if exported)
        else:
            result["build"] = {"error": f"no medquad-dev articles at {articles}"}

    if "scale" not in skip:
        sizes = [n for n in SCALE_SIZES if not (quick and n >= 1_000_000)]
        reference = np.asarray(assistant.index.sentence_matrix, dtype=np.float32)
        result["scale"] = vector_scale(sizes, reference, settings.threads)
        result["scale"]["recommendation"] = recommend_switch(result["scale"]["rows"], result["warm"]["embed_ms"]["p50"])
    if "fastpath" not in skip:
        from eval.bench_fastpath import fastpath_bench

        step("fast path: import floor, embedding floors, build batches, chat memory")
        result["fastpath"] = fastpath_bench(result, assistant, settings, [i.question for i in gold.items], skip)
    result["seconds"] = round(time.perf_counter() - started, 1)
    # Other work on the machine inflates every timing; the load average says how much to trust them.
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_bench(result, Path(out_dir))
    return result


def write_bench(result: dict, out_dir: Path) -> list[Path]:
    """bench.json and bench.md into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "bench.json", out_dir / "bench.md"]
    paths[0].write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(render_bench(result), encoding="utf-8")
    return paths


def _v(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def render_bench(result: dict) -> str:
    """The bench as Markdown tables."""
    m = result["machine"]
    out = ["# patient-qa bench", "",
           f"{result['created_at']}; {m['cpus']} CPUs, Python {m['python']}; query threads {result['threads']}; "
           f"default index {result['index']['documents']} documents / {result['index']['chunks']} chunks; "
           f"bench took {result.get('seconds')} s; load average at start {m.get('load_average_at_start')}, "
           f"at end {m.get('load_average_at_end')} (other processes inflate every timing).", "",
           "## Start-up and latency", "",
           "| Measure | Value |", "|---|---|"]
    ask = result.get("cold_ask", {})
    if "error" in ask:
        out.append(f"| Cold `patient-qa ask --json` | error: {ask['error']} |")
    elif ask:
        out.append(f"| Cold `patient-qa ask --json`: start to answer (median of {len(ask['runs'])}) | {ask['to_answer_s_median']:.2f} s |")
        out.append(f"| Cold `patient-qa ask --json`: start to exit | {ask['to_exit_s_median']:.2f} s |")
    chat = result.get("cold_chat")
    if chat is not None:
        out.append(f"| Cold `patient-qa chat`: start to page served | "
                   f"{_v(chat['seconds'], ' s', 2) if chat['seconds'] is not None else 'null (' + chat['reason'] + ')'} |")
    w = result["warm"]
    out += [
        f"| Warm `ask` p50 / p95 ({w['questions']} gold questions) | {w['ask_ms']['p50']:.1f} / {w['ask_ms']['p95']:.1f} ms |",
        f"| Embedding the question alone p50 / p95 (the floor) | {w['embed_ms']['p50']:.1f} / {w['embed_ms']['p95']:.1f} ms |",
        f"| Ratio ask / floor at p50 (target <= 2) | {w['ratio_p50']} |",
        *([f"| Safety triage added to an answer p50 / p95 (target p50 <= 2 ms) | "
           f"{result['triage']['triage_ms']['p50']:.2f} / {result['triage']['triage_ms']['p95']:.2f} ms |"]
          if "triage" in result else []),
        f"| Default index load (median) | {result['load']['default_index']['median_s'] * 1000:.1f} ms |",
    ]
    mem = result.get("memory", {})
    if "error" not in mem:
        out.append(f"| RSS: python + index loaded / + model and first answer | "
                   f"{mem.get('after_index_load_mb')} / {mem.get('after_model_and_first_answer_mb')} MB |")
    b = result.get("build")
    if b and "error" not in b:
        out += ["", f"## Index build on medquad-dev ({b['documents']} documents, fresh build, model already loaded)", "",
                "| Chunks | Sentences | Seconds | Chunks/s | Sentences/s | Size | Load (median) |",
                "|---|---|---|---|---|---|---|",
                f"| {b['chunks']} | {b['sentences']} | {b['seconds']:.1f} | {b['chunks_per_s']} | {b['sentences_per_s']} | "
                f"{b['index_mb']} MB | {b['load']['median_s'] * 1000:.1f} ms |"]
    elif b:
        out += ["", f"Index build: {b['error']}"]
    s = result.get("scale")
    if s:
        out += ["", f"## Vector search alone ({s['query_threads']} query thread; built with {s['build_threads']}; "
                f"synthetic unit vectors shaped like the {s['vectors_shaped_like']})", "",
                "| Vectors | Index | Build s | Index MB | RSS growth MB | p50 ms | p95 ms | recall@10 vs exact |",
                "|---|---|---|---|---|---|---|---|"]
        for row in s["rows"]:
            for kind in ("exact", "approximate"):
                e = row[kind]
                out.append(f"| {row['vectors']:,} | {e['index']} | {e['build_s']} | {e['index_mb']} | {e['rss_growth_mb']} | "
                           f"{e['latency_ms']['p50']:.2f} | {e['latency_ms']['p95']:.2f} | {e.get('recall_at_10', 1.0)} |")
        out += ["", "HNSW search breadth (efSearch) against recall@10, same indexes:", "",
                "| Vectors | efSearch | p50 ms | p95 ms | recall@10 |", "|---|---|---|---|---|"]
        for row in s["rows"]:
            for e in row["approximate"].get("ef_search_sweep", []):
                out.append(f"| {row['vectors']:,} | {e['ef_search']} | {e['p50']:.2f} | {e['p95']:.2f} | {e['recall_at_10']} |")
        r = s.get("recommendation", {})
        if r.get("approximate_from"):
            out += ["", f"Switch to the approximate index from about **{r['approximate_from']:,}** chunks: {r['reason']}; "
                    f"exact costs {r['exact_ms_per_100k']} ms per 100k vectors. "
                    f"knowledge.vectors.APPROXIMATE_FROM is {r['current_setting']:,}."]
            ef = r.get("ef_search_for_recall")
            out.append(f"At {r['recall_checked_at']:,} vectors the product's HNSW finds recall@10 "
                       f"{r['approximate_recall_at_10']} (bar {MIN_APPROXIMATE_RECALL}); "
                       + (f"efSearch {ef} reaches the bar." if ef else "no efSearch tried reaches the bar."))
    if "fastpath" in result:
        from eval.bench_fastpath import render_fastpath

        out += ["", render_fastpath(result["fastpath"], result)]
    return "\n".join(out) + "\n"


__all__ = ["run_bench", "render_bench", "write_bench"]
