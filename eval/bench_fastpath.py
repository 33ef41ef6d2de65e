"""The fast path in numbers: cold `ask` beside a fresh `import sentence_transformers`, warm `ask` beside both
embedding floors, ONNX against sentence-transformers for build batches, and the chat's memory after 20 users.

`patient-qa bench` calls `fastpath_bench` and prints `render_fastpath`; each part records an error instead of
failing the bench.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LOAD_USERS = 20
LOAD_QUESTIONS = 3  # per user: enough for every session and every worker thread to be created
LOAD_QUESTION_TEXTS = ("What is CRS?", "How long do I stay near the hospital?", "Can I drive after CAR-T?")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def import_floor(runs: int = 3) -> dict:
    """Seconds of a fresh `python -c 'import sentence_transformers'`: what the old query path paid before answering."""
    from eval.bench_processes import child_env

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sentence_transformers"], check=True, env=child_env(),
                       capture_output=True, timeout=300)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "runs": [round(t, 3) for t in times]}


def embedding_floors(assistant, questions: list[str]) -> dict:
    """p50/p95 ms of embedding one question (uncached) with sentence-transformers and with the index's ONNX export,
    and of the whole `ask`, taken in turn for each question so that a changing load weighs on all three alike."""
    from eval.metrics import latency_summary, timed_in_turn
    from knowledge.embedding import onnx_for_index, shared_embedder

    st = shared_embedder(assistant.index.model, assistant.settings.retrieval.threads)
    st.encode(["warm up"])
    encoders = {"sentence_transformers_ms": st.encode}
    floors: dict = {}
    try:
        onnx = onnx_for_index(assistant.index.query_encoder_file(), assistant.index.manifest, assistant.settings.retrieval.threads)
        onnx.encode(["warm up"])
        encoders["onnx_ms"] = onnx.encode
    except Exception as err:  # noqa: BLE001 - an index without an export still gets the other figures
        floors["onnx_ms"] = {"error": str(err)}
    assistant.ask("What is CAR-T?")
    steps = {label: (lambda question, encode=encode: encode([question])) for label, encode in encoders.items()}
    times = timed_in_turn(questions, {**steps, "ask_ms": lambda question: assistant.ask(question)})
    floors.update({label: latency_summary(ms) for label, ms in times.items() if ms})
    return floors


def batch_throughput(articles: Path, model: str, batch_size: int = 64) -> dict:
    """Texts per second for the build's two kinds of text, sentence-transformers against length-sorted ONNX."""
    from knowledge.build import collect_files
    from knowledge.chunking import chunk_document, embedding_prefix
    from knowledge.embedding import build_embedders, shared_embedder
    from knowledge.loaders import load_document

    st = shared_embedder(model, os.cpu_count() or 1)
    onnx, _ = build_embedders(model, "onnx", 1)
    chunks, sentences = [], []
    for path in collect_files([articles])[0]:
        doc = load_document(path)
        for chunk in chunk_document(doc, doc.content_hash, onnx.count_tokens, 160, 256, 1):
            chunks.append(embedding_prefix(doc.title, chunk.heading_path) + chunk.text)
            sentences.extend(chunk.sentence_texts())
    sentences = list(dict.fromkeys(sentences))
    out: dict = {"chunks": len(chunks), "sentences": len(sentences), "threads": os.cpu_count()}
    for name, texts in (("chunks", chunks), ("sentences", sentences)):
        for label, embedder in (("sentence_transformers", st), ("onnx", onnx)):
            embedder.encode(texts[:8], batch_size=batch_size)
            started = time.perf_counter()
            embedder.encode(texts, batch_size=batch_size)
            out[f"{name}_per_s_{label}"] = round(len(texts) / (time.perf_counter() - started), 1)
    return out


def default_builds(articles: Path, settings) -> dict:
    """Builds of the default articles: what a new user's first build pays (a fresh process with an empty user cache,
    so the ONNX export and its check are in it, and the shipped vectors); every text through the model, the default
    way (ONNX) and all sentence-transformers; a rebuild from a warm vector cache; and the export alone."""
    import knowledge.embedding_cache as vector_cache
    from eval.bench_processes import child_env
    from knowledge.build import build_index
    from knowledge.embedding import resolve_model_path, shared_embedder
    from knowledge.onnx_embedder import export_verified

    out: dict = {}
    default_file = vector_cache.default_cache_file
    with tempfile.TemporaryDirectory(prefix="patient-qa-fastpath-") as tmp:
        # A new machine: nothing in the user cache (no export, no vectors), as `make chat` meets it the first time.
        env = {**child_env(), "XDG_CACHE_HOME": str(Path(tmp) / "new-user-cache")}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ui.cli", "index", "build", str(articles), "--index",
                        str(Path(tmp) / "new_user")], check=True, env=env, capture_output=True, timeout=1800)
        out["new_user_s"] = round(time.perf_counter() - started, 2)
        # The bench's own vector cache, empty at first, and no shipped vectors: the ONNX build is every text through
        # the model, and the rebuild into a new folder after it is what an `index clean` or the eval's per-folder
        # indexes pay. The user's cache is left alone.
        vector_cache.default_cache_file = lambda: Path(tmp) / "vectors" / vector_cache.CACHE_FILE  # type: ignore[assignment]
        try:
            for label, backend in (("onnx", "auto"), ("sentence_transformers", "torch"), ("cached_rebuild", "auto")):
                before = os.times()
                report = build_index([articles], settings.updated(index_dir=Path(tmp) / label, shipped_vectors=False,
                                                                  embedding_backend=backend), progress=False)
                out[f"{label}_s"], out[f"{label}_cpu_s"] = report.seconds, _cpu_since(before)
                out["chunks"], out["sentences"] = report.chunks, report.sentences
        finally:
            vector_cache.default_cache_file = default_file  # type: ignore[assignment]
        st = shared_embedder(settings.index.model, settings.retrieval.threads).model
        started = time.perf_counter()
        record = export_verified(Path(resolve_model_path(settings.index.model)), Path(tmp), settings.index.model,
                                 load_st_model=lambda: st)
        out["export_and_check_s"] = round(time.perf_counter() - started, 2)
        out["export_max_abs_diff"] = record.max_abs_diff
    return out


def _cpu_since(before: os.times_result) -> float:
    """User + system CPU seconds of this process since `before` (a loaded machine stretches wall time, not this)."""
    now = os.times()
    return round((now.user - before.user) + (now.system - before.system), 1)


def chat_memory(index_dir: Path, users: int = LOAD_USERS, questions: int = LOAD_QUESTIONS,
                timeout_s: float = 180.0) -> dict:
    """VmRSS (and peak VmHWM) of a real `patient-qa chat` after `users` people each asked `questions` questions."""
    from eval.bench_processes import child_env, cli_command, free_port, http_status, stop

    port = free_port()
    env = child_env()
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", PATIENT_QA_FEEDBACK="false")
    args = cli_command() + ["chat", "--index", str(index_dir), "--port", str(port)]
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            started = time.perf_counter()
            while http_status(url) != 200:
                if proc.poll() is not None or time.perf_counter() - started > timeout_s:
                    log.seek(0)
                    return {"error": f"the chat did not serve: {log.read().decode(errors='replace')[-300:]}"}
                time.sleep(0.25)
            idle = _rss(proc.pid)
            errors: list[str] = []
            threads = [threading.Thread(target=_one_user, args=(url, u, questions, errors)) for u in range(users)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            after = _rss(proc.pid)
            return {"users": users, "questions_each": questions, "idle_mb": idle["rss_mb"],
                    "after_load_mb": after["rss_mb"], "peak_mb": after["hwm_mb"], "errors": errors[:5],
                    "failed": len(errors)}
        finally:
            stop(proc)


def _one_user(url: str, user: int, questions: int, errors: list[str]) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
        history: list = []
        for number in range(questions):
            result = client.predict(LOAD_QUESTION_TEXTS[number % len(LOAD_QUESTION_TEXTS)], history, api_name="/chat")
            history = result[1]
    except Exception as err:  # noqa: BLE001 - a load run counts failures instead of stopping
        errors.append(f"user {user}: {type(err).__name__}: {str(err)[:120]}")


def _rss(pid: int) -> dict:
    """Resident and peak resident memory of a process, MB (Linux /proc)."""
    text = Path(f"/proc/{pid}/status").read_text()
    value = {key: int(re.search(rf"^{key}:\s+(\d+)", text, re.MULTILINE).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}
    return {"rss_mb": round(value["VmRSS"], 1), "hwm_mb": round(value["VmHWM"], 1)}


def fastpath_bench(result: dict, assistant, settings, questions: list[str], skip=()) -> dict:
    """The fast-path figures, reading the cold and warm `ask` numbers `run_bench` already took."""
    out: dict = {"load_average_at_start": _load()}
    skip = set(skip) | ({"batches", "builds"} if "build" in skip else set()) | (
        {"import_sentence_transformers"} if "cold" in skip else set())
    out["query_embedder"] = getattr(assistant.embedder, "backend", "?")
    steps = (
        ("import_sentence_transformers", lambda: import_floor()),
        ("floors", lambda: embedding_floors(assistant, questions)),
        ("batches", lambda: batch_throughput(Path(settings.index.articles), settings.index.model)),
        ("builds", lambda: default_builds(Path(settings.index.articles), settings)),
        ("chat", lambda: chat_memory(Path(result["index"]["directory"]))),
    )
    for name, measure in steps:
        if name in skip:
            continue
        try:
            out[name] = measure()
        except Exception as err:  # noqa: BLE001 - one part failing must not lose the others
            out[name] = {"error": f"{type(err).__name__}: {str(err)[:200]}"}
    cold = result.get("cold_ask", {}).get("to_answer_s_median")
    floor = out.get("import_sentence_transformers", {}).get("median_s")
    out["cold_ratio"] = round(cold / floor, 2) if cold and floor else None
    # The ask timed in turn with the floors when there is one; else the bench's own warm run (taken earlier).
    warm = out.get("floors", {}).get("ask_ms") or result.get("warm", {}).get("ask_ms", {})
    for label in ("sentence_transformers_ms", "onnx_ms"):
        p50 = out.get("floors", {}).get(label, {}).get("p50")
        out[f"warm_p50_over_{label[:-3]}"] = round(warm["p50"] / p50, 2) if p50 and warm.get("p50") else None
    out["load_average_at_end"] = _load()
    return out


def render_fastpath(fast: dict, result: dict) -> str:
    """The fast-path section of bench.md."""
    def get(*keys, default="n/a"):
        value = fast
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return default if value is None else value

    rows = [
        ("query embedder", get("query_embedder")),
        ("cold `ask` to answer (s)", result.get("cold_ask", {}).get("to_answer_s_median", "n/a")),
        ("fresh `import sentence_transformers` (s)", get("import_sentence_transformers", "median_s")),
        ("cold / import (target <= 0.3)", get("cold_ratio")),
        ("warm `ask` p50 / p95, taken in turn with the floors (ms)",
         f"{get('floors', 'ask_ms', 'p50')} / {get('floors', 'ask_ms', 'p95')}"),
        ("floor: sentence-transformers p50 / p95 (ms)",
         f"{get('floors', 'sentence_transformers_ms', 'p50')} / {get('floors', 'sentence_transformers_ms', 'p95')}"),
        ("floor: ONNX p50 / p95 (ms)", f"{get('floors', 'onnx_ms', 'p50')} / {get('floors', 'onnx_ms', 'p95')}"),
        ("warm p50 / sentence-transformers floor (target <= 1.0)", get("warm_p50_over_sentence_transformers")),
        ("warm p50 / ONNX floor", get("warm_p50_over_onnx")),
        ("chunks/s: sentence-transformers vs ONNX",
         f"{get('batches', 'chunks_per_s_sentence_transformers')} vs {get('batches', 'chunks_per_s_onnx')}"),
        ("sentences/s: sentence-transformers vs ONNX",
         f"{get('batches', 'sentences_per_s_sentence_transformers')} vs {get('batches', 'sentences_per_s_onnx')}"),
        ("new user's first build: fresh process, empty user cache, shipped vectors (s, target <= 15)",
         get("builds", "new_user_s")),
        ("default index build, every text through ONNX (s / CPU s)",
         f"{get('builds', 'onnx_s')} / {get('builds', 'onnx_cpu_s')}"),
        ("default index build, sentence-transformers (s / CPU s)",
         f"{get('builds', 'sentence_transformers_s')} / {get('builds', 'sentence_transformers_cpu_s')}"),
        ("rebuild with a warm vector cache (s / CPU s)",
         f"{get('builds', 'cached_rebuild_s')} / {get('builds', 'cached_rebuild_cpu_s')}"),
        ("one-time ONNX export + check (s)", get("builds", "export_and_check_s")),
        (f"chat RSS after {LOAD_USERS} users (MB, target <= 400)", get("chat", "after_load_mb")),
        ("chat peak RSS (MB)", get("chat", "peak_mb")),
    ]
    lines = ["## Fast path", "",
             f"Load average {fast.get('load_average_at_start')} at start, {fast.get('load_average_at_end')} at end.",
             "", "| Measure | Value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    errors = {k: v["error"] for k, v in fast.items() if isinstance(v, dict) and "error" in v}
    lines += [f"\n{k}: {v}" for k, v in errors.items()]
    return "\n".join(lines) + "\n"
