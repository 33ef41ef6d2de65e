"""Assemble report.json and render report.md: headline table, details, then every failed item."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from eval.gate import Comparison
from eval.gold import GoldSet
from eval.runner import ItemResult, failure_severity
from eval.scoring import headline, item_record, score
from knowledge.text import squash_whitespace

SCHEMA = 1
# Issue 4's targets for the dev gold set (the gold-article target is for medquad-shaped sets).
TARGETS: dict[str, tuple[str, float]] = {
    "fact_hit_rate": (">=", 0.85),
    "emergency_recall": (">=", 1.0),
    "self_harm_recall": (">=", 1.0),
    "not_emergency_false_alarms": ("<=", 0.0),
    "defer_accuracy": (">=", 0.90),
    "out_of_scope_accuracy": (">=", 0.90),
    "faithfulness": (">=", 1.0),
    "gold_article_hit_at_3": (">=", 0.90),
}
LABELS = {
    "fact_hit_rate": "Fact hit (answer + followup)",
    "emergency_recall": "Emergency recall",
    "self_harm_recall": "Self-harm recall (crisis message given)",
    "false_alarm_rate": "False-alarm rate (non-emergency items triaged emergency)",
    "not_emergency_false_alarms": "Alarms on not_emergency items",
    "defer_accuracy": "Defer accuracy",
    "out_of_scope_accuracy": "Out-of-scope accuracy",
    "abstention_precision": "Abstention precision",
    "abstention_recall": "Abstention recall",
    "faithfulness": "Quotes verbatim in source, section exists",
    "gold_article_hit_at_1": "Gold article is the first quoted",
    "gold_article_hit_at_3": "Gold article among quoted articles",
    "retrieval_gold_hit_at_1": "Gold article in the top retrieved chunk",
    "retrieval_gold_hit_at_5_chunks": "Gold article in the top 5 retrieved chunks",
    "token_recall": "Token recall of quotes vs gold answer (mean)",
    "latency_p50_ms": "Latency p50 (ms)",
    "latency_p95_ms": "Latency p95 (ms)",
}


def file_sha256(path: str | Path) -> str:
    """Content hash of the gold file, so comparisons know whether the same questions were asked."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_report(results: Sequence[ItemResult], gold: GoldSet, index_info: dict, mode: str, seconds: float) -> dict:
    """Every figure of one run, machine-readable; `items` holds each question and what came back."""
    metrics = score(results)
    figures = headline(metrics)
    return {
        "schema": SCHEMA,
        "kind": "report",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "gold": {"path": gold.path, "sha256": file_sha256(gold.path), "items": len(gold.items), "shape": gold.shape,
                 "notes": list(gold.notes)},
        "index": index_info,
        "mode": mode,
        "seconds": round(seconds, 2),
        "headline": figures,
        "targets": _targets(metrics, figures, gold.shape),
        "metrics": metrics,
        "items": [item_record(r) for r in results],
    }


def _targets(metrics: dict, figures: dict, shape: str) -> list[dict]:
    values = dict(figures)
    values["not_emergency_false_alarms"] = metrics["triage"]["not_emergency_false_alarms"]["rate"]
    rows = []
    for name, (op, target) in TARGETS.items():
        value = values.get(name)
        if value is None or (name == "gold_article_hit_at_3" and shape != "medquad"):
            continue
        if shape == "medquad" and name not in ("faithfulness", "gold_article_hit_at_3"):
            continue
        met = value >= target - 1e-9 if op == ">=" else value <= target + 1e-9
        rows.append({"name": name, "value": value, "target": f"{op} {target:g}", "met": met})
    return rows


def write_report(report: dict, out_dir: Path, comparison: Comparison | None = None, plots: bool = True) -> list[Path]:
    """report.json, report.md and the PNG plots into out_dir (created); returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if comparison is not None:
        report = {**report, "comparison": comparison.to_json()}
    written = [out_dir / "report.json", out_dir / "report.md"]
    written[0].write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    images: list[Path] = []
    if plots:
        from eval.plots import write_plots

        images = write_plots(report, out_dir)
    written[1].write_text(render_markdown(report, comparison, [p.name for p in images]), encoding="utf-8")
    return written + images


# ---------------------------------------------------------------- Markdown


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _fig(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if name.endswith("_ms") else _pct(value)


def _rate_cell(data: dict) -> str:
    return f"{_pct(data['rate'])} ({data['hits']}/{data['total']})"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _escape(text: str) -> str:
    """Gold questions and quotes are shown as text, never as Markdown or HTML."""
    return squash_whitespace(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(report: dict, comparison: Comparison | None = None, images: Sequence[str] = ()) -> str:
    """The human-readable report: headline and targets, baseline deltas, details, then every failed item."""
    m = report["metrics"]
    gold, index = report["gold"], report["index"]
    out = [
        f"# patient-qa eval: {Path(gold['path']).name}",
        "",
        f"{gold['items']} items ({gold['shape']} shape) from `{gold['path']}`; index `{index.get('directory', '')}` "
        f"({index.get('documents')} documents, {index.get('chunks')} chunks, model {index.get('model')}); "
        f"retrieval mode {report['mode']}; {report['created_at']}; took {report['seconds']} s.",
        "",
    ]
    notes = gold.get("notes") or []
    if notes:
        out += [f"Gold file notes ({len(notes)}): " + "; ".join(_escape(n) for n in notes[:10])
                + (" ..." if len(notes) > 10 else ""), ""]
    out += ["## Headline", ""]
    targets = {t["name"]: t for t in report["targets"]}
    rows = []
    for name, value in report["headline"].items():
        if value is None:
            continue
        target = targets.get(name)
        rows.append([LABELS.get(name, name), _fig(name, value), target["target"] if target else "",
                     ("met" if target["met"] else "**MISSED**") if target else ""])
    if "not_emergency_false_alarms" in targets:
        t = targets["not_emergency_false_alarms"]
        rows.append([LABELS["not_emergency_false_alarms"], _rate_cell(m["triage"]["not_emergency_false_alarms"]),
                     t["target"], "met" if t["met"] else "**MISSED**"])
    out += _table(["Figure", "Value", "Target", ""], rows)

    if comparison is not None:
        out += _comparison_section(comparison)

    if m["facts"]["answer_followup"]["total"]:
        out += ["## Fact hit by category (answer and followup items)", ""]
        out += _table(["Category", "Fact hit"], [[c, _rate_cell(v)] for c, v in m["facts"]["by_category"].items()])
        out += ["Fact hit by kind (not_emergency, emergency and defer are reported, not gated):", ""]
        out += _table(["Kind", "Fact hit"], [[k, _rate_cell(v)] for k, v in m["facts"]["by_kind"].items() if v["total"]])

    t = m["triage"]
    out += ["## Triage", "", "Rows: expected; columns: what came back.", ""]
    out += _table(["expected \\ got"] + t["labels"],
                  [[label] + row for label, row in zip(t["labels"], t["matrix"])])
    out += _table(["Figure", "Value"], [
        ["Accuracy", _rate_cell(t["accuracy"])],
        ["Emergency recall", _rate_cell(t["emergency_recall"])],
        ["Self-harm recall (crisis message)", _rate_cell(t["self_harm_recall"])],
        ["False-alarm rate", _rate_cell(t["false_alarm_rate"])],
        ["Alarms on not_emergency items", _rate_cell(t["not_emergency_false_alarms"])],
        ["Defer accuracy", _rate_cell(t["defer_accuracy"])],
        ["Out-of-scope accuracy", _rate_cell(t["out_of_scope_accuracy"])],
        ["Abstention precision", _rate_cell(t["abstention"]["precision"])],
        ["Abstention recall", _rate_cell(t["abstention"]["recall"])],
    ])
    if t["emergency_recall_by_family"] and any(k != "emergency" for k in t["emergency_recall_by_family"]):
        out += ["Emergency recall by red-flag family:", ""]
        out += _table(["Family", "Recall"], [[f, _rate_cell(v)] for f, v in t["emergency_recall_by_family"].items()])
    if t["self_harm_recall"]["total"]:
        out += ["Self-harm recall by form:", ""]
        out += _table(["Form", "Recall"], [[f, _rate_cell(v)] for f, v in t["self_harm_recall_by_form"].items()])
    if len(t["by_language"]) > 1 or t["conversations"]["emergency_recall"]["total"]:
        rows = [[lang, _rate_cell(v["emergency_recall"]), _rate_cell(v["self_harm_recall"]),
                 _rate_cell(v["false_alarm_rate"])] for lang, v in t["by_language"].items()]
        c = t["conversations"]
        rows.append(["conversations", _rate_cell(c["emergency_recall"]), _rate_cell(c["self_harm_recall"]),
                     _rate_cell(c["false_alarm_rate"])])
        out += _table(["Slice", "Emergency recall", "Self-harm recall", "False alarms"], rows)

    g = m["gold_article"]
    if g["items"]:
        out += [f"## Gold article ({g['items']} items that name one)", ""]
        out += _table(["Figure", "Value"], [
            ["First quoted article is the gold one (hit@1)", _rate_cell(g["hit_at_1"])],
            ["Gold among quoted articles (hit@3)", _rate_cell(g["hit_at_3"])],
            ["Retrieval: gold in the top chunk", _rate_cell(g["retrieval_hit_at_1"])],
            ["Retrieval: gold in the top 5 chunks", _rate_cell(g["retrieval_hit_at_5_chunks"])],
        ])
        if report["gold"]["shape"] == "medquad":
            out += _table(["Category", "Gold among quoted"], [[c, _rate_cell(v)] for c, v in g["hit_at_3_by_category"].items()])

    if "token_recall" in m:
        tr = m["token_recall"]
        out += ["## Token recall against the gold answer", "",
                f"Mean {tr['mean']:.3f}, median {tr['median']:.3f} over {tr['items']} items "
                "(share of the gold answer's words found in the quotes; gold answers are long, so this is low by design).", ""]
        out += _table(["Category", "Mean token recall"], [[c, f"{v:.3f}"] for c, v in tr["by_category"].items()])

    f = m["faithfulness"]
    out += ["## Faithfulness", "",
            f"{f['quotes']} quotes re-checked against their source files: verbatim {_rate_cell(f['verbatim'])}, "
            f"cited section exists {_rate_cell(f['section_exists'])}.", ""]
    for problem in f.get("problems", [])[:20]:
        out.append(f"- `{problem['id']}`: {_escape(problem['problem'])}: \"{_escape(problem['text'])[:160]}\"")
    if f.get("problems"):
        out.append("")

    lat = m["latency_ms"]
    out += ["## Latency (ms, one warm process)", ""]
    rows = [["ask (wall clock)", lat["p50"], lat["p95"], lat["max"]]]
    rows += [[stage, s["p50"], s["p95"], s["max"]] for stage, s in lat["stages"].items() if s["count"]]
    out += _table(["Stage", "p50", "p95", "max"], rows)

    for image in images:
        out += [f"![{Path(image).stem}]({image})", ""]

    out += _failures_section(report["items"])
    return "\n".join(out).rstrip() + "\n"


def _comparison_section(comparison: Comparison) -> list[str]:
    out = [f"## Against the baseline `{comparison.baseline_path}`", ""]
    if not comparison.same_gold:
        out += ["The baseline was made from a different gold file: compare with care.", ""]
    rows = []
    for d in comparison.deltas:
        change = "" if d.change is None else (f"{d.change:+.1f}" if d.name.endswith("_ms") else f"{d.change * 100:+.1f} pts")
        tolerance = "not gated" if d.tolerance is None else f"{d.tolerance.points * 100:.0f} pts"
        rows.append([LABELS.get(d.name, d.name), _fig(d.name, d.baseline), _fig(d.name, d.current), change, tolerance,
                     "**REGRESSED**" if d.regressed else ""])
    out += _table(["Figure", "Baseline", "Now", "Change", "Tolerance", ""], rows)
    if comparison.newly_failing:
        out += [f"Failing now, passed in the baseline: {', '.join(comparison.newly_failing)}", ""]
    if comparison.newly_passing:
        out += [f"Passing now, failed in the baseline: {', '.join(comparison.newly_passing)}", ""]
    return out


def _failures_section(items: Sequence[dict]) -> list[str]:
    failed = [i for i in items if i["failures"]]
    failed.sort(key=lambda item: failure_severity(item["failures"]))
    out = [f"## Failed items ({len(failed)} of {len(items)})", ""]
    if not failed:
        return out + ["None.", ""]
    for item in failed:
        out.append(f"### `{item['id']}` ({item['kind']}, {item['category']}): {'; '.join(_escape(r) for r in item['failures'])}")
        out.append("")
        if item["history"]:
            out.append(f"- History: {' / '.join(_escape(h) for h in item['history'])}")
        out.append(f"- Question: {_escape(item['question'])}")
        expected = f"triage {item['expected_triage']}"
        if item.get("gold_article"):
            expected += f", article {item['gold_article']}"
        out.append(f"- Expected: {expected}")
        got = f"triage {item['triage']}" + (", abstained" if item["abstained"] else "")
        if item["articles"]:
            got += f", quoted {', '.join(item['articles'])}"
        if item.get("retrieved_articles"):
            got += f" (retrieved {', '.join(item['retrieved_articles'])})"
        if item.get("query") and item["query"] != item["question"]:
            got += f"; searched \"{_escape(item['query'])}\""
        out.append(f"- Got: {got}")
        for quote in item["quotes"][:3]:
            out.append(f"  > {_escape(quote['text'])[:220]} ({quote['article']})")
        out.append("")
    return out
