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


def _load_assistant(args: argparse.Namespace):
    """The Assistant for --index, or a message that says how to build the index."""
    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_
    from qa.assistant import Assistant
    from qa.triage_model import TriageModelError

    settings = Settings.from_env(index_dir=getattr(args, "index", None))
    try:
        return Assistant(settings)
    except IndexError_ as err:
        raise SystemExit(_fail(str(err), 1)) from None
    except ModelLoadError as err:
        raise SystemExit(_fail(str(err), 1)) from None
    except TriageModelError as err:
        raise SystemExit(_fail(str(err), 1)) from None


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        _print_json(answer.to_json())
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(answer.markdown))
    else:
        print(answer.markdown)


def _read_questions(path: str):
    """Yield (line number, item) from a JSONL file of {"id", "question", "history"?}; bad lines are reported."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as err:
                yield number, {"error": f"line {number} is not JSON ({err.msg})"}
                continue
            if not isinstance(item, dict) or not isinstance(item.get("question", ""), str):
                yield number, {"error": f"line {number} needs an object with a \"question\" string"}
                continue
            yield number, item


def cmd_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question).strip()
    if not question and not args.questions:
        from qa.render import EMPTY_MESSAGE

        print(EMPTY_MESSAGE)
        return 0
    if args.questions and not Path(args.questions).exists() and args.questions != "-":
        return _fail(f"no such file: {args.questions}", 2)
    assistant = _load_assistant(args)
    if not args.questions:
        _print_answer(assistant.ask(question, history=args.history or []), args.json)
        return 0
    failures = 0
    for number, item in _read_questions(args.questions):
        if "error" in item:
            failures += 1
            print(f"patient-qa: {item['error']}", file=sys.stderr)
            continue
        history = item.get("history") or []
        answer = assistant.ask(item.get("question", ""), history=history if isinstance(history, list) else [],
                               id=str(item.get("id", number)))
        if args.json:
            _print_json(answer.to_json())
        else:
            print(f"## {answer.id}: {answer.question}\n")
            print(answer.markdown + "\n")
        sys.stdout.flush()
    return 1 if failures else 0


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

    ask = sub.add_parser("ask", help="answer a question with quotes from the articles")
    ask.add_argument("question", nargs="*", help="the question (quote it)")
    ask.add_argument("--history", action="append", help="an earlier question in the conversation (repeatable)")
    ask.add_argument("--questions", metavar="FILE.jsonl", help='answer each line {"id", "question", "history"?} ("-" = stdin)')
    ask.add_argument("--index", help="index folder")
    ask.add_argument("--json", action="store_true", help="print the JSON answer contract")
    ask.set_defaults(func=cmd_ask)

    from ui.chat_command import add_chat_parser  # light modules: heavy imports happen inside the commands
    from eval.commands import add_eval_parsers, add_triage_parsers

    add_chat_parser(sub)
    add_eval_parsers(sub)
    add_triage_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `patient-qa ask ... | head` closed the pipe early: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
