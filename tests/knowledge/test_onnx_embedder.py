"""The ONNX query path: same vectors as sentence-transformers, pooling from the model's config, a loud fallback,
and an `ask` that never imports torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import write_articles

from knowledge import embedding
from knowledge.embedding import (
    Embedder,
    build_embedders,
    query_embedder,
    resolve_model_path,
)
from knowledge.onnx_embedder import (
    ONNX_FILE,
    OnnxRecord,
    OnnxUnavailableError,
    SentenceConfig,
    file_sha256,
    pool,
    read_sentence_config,
)
from knowledge.settings import DEFAULT_MODEL, Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")
QUESTIONS = [
    "What is CAR-T?",
    "how long do i stay near the hospital after infusion",
    "Can I drive after CAR T?",
    "What are the signs of cytokine release syndrome and when should I call?",
]


def _model_copy(tmp_path: Path) -> Path:
    """The bundled model's small config files (no weights), to edit."""
    source = Path(resolve_model_path(DEFAULT_MODEL))
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx"))
    return target


def test_pooling_and_normalisation_come_from_the_models_config(tmp_path):
    config = read_sentence_config(Path(resolve_model_path(DEFAULT_MODEL)))
    assert (config.pooling, config.normalize, config.max_seq_length, config.dimension) == ("mean_tokens", True, 256, 384)

    model = _model_copy(tmp_path)
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize module
    (model / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": True}))
    config = read_sentence_config(model)
    assert (config.pooling, config.normalize, config.max_seq_length, config.do_lower_case) == ("cls_token", False, 128, True)


def test_a_model_with_modules_onnx_cannot_reproduce_is_refused(tmp_path):
    model = _model_copy(tmp_path)
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(OnnxUnavailableError, match="Dense"):
        read_sentence_config(model)
    (model / "modules.json").unlink()
    with pytest.raises(OnnxUnavailableError, match="no sentence-transformers config"):
        read_sentence_config(model)


def test_pool_ignores_padding_and_normalises():
    tokens = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    mean = SentenceConfig("mean_tokens", False, 256, False, 2)
    assert pool(tokens, mask, mean).tolist() == [[2.0, 2.0]]
    assert pool(tokens, mask, SentenceConfig("cls_token", False, 256, False, 2)).tolist() == [[1.0, 0.0]]
    assert pool(tokens, mask, SentenceConfig("max_tokens", False, 256, False, 2)).tolist() == [[3.0, 4.0]]
    unit = pool(tokens, mask, SentenceConfig("mean_tokens", True, 256, False, 2))
    assert np.allclose(unit, [[2 ** -0.5, 2 ** -0.5]])


def test_an_index_without_an_export_falls_back_with_one_notice(tmp_path, capsys):
    embedding._notices.clear()
    manifest = {"model": DEFAULT_MODEL, "query_encoder": None}
    first = query_embedder(None, manifest, "auto")
    second = query_embedder(None, manifest, "auto")
    assert isinstance(first, Embedder) and first is second
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("note:") and "index build" in lines[0]
    with pytest.raises(OnnxUnavailableError, match="index build"):
        query_embedder(None, manifest, "onnx")


def test_an_export_of_another_model_is_not_used(tmp_path, capsys):
    embedding._notices.clear()
    config = SentenceConfig("mean_tokens", True, 256, False, 384)
    record = OnnxRecord(ONNX_FILE, "0" * 64, "1" * 64, 1e-7, config).to_json()
    manifest = {"model": DEFAULT_MODEL, "query_encoder": {**record, "model": "another-model"}}
    assert isinstance(query_embedder(tmp_path / ONNX_FILE, manifest, "auto"), Embedder)
    assert capsys.readouterr().err == ""  # sentence-transformers then reports any mismatch, in one line


def test_a_model_that_cannot_be_exported_builds_with_sentence_transformers(monkeypatch, capsys):
    embedding._notices.clear()
    def refuse(*args, **kwargs):
        raise OnnxUnavailableError("torch.onnx.export failed (UnsupportedOperator: x)")

    monkeypatch.setattr("knowledge.onnx_embedder.cached_export", refuse)
    embedder, encoder = build_embedders("some-unexportable-model", "auto", 1)
    assert isinstance(embedder, Embedder) and encoder is None
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot be exported to ONNX" in err
    with pytest.raises(OnnxUnavailableError, match="PATIENT_QA_EMBEDDING_BACKEND=auto"):
        build_embedders("some-unexportable-model", "onnx", 1)


def test_the_backend_setting_is_checked(monkeypatch):
    monkeypatch.setenv("PATIENT_QA_EMBEDDING_BACKEND", "tensorflow")
    with pytest.raises(SettingsError, match="auto, onnx, torch|PATIENT_QA_EMBEDDING_BACKEND"):
        Settings.from_env()
    monkeypatch.setenv("PATIENT_QA_EMBEDDING_BACKEND", "torch")
    assert Settings.from_env().index.embedding_backend == "torch"


# ---------------------------------------------------------------- with the real model


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory):
    """A real index of the small test articles, built the default way (with its verified export)."""
    from knowledge.build import build_index

    root = tmp_path_factory.mktemp("onnx")
    articles = write_articles(root / "articles")
    settings = Settings().updated(index_dir=root / "index")
    build_index([articles], settings, progress=False)
    return settings.index_dir


@pytest.mark.slow
def test_the_index_holds_a_verified_export_with_its_hash(onnx_index):
    manifest = json.loads((onnx_index / "manifest.json").read_text())
    record = manifest["query_encoder"]
    assert record["file"] == ONNX_FILE
    assert record["sha256"] == file_sha256(onnx_index / ONNX_FILE)
    assert record["max_abs_diff"] <= 1e-5
    assert record["config"]["pooling"] == "mean_tokens"


@pytest.mark.slow
def test_onnx_vectors_and_token_counts_match_sentence_transformers(onnx_index, embedder):
    manifest = json.loads((onnx_index / "manifest.json").read_text())
    onnx = query_embedder(onnx_index / ONNX_FILE, manifest, "onnx")
    assert onnx.backend == "onnx"
    long_text = "Fever after the infusion can be a sign of cytokine release syndrome. " * 60
    texts = [*QUESTIONS, long_text, "  padded question?  "]
    expected = embedder.encode(texts)
    assert np.abs(np.vstack([onnx.encode_query(t) for t in texts]) - expected).max() <= 1e-5
    assert np.abs(onnx.encode(texts, batch_size=2) - expected).max() <= 1e-5
    assert onnx.count_tokens(texts) == embedder.count_tokens(texts)
    assert onnx.max_tokens == embedder.max_tokens and onnx.dimension == embedder.dimension


@pytest.mark.slow
def test_ask_never_imports_torch_transformers_or_sentence_transformers(onnx_index):
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from knowledge.settings import Settings\n"
        "from qa.assistant import Assistant\n"
        f"a = Assistant(Settings().updated(index_dir=Path({str(onnx_index)!r})))\n"
        "answer = a.ask('What is CAR-T cell therapy?')\n"
        f"print(json.dumps({{'quotes': len(answer.quotes), 'backend': a.embedder.backend,"
        f" 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(Path.home())}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "onnx"
    assert result["quotes"] >= 1
    assert result["heavy"] == []
    assert "note:" not in done.stderr  # no fallback notice on the default path


@pytest.mark.slow
def test_a_damaged_export_falls_back_to_sentence_transformers(onnx_index, tmp_path, capsys):
    manifest = json.loads((onnx_index / "manifest.json").read_text())
    copy = tmp_path / "index"
    copy.mkdir()
    (copy / ONNX_FILE).write_bytes(b"not an onnx file, though long enough to be opened " * 100)
    embedding._notices.clear()
    fallback = query_embedder(copy / ONNX_FILE, manifest, "auto")
    assert isinstance(fallback, Embedder)
    err = capsys.readouterr().err
    assert err.startswith("note:") and ONNX_FILE in err and err.count("\n") == 1
