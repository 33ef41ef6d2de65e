"""A new machine's one-time ONNX export runs in a process of its own while the build goes on: the build waits for
the checked export only where it needs it, falls back as before when it fails, and a failed build stops it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import FakeEmbedder, write_articles

from knowledge import embedding
from knowledge.embedding import AwaitedExport, Embedder, build_embedders, resolve_model_path
from knowledge.onnx_embedder import ONNX_FILE, CachedExport, OnnxUnavailableError, file_sha256, read_sentence_config
from knowledge.settings import DEFAULT_MODEL, Settings

REPO = Path(__file__).resolve().parents[2]


class _Pending:
    """Stands in for `CachedExport`: counts how often the build waited for it, and succeeds or fails."""

    ready = False
    onnx_path = Path("nowhere") / "query_encoder.onnx"
    model_sha256 = "0" * 64

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.waits = 0
        self.closed = False
        self.config = read_sentence_config(Path(resolve_model_path(DEFAULT_MODEL)))

    def result(self):
        self.waits += 1
        if self.error is not None:
            raise self.error
        return Path("query_encoder.onnx"), "record"

    def close(self) -> None:
        self.closed = True

    stop = close  # as an `ExportWorker`


def test_token_counts_do_not_wait_for_the_export_and_vectors_wait_once():
    pending = _Pending()
    awaited = AwaitedExport(pending, FakeEmbedder(), fallback=lambda err: pytest.fail(f"fell back: {err}"))
    assert awaited.count_tokens(["What is CAR-T?"]) == FakeEmbedder().count_tokens(["What is CAR-T?"])
    assert awaited.encode([]).shape == (0, FakeEmbedder.dimension)
    assert pending.waits == 0  # chunking and an empty batch need no export
    vectors = awaited.encode(["What is CAR-T?", "fever"])
    awaited.encode(["again"])
    np.testing.assert_allclose(vectors, FakeEmbedder().encode(["What is CAR-T?", "fever"]))
    assert pending.waits == 1
    assert awaited.export() == (Path("query_encoder.onnx"), "record")
    awaited.close()
    assert not pending.closed  # a checked export stays


def test_a_failed_check_falls_back_once_and_stores_no_export():
    pending = _Pending(OnnxUnavailableError("the ONNX export differs from sentence-transformers by 3.0e-02"))
    fallbacks: list[str] = []

    class _Unchecked(FakeEmbedder):
        def encode(self, texts, batch_size=64):
            pytest.fail("a vector came from the export that failed its check")

    class _Other(FakeEmbedder):
        backend = "torch"

        def encode(self, texts, batch_size=64):
            return np.full((len(texts), self.dimension), 0.5, dtype=np.float32)

    def fallback(err: Exception):
        fallbacks.append(str(err))
        return _Other()

    awaited = AwaitedExport(pending, _Unchecked(), fallback)
    assert awaited.encode(["one"]).tolist() == [[0.5] * FakeEmbedder.dimension]
    awaited.encode(["two"])
    assert fallbacks == ["the ONNX export differs from sentence-transformers by 3.0e-02"]
    assert awaited.export() is None
    assert awaited.backend == "torch"  # after the fallback the build asks the fallback, not the failed export


def test_an_unused_export_is_stopped_when_the_build_ends_early():
    pending = _Pending()
    awaited = AwaitedExport(pending, FakeEmbedder(), fallback=lambda err: FakeEmbedder())
    awaited.close()
    assert pending.closed and pending.waits == 0


def test_with_onnx_asked_for_a_failed_export_is_an_error_at_the_first_vector(monkeypatch):
    pending = _Pending(OnnxUnavailableError("torch.onnx.export failed (UnsupportedOperator: x)"))
    monkeypatch.setattr("knowledge.onnx_embedder.CachedExport", lambda *a, **k: pending)
    builder, export = build_embedders(DEFAULT_MODEL, "onnx", 1, wait=False)
    assert builder.count_tokens(["What is CAR-T?"])[0] > 2  # chunking goes on meanwhile
    with pytest.raises(OnnxUnavailableError, match="PATIENT_QA_EMBEDDING_BACKEND=auto"):
        builder.encode(["What is CAR-T?"])

    embedding._notices.clear()
    builder, export = build_embedders(DEFAULT_MODEL, "auto", 1, wait=False)
    assert isinstance(builder.resolved(), Embedder) and export.get() is None


def test_a_failed_build_stops_the_export_and_leaves_no_scratch_folder(tmp_path, monkeypatch):
    from knowledge import export_worker
    from knowledge.build import NothingIndexedError, build_index

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # A process whose model is not loaded yet, as a new user's (another test may have loaded the shared one).
    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda name, threads=1: Embedder(name, threads))
    workers: list = []
    real = export_worker.ExportWorker

    def started(*args):
        workers.append(real(*args))
        return workers[-1]

    monkeypatch.setattr(export_worker, "ExportWorker", started)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NothingIndexedError, match="nothing could be indexed"):
        build_index([tmp_path / "empty"], Settings().updated(index_dir=tmp_path / "index"), progress=False)
    assert len(workers) == 1 and workers[0]._proc.poll() is not None  # the worker was stopped, not left running
    assert list((tmp_path / "cache" / "patient-qa" / "onnx").iterdir()) == []


def test_scratch_folders_of_killed_builds_are_removed_but_a_running_ones_is_kept(tmp_path, monkeypatch):
    import os
    import time

    from knowledge import onnx_embedder

    root = tmp_path / "onnx"
    old, recent = root / ".export-killed", root / ".export-running"
    dead_owner, live_owner = root / ".export-owner-gone", root / ".export-owner-alive"
    for folder in (old, recent, dead_owner, live_owner):
        folder.mkdir(parents=True)
        (folder / ONNX_FILE).write_bytes(b"x" * 1000)
    hours_ago = time.time() - 2 * onnx_embedder.ABANDONED_AFTER_S
    os.utime(old, (hours_ago, hours_ago))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (dead_owner / onnx_embedder.OWNER_FILE).write_text(finished.stdout.strip())  # a build that was killed
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a build still exporting
    try:
        (live_owner / onnx_embedder.OWNER_FILE).write_text(str(live.pid))
        monkeypatch.setattr("knowledge.export_worker.ExportWorker", lambda *args: _Pending())
        pending = CachedExport(Path(resolve_model_path(DEFAULT_MODEL)), DEFAULT_MODEL, root=root)
        pending.close()
    finally:
        live.kill()
        live.wait()
    assert not old.exists() and recent.exists()
    assert not dead_owner.exists() and live_owner.exists()  # at once when the owner is gone, not after an hour


@pytest.mark.slow
def test_the_worker_says_why_a_model_cannot_be_exported(tmp_path):
    model = tmp_path / "model"  # the model's configs without its weights: sentence-transformers cannot load it
    shutil.copytree(resolve_model_path(DEFAULT_MODEL), model,
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "*.data"))
    pending = CachedExport(model, "weightless", root=tmp_path / "cache")
    with pytest.raises(OnnxUnavailableError, match="sentence-transformers cannot load the model in"):
        pending.result()
    assert pending._worker is None  # stopped and gone
    with pytest.raises(OnnxUnavailableError, match="sentence-transformers cannot load the model in"):
        pending.result()  # the same answer again, without a second process
    assert pending._worker is None
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.slow
def test_an_export_that_differs_from_sentence_transformers_is_refused_and_removed(tmp_path):
    from knowledge.onnx_embedder import PROBE_TEXTS, WEIGHTS_SUFFIX, cached_export, check_export

    model = Path(resolve_model_path(DEFAULT_MODEL))
    path, record = cached_export(model, DEFAULT_MODEL)
    dest = tmp_path / ONNX_FILE
    for name in (ONNX_FILE, ONNX_FILE + WEIGHTS_SUFFIX):
        shutil.copyfile(path.with_name(name), tmp_path / name)
    reference = Embedder(DEFAULT_MODEL).encode(list(PROBE_TEXTS))
    assert check_export(dest, model, record.config, DEFAULT_MODEL, PROBE_TEXTS, lambda: reference).max_abs_diff <= 1e-5
    with pytest.raises(OnnxUnavailableError, match="differs from sentence-transformers by 1.0e-03"):
        check_export(dest, model, record.config, DEFAULT_MODEL, PROBE_TEXTS, lambda: reference + 1e-3)
    assert not dest.exists() and not (tmp_path / (ONNX_FILE + WEIGHTS_SUFFIX)).exists()
    for name in (ONNX_FILE, ONNX_FILE + WEIGHTS_SUFFIX):
        shutil.copyfile(path.with_name(name), tmp_path / name)
    with pytest.raises(OnnxUnavailableError, match="vectors of shape"):
        check_export(dest, model, record.config, DEFAULT_MODEL, PROBE_TEXTS, lambda: reference[:, :100])
    assert not dest.exists()


@pytest.mark.slow
def test_a_new_machines_build_stores_the_checked_export_and_never_imports_torch(tmp_path, capsys):
    """`index build` with an empty user cache, as `make chat` meets it: the export is made and checked in another
    process, the build embeds the (unbundled) test articles with it, and the build process imports no torch."""
    articles = write_articles(tmp_path / "articles")
    script = ("import runpy, sys, json\nsys.argv = ['patient-qa', 'index', 'build', sys.argv[1], '--index', sys.argv[2]]\n"
              "try:\n    runpy.run_module('ui.cli', run_name='__main__')\nexcept SystemExit as e:\n"
              "    print(json.dumps({'exit': e.code, 'heavy': [m for m in ('torch', 'transformers', "
              "'sentence_transformers') if m in sys.modules]}))\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, str(articles), str(tmp_path / "index")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"exit": 0, "heavy": []}, done.stderr
    assert "note:" not in done.stderr and "Traceback" not in done.stderr
    record = json.loads((tmp_path / "index" / "manifest.json").read_text())["query_encoder"]
    assert 0 <= record["max_abs_diff"] <= 1e-5
    assert record["sha256"] == file_sha256(tmp_path / "index" / ONNX_FILE)
    (cached,) = (tmp_path / "cache" / "patient-qa" / "onnx").iterdir()  # one export, no scratch folder
    assert file_sha256(cached / ONNX_FILE) == record["sha256"]

    from ui.cli import main

    assert main(["ask", "What is usually the first sign of cytokine release syndrome?", "--index",
                 str(tmp_path / "index"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert any("Fever is usually the first sign" in q["text"] for q in answer["quotes"])
