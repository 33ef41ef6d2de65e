"""A new machine's one-time ONNX export, made and checked in a process of its own, so the build that needs it
chunks and looks up its vectors on the other core meanwhile instead of waiting (the export's sentence-transformers
import alone takes 8-10 s on two cores).

`python -m knowledge.export_worker MODEL_DIR DEST_DIR MODEL_NAME` writes the export and its `record.json` (the
`OnnxRecord` of `export_verified`) to DEST_DIR, or exits 1 with the reason as its last line on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from knowledge.onnx_embedder import RECORD_FILE, OnnxRecord, OnnxUnavailableError

ERROR_TAG = "export-error: "  # the worker's own reason, told apart from whatever torch printed before it
WORKER_TIMEOUT_S = 900.0  # a loaded machine can take minutes to import torch; never wait forever


class ExportWorker:
    """The worker process, started at once; `result()` waits for its record."""

    def __init__(self, model_dir: Path, dest_dir: Path, model_name: str) -> None:
        self._dest = Path(dest_dir)
        self._log = tempfile.TemporaryFile()
        repo = str(Path(__file__).resolve().parents[1])
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **os.environ, "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
        # Run from the project's folder with absolute paths, so no `knowledge` package in the user's folder is run.
        self._proc = subprocess.Popen([sys.executable, "-m", "knowledge.export_worker", str(Path(model_dir).resolve()),
                                       str(self._dest.resolve()), model_name], cwd=repo, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=self._log, env=env)

    def result(self, timeout_s: float = WORKER_TIMEOUT_S) -> OnnxRecord:
        """The checked export's record, or an `OnnxUnavailableError` with the worker's last words."""
        try:
            code = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise OnnxUnavailableError(f"the ONNX export took over {timeout_s:.0f} s") from None
        try:
            if code < 0:
                raise OnnxUnavailableError(f"the ONNX export's worker process was killed (signal {-code})")
            if code != 0:
                self._log.seek(0)
                said = [line[len(ERROR_TAG):].strip() for line in self._log.read().decode(errors="replace").splitlines()
                        if line.startswith(ERROR_TAG)]
                raise OnnxUnavailableError(said[-1][:200] if said else f"the ONNX export's worker stopped (exit {code})")
            try:
                record = OnnxRecord.from_json(json.loads((self._dest / RECORD_FILE).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                record = None
            if record is None:
                raise OnnxUnavailableError(f"the ONNX export left no readable {RECORD_FILE}")
            return record
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the worker if it still runs (idempotent)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


def main(argv: list[str]) -> int:
    """Export and check the model in argv[0] into argv[1]; the reason on stderr and exit 1 if it cannot be."""
    from knowledge.onnx_embedder import export_verified, write_record

    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, dest = Path(argv[0]), Path(argv[1])
    try:
        record = export_verified(model_dir, dest, argv[2])
    except OnnxUnavailableError as err:
        print(ERROR_TAG + str(err), file=sys.stderr)
        return 1
    write_record(dest, record)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # torch's interpreter teardown adds a second to a build that waits for this process
