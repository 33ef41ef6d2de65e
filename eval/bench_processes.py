"""The bench's processes: cold `patient-qa ask` and `chat` runs, the memory probe, and stopping what it started.

Each measurement runs the real command in a fresh process, as a person would start it.
"""

from __future__ import annotations

import json
import os
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
from pathlib import Path

COLD_QUESTION = "What is CAR-T cell therapy?"
CHAT_TIMEOUT_S = 180.0


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


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "TOKENIZERS_PARALLELISM": "false"})
    return env


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def cold_ask(index_dir: Path, runs: int = 3) -> dict:
    """Wall time of `patient-qa ask ... --json` processes: to the answer on stdout and to exit."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(cli_command() + ["ask", COLD_QUESTION, "--json", "--index", str(index_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return None


def stop(proc: subprocess.Popen) -> None:
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
                               env=child_env()).stdout
    port = free_port()
    args = cli_command() + ["chat", "--index", str(index_dir)]
    if "--port" in help_text:
        args += ["--port", str(port)]
    env = child_env()
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
                if http_status(url) == 200:
                    return {"seconds": round(time.perf_counter() - started, 3), "url": url}
                time.sleep(0.25)
            return {"seconds": None, "reason": f"no 200 from {url} within {timeout_s:.0f} s"}
        finally:
            stop(proc)


def memory_probe(index_dir: Path) -> dict:
    """VmRSS of a fresh process: after start-up, after loading the index, after the model and a first answer."""
    code = ("import json; from eval.bench_processes import probe_memory; "
            f"print(json.dumps(probe_memory({str(index_dir)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300)
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
