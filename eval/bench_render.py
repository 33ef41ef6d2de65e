"""The bench as files: bench.json and the Markdown tables of bench.md."""

from __future__ import annotations

import json
from pathlib import Path

from eval.bench_scale import MIN_APPROXIMATE_RECALL


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
        *([f"| Default index load (median) | {result['load']['default_index']['median_s'] * 1000:.1f} ms |"]
          if "load" in result else []),
    ]
    mem = result.get("memory", {})
    if mem and "error" not in mem:
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
                    f"the approximate_from setting (PATIENT_QA_APPROXIMATE_FROM) is {r['current_setting']:,}."]
            ef = r.get("ef_search_for_recall")
            out.append(f"At {r['recall_checked_at']:,} vectors the product's HNSW finds recall@10 "
                       f"{r['approximate_recall_at_10']} (bar {MIN_APPROXIMATE_RECALL}); "
                       + (f"efSearch {ef} reaches the bar." if ef else "no efSearch tried reaches the bar."))
    if "postgres" in result:
        from eval.bench_store import render_store

        out += ["", render_store(result["postgres"])]
    if "ray" in result:
        from eval.bench_ray import render_ray

        out += ["", render_ray(result["ray"])]
    if "fastpath" in result:
        from eval.bench_fastpath import render_fastpath

        out += ["", render_fastpath(result["fastpath"], result)]
    return "\n".join(out) + "\n"
