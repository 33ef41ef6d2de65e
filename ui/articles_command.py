"""`patient-qa articles check`: the checks a maintainer runs on articles before indexing them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_articles_check(args: argparse.Namespace) -> int:
    """Print each article's findings; exit 1 when any article has an error, 0 on warnings only."""
    from knowledge.article_check import Rules, check_articles, with_pack_findings
    from knowledge.settings import settings_from_args

    settings = settings_from_args(args)
    paths = [Path(p) for p in args.paths] or [settings.index.articles]
    wanted = settings.article_check
    rules = Rules(max_grade=wanted.max_reading_grade, stale_after_days=wanted.stale_after_days,
                  min_question_keys=wanted.min_question_keys)
    reports = check_articles(paths, rules)
    from knowledge.build import chunking_params
    from knowledge.vector_packs import PACKS_DIR

    if PACKS_DIR.is_dir():  # the bundled articles ship their vectors: say which are stale
        reports = with_pack_findings(reports, settings.index.articles, PACKS_DIR, chunking_params(settings))
    errors = sum(r.errors for r in reports)
    if args.json:
        print(json.dumps({"articles": [r.to_json() for r in reports], "errors": errors,
                          "warnings": sum(r.warnings for r in reports)}, ensure_ascii=False))
        return 1 if errors else 0
    for report in reports:
        grade = "grade ?" if report.grade is None else f"grade {report.grade:g}"
        status = "errors" if report.errors else ("warnings" if report.warnings else "ok")
        print(f"{report.path}  ({grade}, {report.words} words)  {status}")
        for finding in report.findings:
            if finding.level == "warning" and not args.warnings:
                continue
            where = f" line {finding.line}" if finding.line else ""
            print(f"  {finding.level:<7} {finding.check}{where}: {finding.message}")
    with_errors = sum(1 for r in reports if r.errors)
    warned = sum(r.warnings for r in reports)
    print(f"{len(reports)} articles: {with_errors} with errors ({errors} errors), {warned} warnings"
          + ("" if args.warnings or not warned else " (show them with --warnings)"))
    return 1 if errors else 0


def add_articles_parser(sub: argparse._SubParsersAction) -> None:
    """Register `articles check` on the main parser."""
    from knowledge.settings import add_setting_flags

    articles = sub.add_parser("articles", help="check articles before indexing them")
    articles_sub = articles.add_subparsers(dest="articles_command", required=True)
    check = articles_sub.add_parser(
        "check", help="front matter, sources, staleness, reading grade, lone sentences and question keys; "
        "exit 1 on errors, 0 on warnings only")
    check.add_argument("paths", nargs="*", help="article files or folders (default: the bundled articles)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--warnings", action="store_true", help="list warnings too, not only their count")
    add_setting_flags(check, "max_reading_grade", "stale_after_days", "min_question_keys")
    check.set_defaults(func=cmd_articles_check)
