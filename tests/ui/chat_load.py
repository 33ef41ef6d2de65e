"""Load the chat like many people at once: N users x M questions through gradio_client, with timings.

Run it against a chat with a fake assistant that takes ~14 ms per answer (prints p50/p95, errors, cross-talk):

    python tests/ui/chat_load.py --users 20 --questions 5

The slow test `test_chat_load.py` runs the same load and asserts only errors and cross-talk (timings vary by machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ui_fixtures import FakeAssistant, free_port  # noqa: E402

PIPELINE_S = 0.014  # what the real pipeline takes per answer on a warm machine


@dataclass
class LoadReport:
    """What a load run saw: per-question latencies, errors, and answers that went to the wrong person."""

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")

    def summary(self) -> str:
        n = len(self.latencies_s)
        mean = statistics.fmean(self.latencies_s) if n else float("nan")
        return (f"{n} answers in {self.wall_s:.2f} s: p50 {self.percentile(0.5):.3f} s, "
                f"p95 {self.percentile(0.95):.3f} s, mean {mean:.3f} s; "
                f"{len(self.errors)} errors, {len(self.crosstalk)} cross-talk")


def _one_user(url: str, user: int, questions: int, report: LoadReport, lock: threading.Lock) -> None:
    """One person: their own session, questions asked one after another, each answer checked to be theirs."""
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as err:  # noqa: BLE001 - a load run counts failures instead of stopping
        with lock:
            report.errors.append(f"user {user}: could not connect: {err}")
        return
    history: list = []
    asked: list[str] = []
    for number in range(questions):
        question = f"What is CRS? (user {user}, question {number})"
        started = time.perf_counter()
        try:
            _box, history, sources, _status, _crisis = client.predict(question, history, api_name="/chat")
        except Exception as err:  # noqa: BLE001
            with lock:
                report.errors.append(f"user {user} question {number}: {err!r}")
            continue
        elapsed = time.perf_counter() - started
        asked.append(question)
        shown = [m["content"] for m in history if m.get("role") == "user"]
        shown_text = [" ".join(p.get("text", "") for p in c) if isinstance(c, list) else str(c) for c in shown]
        mine = all(f"user {user}," in text for text in shown_text) and len(shown_text) == len(asked)
        with lock:
            report.latencies_s.append(elapsed)
            if not mine or f"(user {user}, question {number})" not in sources:
                report.crosstalk.append(f"user {user} question {number}: saw {shown_text[-1:]!r}")


def run_load(url: str, users: int = 20, questions: int = 5) -> LoadReport:
    """All users at once, each in its own thread and session."""
    report, lock = LoadReport(), threading.Lock()
    threads = [threading.Thread(target=_one_user, args=(url, u, questions, report, lock)) for u in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall_s = time.perf_counter() - started
    return report


def serve(port: int, delay: float) -> None:
    """The chat with a fake assistant taking `delay` s per answer, until killed (the server side of a load run)."""
    from knowledge.settings import Settings
    from ui.chat import build_app, launch

    app = build_app(FakeAssistant(delay=delay), Settings.from_env(feedback=False))
    launch(app, port=port, quiet=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to tell the server's cost from the clients'."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--delay", type=float, default=PIPELINE_S, help="seconds the fake assistant takes")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
        return 0
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--delay", str(args.delay)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the chat server did not start", file=sys.stderr)
                    return 2
                time.sleep(0.2)
        before = cpu_seconds(server.pid)
        report = run_load(url, args.users, args.questions)
        used = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(report.summary())
    print(f"server CPU: {used:.2f} s in all, {1000 * used / max(1, len(report.latencies_s)):.0f} ms per answer "
          f"(the fake pipeline sleeps {1000 * args.delay:.0f} ms and uses none)")
    for line in (report.errors + report.crosstalk)[:10]:
        print("  " + line)
    return 1 if report.errors or report.crosstalk else 0


if __name__ == "__main__":
    raise SystemExit(main())
