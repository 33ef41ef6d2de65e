"""The `patient-qa` command: index, ask, chat, eval and bench. Heavy libraries load only when a command needs them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from knowledge.errors import PatientQAError, fail
from knowledge.settings import SPECS, add_setting_flags, describe_settings, settings_from_args
from knowledge.text import squash_whitespace

DEBUG_FLAG = "--debug"


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False))


def cmd_index_build(args: argparse.Namespace) -> int:
    from knowledge.build import NothingIndexedError, build_index
    from knowledge.store import where

    settings = settings_from_args(args, model=args.model, ray_address=args.ray or None, **where(args.index, args.store))
    paths = [Path(p) for p in args.paths] or [settings.index.articles]
    try:
        # Progress goes to stderr, so it shows in --json mode too (stdout stays one JSON object).
        if args.ray is None:
            report = build_index(paths, settings, progress=sys.stderr.isatty())
        else:
            from knowledge.ray_embedding import RayIngestion, ray_cluster

            with ray_cluster(settings.ray, progress=sys.stderr.isatty()):
                report = build_index(paths, settings, embedder=RayIngestion(settings.ray), progress=sys.stderr.isatty())
    except NothingIndexedError as err:
        if args.json:
            _print_json(err.report.to_json())
        return fail(str(err), 1)
    except KeyboardInterrupt:
        return fail("build interrupted; the previous index is unchanged", 130)
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


def cmd_index_pack(args: argparse.Namespace) -> int:
    from knowledge.vector_packs import PACKS_DIR, write_packs

    settings = settings_from_args(args)
    root = Path(args.articles) if args.articles else settings.index.articles
    out = Path(args.out) if args.out else PACKS_DIR
    if not root.is_dir():
        return fail(f"no such articles folder: {root}", 2)
    report = write_packs(root, out, settings)
    if args.json:
        from dataclasses import asdict

        _print_json(asdict(report))
        return 0
    print(f"Wrote {report.written} vector packs ({report.vectors} vectors, {report.megabytes:.1f} MB) to {report.folder}")
    for path in report.removed:
        print(f"  removed {path} (no article writes it now)")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from knowledge.store import open_store, where

    settings = settings_from_args(args, **where(args.index, args.store))
    info = open_store(settings).info()
    if args.json:
        _print_json(info)
        return 0
    print(f"Index:     {info['index_dir']}")
    print(f"Model:     {info['model']} ({info['dimension']} dimensions)")
    print(f"Built:     {info['built_at']} in {info['build_seconds']} s")
    print(f"Contents:  {info['documents']} documents, {info['chunks']} chunks, {info['sentences']} sentences")
    print(f"On disk:   {info['size_bytes'] / 1e6:.1f} MB")
    encoder = info["query_encoder"]
    if isinstance(encoder, dict):
        print(f"Questions: ONNX export {encoder['file']} (sha256 {encoder['sha256'][:12]}…), "
              f"verified max diff {encoder['max_abs_diff']:.1e} against sentence-transformers")
    else:
        print(f"Questions: {encoder} (no verified ONNX export; 'patient-qa index build' makes one)")
    for doc in info["documents_list"]:
        print(f"  - {doc['title']}  ({doc['chunks']} chunks)  {doc['source_path']}")
    return 0


def _load_assistant(args: argparse.Namespace):
    """The Assistant for --index with its model loaded and checked; a PatientQAError says how to fix the index."""
    from knowledge.store import where
    from qa.assistant import Assistant

    settings = settings_from_args(args, **where(getattr(args, "index", None), getattr(args, "store", None)))
    assistant = Assistant(settings)
    assistant.check_model()  # a model that cannot load fails here, not at the first question of a batch
    return assistant


def _print_answer(answer, as_json: bool) -> None:
    """One answer as JSON, or as Markdown with any control characters from the input shown, never obeyed."""
    from qa.render import terminal_text

    if as_json:
        _print_json(answer.to_json())
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(terminal_text(answer.markdown)))
    else:
        print(terminal_text(answer.markdown))


def _question_lines(path: str):
    """Yield (line number, text or None) from a file or stdin; None marks a line that is not UTF-8."""
    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None


def _read_questions(path: str):
    """Yield (line number, item) from a JSONL file of {"id", "question", "history"?}; bad lines are reported."""
    from qa.render import readable_text

    for number, line in _question_lines(path):
        if line is None:
            yield number, {"error": f"line {number} is not UTF-8 text; save the file as UTF-8"}
            continue
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
        history = item.get("history") or []
        yield number, {
            "id": readable_text(str(item.get("id", number))),
            "question": readable_text(item.get("question", "")),
            "history": [readable_text(h) if isinstance(h, str) else h for h in history]
            if isinstance(history, list) else [],
        }


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.render import readable_text, terminal_text

    question = readable_text(" ".join(args.question)).strip()
    history = [readable_text(h) for h in args.history or []]
    if not question and not args.questions:
        from qa.assistant import empty_answer

        _print_answer(empty_answer(), args.json)
        return 0
    if args.questions and args.questions != "-" and not Path(args.questions).is_file():
        return fail(f"no such file: {args.questions}; give a JSONL file of questions or '-' for stdin", 2)
    if not args.index and not args.store:
        from ui.default_index import ensure_default_index

        # First use: build the default index of the bundled articles, as `chat` does; messages on stderr keep
        # stdout the answers alone. A missing explicit --index keeps its "run 'patient-qa index build'" message.
        code = ensure_default_index(settings_from_args(args), out=sys.stderr)
        if code:
            return code
    assistant = _load_assistant(args)
    if not args.questions:
        _print_answer(assistant.ask(question, history=history), args.json)
        return 0
    failures = 0
    for number, item in _read_questions(args.questions):
        if "error" not in item:
            try:
                answer = assistant.ask(item["question"], history=item["history"], id=item["id"])
            except Exception as err:  # noqa: BLE001 - one bad item must not lose the rest of the batch
                if args.debug:
                    raise
                item = {"error": f"line {number} could not be answered ({type(err).__name__}); "
                                 "rerun with --debug for details"}
        if "error" in item:
            failures += 1
            print(f"patient-qa: {item['error']}", file=sys.stderr)
            continue
        if args.json:
            _print_json(answer.to_json())
        else:
            print(f"## {terminal_text(answer.id or '', keep_newlines=False)}: "
                  f"{terminal_text(answer.question, keep_newlines=False)}\n")
            print(terminal_text(answer.markdown) + "\n")
        sys.stdout.flush()
    return 1 if failures else 0


def cmd_settings(args: argparse.Namespace) -> int:
    """Print the effective settings: defaults, then PATIENT_QA_* variables, then any flags given here."""
    settings = settings_from_args(args)
    if args.json:
        _print_json(settings.as_dict())
    else:
        print(describe_settings(settings))
    return 0


# Settings a question's answer depends on: `ask` takes them as flags, so one run can try another threshold.
ANSWER_FLAGS = ("abstain_threshold", "scope_threshold", "no_shared_words_threshold", "max_quotes", "max_articles",
                "mode", "threads")
BUILD_FLAGS = ("chunk_target_words", "chunk_max_tokens", "chunk_overlap_sentences", "batch_size", "max_file_mb",
               "max_chunks_per_document", "html_min_words")
RAY_FLAGS = ("ray_workers", "ray_batch_size", "ray_worker_threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patient-qa",
        description="Answers about CAR-T and cancer immunotherapy, quoted from trusted articles. "
        "General information, not medical advice.",
    )
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of an error (may be given anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)

    index = sub.add_parser("index", help="build or inspect the knowledge index")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser("build", help="index articles (Markdown, HTML, PDF, text); only changed files are re-embedded")
    build.add_argument("paths", nargs="*", help="files or folders (default: the bundled articles)")
    build.add_argument("--index", help=SPECS["index_dir"].describe())
    build.add_argument("--store", help=SPECS["store"].describe())
    build.add_argument("--model", help=SPECS["model"].describe())
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                       help="embed on a Ray cluster (pip install '.[scale]'): alone, a local one started for the "
                       "build (or PATIENT_QA_RAY_ADDRESS); with HOST:PORT, auto or ray://..., a running one. "
                       "Give the paths before --ray")
    add_setting_flags(build, *BUILD_FLAGS, group_title="build settings")
    add_setting_flags(build, *RAY_FLAGS, group_title="Ray settings (with --ray)")
    build.set_defaults(func=cmd_index_build)
    pack = index_sub.add_parser("pack", help="write the vectors shipped with the bundled articles (run after editing "
                                "one), so a new user's first build looks them up instead of embedding them")
    pack.add_argument("--articles", help="articles folder (default: the bundled articles)")
    pack.add_argument("--out", help="packs folder (default: knowledge/vectors)")
    pack.add_argument("--json", action="store_true", help="print one JSON object")
    pack.set_defaults(func=cmd_index_pack)
    info = index_sub.add_parser("info", help="model, counts and documents of an index")
    info.add_argument("--index", help=SPECS["index_dir"].describe())
    info.add_argument("--store", help=SPECS["store"].describe())
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_index_info)

    ask = sub.add_parser("ask", help="answer a question with quotes from the articles")
    ask.add_argument("question", nargs="*", help="the question (quote it)")
    ask.add_argument("--history", action="append", help="an earlier question in the conversation (repeatable)")
    ask.add_argument("--questions", metavar="FILE.jsonl", help='answer each line {"id", "question", "history"?} ("-" = stdin)')
    ask.add_argument("--index", help=SPECS["index_dir"].describe())
    ask.add_argument("--store", help=SPECS["store"].describe())
    ask.add_argument("--json", action="store_true", help="print the JSON answer contract")
    add_setting_flags(ask, *ANSWER_FLAGS, group_title="answer settings")
    ask.set_defaults(func=cmd_ask)

    shown = sub.add_parser("settings", help="print the effective settings (defaults, PATIENT_QA_* variables, flags)",
                           description="Every setting with its value and what it does. Each can be set by its "
                           "PATIENT_QA_<NAME> variable, or by the flag below for this listing.")
    shown.add_argument("--json", action="store_true", help="print the settings as one nested JSON object")
    add_setting_flags(shown, *SPECS, group_title="settings")
    shown.set_defaults(func=cmd_settings)

    from eval.commands import add_eval_parsers, add_triage_parsers
    from ui.articles_command import add_articles_parser
    from ui.chat_command import add_chat_parser  # light modules: heavy imports happen inside the commands

    add_chat_parser(sub)
    add_eval_parsers(sub)
    add_triage_parsers(sub)
    add_articles_parser(sub)
    return parser


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` anywhere before a `--`, so `patient-qa ask "..." --debug` works as well as `patient-qa --debug ask`."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = DEBUG_FLAG in argv[:end]
    return [a for i, a in enumerate(argv) if not (a == DEBUG_FLAG and i < end)], debug


def main(argv: list[str] | None = None) -> int:
    """Run one command; every patient-qa error is printed here, once, as one line (a traceback only with --debug)."""
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = debug
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `patient-qa ask ... | head` closed the pipe early: not an error
        sys.stderr.close()
        return 0
    except PatientQAError as err:
        if debug:
            raise
        return fail(_one_line(str(err)), 1)
    except Exception as err:  # noqa: BLE001 - a bug must still end in a message, not a traceback
        if debug:
            raise
        return fail(f"unexpected error ({type(err).__name__}: {_one_line(str(err))[:200]}); "
                    "rerun with --debug and report the traceback", 1)


def _one_line(message: str) -> str:
    """An error message on one terminal line, control characters escaped."""
    from qa.render import terminal_text

    return terminal_text(squash_whitespace(message), keep_newlines=False)


if __name__ == "__main__":
    sys.exit(main())
