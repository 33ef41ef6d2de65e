"""`patient-qa eval` and `patient-qa bench`: argument parsing only; the work is imported when a command runs."""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

from eval.gold import DEFAULT_GOLD  # stdlib-only module: keeps `patient-qa --help` fast
from knowledge.errors import fail
from knowledge.settings import RETRIEVAL_MODES


def add_eval_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `eval` (with its `retrieval` sub-mode) and `bench` to the `patient-qa` sub-commands."""
    ev = sub.add_parser(
        "eval", help="score answers on a gold set (report.json, report.md, plots; optional regression gate)",
        description="Ask every gold question through the Assistant and score facts, faithfulness, gold articles, "
        "triage and latency. 'patient-qa eval retrieval --beir DIR' scores retrieval on a BEIR folder instead.",
    )
    ev.add_argument("--gold", default=str(DEFAULT_GOLD), help="gold JSONL (default: eval/gold/default.jsonl); "
                    "dev shape {id, kind, question, history?, facts, category, gold_article?} or medquad shape "
                    "{id, question, gold_article, gold_answer}")
    where = ev.add_mutually_exclusive_group()
    where.add_argument("--index", help="use this index as it is")
    where.add_argument("--articles", help="index this folder into a cache folder first (default: the bundled articles)")
    where.add_argument("--store", help="use this library as it is: an index folder or a postgresql:// URL "
                       "(default: PATIENT_QA_STORE, else --articles)")
    ev.add_argument("--mode", choices=RETRIEVAL_MODES, default="hybrid", help="retrieval mode the Assistant uses")
    ev.add_argument("--out", default="eval/report", help="folder for report.json, report.md and PNGs (default: eval/report)")
    ev.add_argument("--baseline", help="a saved report.json or baseline.json to compare with")
    ev.add_argument("--fail-on-regression", action="store_true",
                    help="exit 1 when a headline figure drops beyond its tolerance (needs --baseline)")
    ev.add_argument("--write-baseline", metavar="FILE", help="also save a commit-ready baseline (e.g. eval/baseline.json)")
    ev.add_argument("--json", action="store_true", help="print the headline figures as JSON")
    ev.set_defaults(func=cmd_eval)

    ev_sub = ev.add_subparsers(dest="eval_command", metavar="{retrieval,leaflets}")
    retrieval = ev_sub.add_parser("retrieval", help="nDCG@10, MRR@10 and recall@k on a BEIR-layout folder",
                                  description="Index a BEIR corpus (each entry a document, title kept) in a "
                                  "temporary folder and score BM25, dense and hybrid retrieval side by side.")
    retrieval.add_argument("--beir", required=True, help="folder with corpus.jsonl, queries.jsonl, qrels.tsv or qrels/test.tsv")
    retrieval.add_argument("--mode", dest="modes", choices=RETRIEVAL_MODES, action="append",
                           help="retrieval mode (repeatable; default: bm25, dense and hybrid)")
    retrieval.add_argument("--run-out", metavar="FILE", help="write a TREC run file (FILE.MODE.ext per mode when several)")
    retrieval.add_argument("--out", help="also write retrieval.json and retrieval.md into this folder")
    retrieval.add_argument("--json", action="store_true", help="print the results as JSON")
    retrieval.set_defaults(func=cmd_eval_retrieval)
    from eval.leaflets import add_leaflets_parser  # stdlib-only at import, like eval.gold

    add_leaflets_parser(ev_sub)

    bench = sub.add_parser("bench", help="cold start, warm latency vs the embedding floor, index build/load, vector search scale")
    bench.add_argument("--out", default="eval/bench", help="folder for bench.json and bench.md (default: eval/bench)")
    bench.add_argument("--quick", action="store_true", help="skip the 1M-vector scale run")
    bench.add_argument("--index", help="index for the cold-start and warm measurements (default: a cached build of the bundled articles)")
    bench.add_argument("--store", help="library for the warm measurements: an index folder or a postgresql:// URL "
                       "(default: PATIENT_QA_STORE, else --index)")
    bench.add_argument("--medquad", help="medquad-dev folder for the build throughput (default: ../shared/datasets/medquad-dev)")
    bench.add_argument("--scale", type=int, action="append", default=[], metavar="CHUNKS",
                       help="with a postgresql:// --store: chunk counts for the pgvector HNSW measurement (default "
                       "100000; repeatable; 1000000 needs about 2 GB and a long index build, not for CI)")
    bench.add_argument("--skip", action="append", choices=("cold", "build", "scale", "fastpath", "chat", "postgres"),
                       default=[],
                       help="leave out a section (repeatable)")
    bench.add_argument("--ray", action="store_true",
                       help="also measure ingestion throughput with 1 and 2 local Ray workers against one process "
                       "(needs pip install '.[scale]')")
    bench.set_defaults(func=cmd_bench)


def add_triage_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `triage train` (rebuild qa/triage_model.*) to the `patient-qa` sub-commands."""
    triage = sub.add_parser("triage", help="train the safety triage model from the blind-written corpus")
    triage_sub = triage.add_subparsers(dest="triage_command", required=True)
    train = triage_sub.add_parser(
        "train", help="fit the triage heads on eval/gold/triage/dev.jsonl (+ the dev gold set) and save them",
        description="Fits one logistic regression per head (emergency, self_harm, defer, out_of_scope) over the "
        "message's embedding, character n-grams and cue features; thresholds are chosen on leave-one-writer-out "
        "predictions. The sealed split is never read. Needs scikit-learn (pip install 'patient-qa[train]').",
    )
    train.add_argument("--corpus", help="folder with dev.jsonl (default: eval/gold/triage)")
    train.add_argument("--out", help="folder for triage_model.npz and triage_model.json (default: the qa package)")
    train.add_argument("--held-out", metavar="FILE.jsonl", help="also write the held-out probabilities here")
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    train.set_defaults(func=cmd_triage_train)
    compare = triage_sub.add_parser(
        "compare", help="the shipped triage model against a retrained one, on the same held-out writers",
        description="Decides every message of eval/gold/triage/dev.jsonl (+ the dev gold set) with the full triage "
        "twice, each time by a model that never saw its writer: the shipped model (refitted without each writer it "
        "was trained on) and the current recipe fitted on the whole corpus. Reports recall per safety label, alarms "
        "on calm messages and everyday questions sent to the care team, for all writers and for those the shipped "
        "model never saw. Slow (two leave-one-writer-out runs); the sealed split is never read.",
    )
    compare.add_argument("--corpus", help="folder with dev.jsonl (default: eval/gold/triage)")
    compare.add_argument("--model", help="the triage model to compare against (.npz with its .json beside it; "
                         "default: the shipped one)")
    compare.add_argument("--also", metavar="GOLD.jsonl", help="also decide these messages (never trained on, e.g. "
                         "eval/gold/uncovered-dev.jsonl) with the shipped model and the candidate fitted on everything")
    compare.add_argument("--json", action="store_true", help="print the figures as JSON")
    compare.set_defaults(func=cmd_triage_compare)


def cmd_triage_train(args: argparse.Namespace) -> int:
    """Train and save the triage model; 2 with a message when the corpus or scikit-learn is missing."""
    from eval.gold import TRIAGE_GOLD, GoldFormatError
    from eval.triage_train import TrainingError, train
    from knowledge.embedding import ModelLoadError, build_embedders
    from knowledge.settings import DEFAULT_MODEL
    from qa.triage_model import DEFAULT_META, DEFAULT_WEIGHTS

    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    @lru_cache(maxsize=1)
    def embedder():
        """What a build embeds with: the verified ONNX export (the same vectors, no torch import once it is cached),
        else sentence-transformers with a notice; made on first use, so a bad corpus is reported first."""
        return build_embedders(DEFAULT_MODEL, "auto", 1)[0]

    try:
        summary = train(
            lambda texts: embedder().encode(list(texts)), DEFAULT_MODEL,
            out_weights=out / DEFAULT_WEIGHTS.name if out else DEFAULT_WEIGHTS,
            out_meta=out / DEFAULT_META.name if out else DEFAULT_META,
            corpus_dir=Path(args.corpus) if args.corpus else TRIAGE_GOLD,
            held_out=Path(args.held_out) if args.held_out else None,
            progress=lambda message: print(message, file=sys.stderr),
        )
    except (TrainingError, GoldFormatError, ModelLoadError) as err:
        return fail(str(err), 2)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        t = summary["thresholds"]
        print(f"trained on {summary['trained_on']['messages']} messages; thresholds: "
              + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))
    return 0


def cmd_triage_compare(args: argparse.Namespace) -> int:
    """Print the shipped-vs-retrained figures; 2 with a message when the corpus, model or scikit-learn is missing."""
    from eval.gold import TRIAGE_GOLD, GoldFormatError, load_gold
    from eval.triage_compare import compare, render
    from eval.triage_train import TrainingError, examples_from, tuning_examples
    from knowledge.embedding import ModelLoadError, build_embedders
    from knowledge.glossary import load_glossary
    from knowledge.settings import DEFAULT_GLOSSARY, DEFAULT_MODEL
    from qa.triage_model import DEFAULT_WEIGHTS, TriageModelError, load_model

    try:
        weights = Path(args.model) if args.model else DEFAULT_WEIGHTS
        shipped = load_model(weights, weights.with_suffix(".json"))
        examples = tuning_examples(Path(args.corpus) if args.corpus else TRIAGE_GOLD)
        embedder = build_embedders(DEFAULT_MODEL, "auto", 1)[0]
        external = examples_from(load_gold(Path(args.also)).items) if args.also else []
        result = compare(examples, lambda texts: embedder.encode(list(texts)), shipped,
                         load_glossary(DEFAULT_GLOSSARY) if DEFAULT_GLOSSARY.exists() else None,
                         progress=lambda message: print(message, file=sys.stderr), external=external)
    except (TrainingError, GoldFormatError, ModelLoadError, TriageModelError) as err:
        return fail(str(err), 2)
    if args.json:
        print(json.dumps({name: {side: {label: list(v) for label, v in f.rows()} for side, f in sides.items()}
                          for name, sides in result.table().items()}, indent=2))
    else:
        print(render(result))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the gold set, write the report, compare with the baseline; 1 on a regression with --fail-on-regression."""
    from eval.gate import BaselineError
    from eval.gold import GoldFormatError
    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_
    from qa.triage_model import TriageModelError

    if args.fail_on_regression and not args.baseline:
        return fail("--fail-on-regression needs --baseline FILE (for example eval/baseline.json)", 2)
    from eval.evaluate import run_eval

    try:
        outcome = run_eval(
            Path(args.gold), Path(args.out),
            index_dir=Path(args.index) if args.index else None,
            articles=Path(args.articles) if args.articles else None,
            mode=args.mode,
            store=args.store,
            baseline_path=Path(args.baseline) if args.baseline else None,
            write_baseline=Path(args.write_baseline) if args.write_baseline else None,
        )
    except (GoldFormatError, BaselineError, IndexError_, ModelLoadError, FileNotFoundError, TriageModelError) as err:
        return fail(str(err), 1)
    report = outcome.report
    if args.json:
        print(json.dumps({"headline": report["headline"], "targets": report["targets"],
                          "regressions": outcome.comparison.summary_lines() if outcome.comparison else []}))
    else:
        _print_summary(report, outcome)
    if outcome.comparison is not None and outcome.comparison.regressions and args.fail_on_regression:
        print("patient-qa: regression against " + str(args.baseline) + ":", file=sys.stderr)
        for line in outcome.comparison.summary_lines():
            print(f"  - {line}", file=sys.stderr)
        return 1
    return 0


def _print_summary(report: dict, outcome) -> None:
    """Headline figures with their targets, the failure count and the baseline verdict, for the terminal."""
    from eval.report import LABELS

    gold = report["gold"]
    print(f"Evaluated {gold['items']} items from {gold['path']} in {report['seconds']} s (mode {report['mode']})")
    if gold.get("notes"):
        print(f"  note: {len(gold['notes'])} repeated id(s) in the gold file were scored under new names (see report.md)")
    targets = {t["name"]: t for t in report["targets"]}
    for name, value in report["headline"].items():
        if value is None:
            continue
        shown = f"{value:.1f} ms" if name.endswith("_ms") else f"{value * 100:.1f}%"
        mark = ""
        if name in targets:
            mark = f"  (target {targets[name]['target']}: {'met' if targets[name]['met'] else 'MISSED'})"
        print(f"  {LABELS.get(name, name):<58} {shown:>9}{mark}")
    failed = sum(1 for item in report["items"] if item["failures"])
    print(f"  failed items: {failed} of {len(report['items'])} (listed in report.md)")
    if outcome.comparison is not None:
        comparison = outcome.comparison
        verdict = "REGRESSED" if comparison.regressions else "no regression beyond the tolerances"
        print(f"Against {comparison.baseline_path}: {verdict}")
        for line in comparison.summary_lines():
            print(f"  - {line}")
        if comparison.newly_passing:
            print(f"  - passing now, failed in the baseline: {', '.join(comparison.newly_passing)}")
    print("Wrote " + ", ".join(str(p) for p in outcome.written))


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    """Score retrieval modes on a BEIR folder and print them side by side."""
    from eval.beir import MODES as BEIR_MODES
    from eval.beir import BeirFormatError, evaluate_beir, render_beir_table
    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_

    modes = tuple(dict.fromkeys(args.modes)) if args.modes else BEIR_MODES
    try:
        result = evaluate_beir(Path(args.beir), modes, Path(args.run_out) if args.run_out else None,
                               progress=sys.stderr.isatty())
    except (BeirFormatError, IndexError_, ModelLoadError) as err:
        return fail(str(err), 1)
    table = render_beir_table(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "retrieval.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        (out / "retrieval.md").write_text(table, encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        print(table)
        for mode, path in result["run_files"].items():
            print(f"Run file ({mode}): {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure start-up, latency, index build/load and vector search at scale; write bench.json and bench.md."""
    from eval.bench import run_bench
    from eval.workspace import MEDQUAD_DEV
    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_
    from knowledge.ray_embedding import RayClusterError, RayUnavailableError  # light: ray itself loads lazily
    from qa.triage_model import TriageModelError

    try:
        result = run_bench(Path(args.out), quick=args.quick, medquad=Path(args.medquad) if args.medquad else MEDQUAD_DEV,
                           index_dir=Path(args.index) if args.index else None, skip=args.skip, store=args.store,
                           pg_scale=args.scale, ray=args.ray)
    except (IndexError_, ModelLoadError, TriageModelError, RayUnavailableError, RayClusterError) as err:
        return fail(str(err), 1)
    from eval.bench import render_bench

    print(render_bench(result))
    print(f"Wrote {Path(args.out) / 'bench.json'} and {Path(args.out) / 'bench.md'}")
    return 0
