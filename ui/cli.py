"""The `patient-qa` command: index, ask, chat, eval and bench. Heavy libraries load only when a command needs them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from knowledge.settings import Settings


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False))


def _fail(message: str, code: int = 2) -> int:
    print(f"patient-qa: {message}", file=sys.stderr)
    return code


def cmd_index_build(args: argparse.Namespace) -> int:
    from knowledge.index import IndexError_, NothingIndexedError, build_index
    from knowledge.embedding import ModelLoadError

    settings = Settings.from_env(index_dir=args.index, model=args.model)
    paths = [Path(p) for p in args.paths] or [settings.articles]
    try:
        report = build_index(paths, settings, progress=not args.json and sys.stderr.isatty())
    except NothingIndexedError as err:
        if args.json:
            _print_json(err.report.to_json())
        return _fail(str(err), 1)
    except (IndexError_, ModelLoadError) as err:
        return _fail(str(err), 1)
    except KeyboardInterrupt:
        return _fail("build interrupted; the previous index is unchanged", 130)
    if args.json:
        _print_json(report.to_json())
        return 0
    print(
        f"Indexed {report.documents} documents ({report.chunks} chunks, {report.sentences} sentences) "
        f"into {report.index_dir} in {report.seconds:.1f} s"
    )
    print(f"  added {report.added}, updated {report.updated}, removed {report.removed}, unchanged {report.unchanged}")
    for skipped in report.skipped:
        print(f"  skipped {skipped.path}: {skipped.reason}")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from knowledge.index import IndexError_, KnowledgeIndex

    settings = Settings.from_env(index_dir=args.index)
    try:
        info = KnowledgeIndex.load(settings.index_dir).info()
    except IndexError_ as err:
        return _fail(str(err), 1)
    if args.json:
        _print_json(info)
        return 0
    print(f"Index:     {info['index_dir']}")
    print(f"Model:     {info['model']} ({info['dimension']} dimensions)")
    print(f"Built:     {info['built_at']} in {info['build_seconds']} s")
    print(f"Contents:  {info['documents']} documents, {info['chunks']} chunks, {info['sentences']} sentences")
    print(f"On disk:   {info['size_bytes'] / 1e6:.1f} MB")
    for doc in info["documents_list"]:
        print(f"  - {doc['title']}  ({doc['chunks']} chunks)  {doc['source_path']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patient-qa",
        description="Answers about CAR-T and cancer immunotherapy, quoted from trusted articles. "
        "General information, not medical advice.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    index = sub.add_parser("index", help="build or inspect the knowledge index")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser("build", help="index articles (Markdown, HTML, PDF, text); only changed files are re-embedded")
    build.add_argument("paths", nargs="*", help="files or folders (default: the bundled articles)")
    build.add_argument("--index", help="index folder (default: the user cache, see README)")
    build.add_argument("--model", help="sentence-transformers model name or local path")
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.set_defaults(func=cmd_index_build)
    info = index_sub.add_parser("info", help="model, counts and documents of an index")
    info.add_argument("--index", help="index folder")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_index_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
