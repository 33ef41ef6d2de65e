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
    WEIGHTS_SUFFIX,
    OnnxEmbedder,
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


def test_build_batches_are_length_sorted_and_capped_by_rows_and_padded_tokens():
    embedder = OnnxEmbedder(Path("unused.onnx"), Path("unused"), SentenceConfig("mean_tokens", True, 256, False, 384),
                            DEFAULT_MODEL, batch_tokens=1000)
    lengths = [250, 12, 250, 30, 250, 250, 250, 20, 11, 13]
    groups = embedder.batches(lengths, batch_size=3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # every text once
    assert [[lengths[i] for i in g] for g in groups] == [[11, 12, 13], [20, 30, 250], [250, 250, 250], [250]]
    assert all(len(g) * max(lengths[i] for i in g) <= 1000 for g in groups)
    assert embedder.batches([600, 700], batch_size=64) == [[0], [1]]  # a text longer than the budget goes alone


def test_index_info_says_when_questions_use_sentence_transformers(tmp_path, fake_embedder, capsys):
    from kb_fixtures import fake_settings

    from knowledge.build import build_index
    from ui.cli import main

    build_index([write_articles(tmp_path / "articles")], fake_settings(tmp_path / "index"), embedder=fake_embedder,
                progress=False)
    assert main(["index", "info", "--index", str(tmp_path / "index"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["query_encoder"] == "none: sentence-transformers"
    assert main(["index", "info", "--index", str(tmp_path / "index")]) == 0
    assert "Questions: none: sentence-transformers" in capsys.readouterr().out


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


def test_an_export_whose_weights_file_is_missing_falls_back_saying_which_file(tmp_path, capsys):
    embedding._notices.clear()
    config = SentenceConfig("mean_tokens", True, 256, False, 384)
    record = OnnxRecord(ONNX_FILE, "0" * 64, "1" * 64, 1e-7, config, weights_sha256="2" * 64).to_json()
    (tmp_path / ONNX_FILE).write_bytes(b"graph " * 400)  # the graph is there, its weights are not
    manifest = {"model": DEFAULT_MODEL, "query_encoder": {**record, "model": DEFAULT_MODEL}}
    assert isinstance(query_embedder(tmp_path / ONNX_FILE, manifest, "auto"), Embedder)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{ONNX_FILE}{WEIGHTS_SUFFIX} is missing from the index" in err
    with pytest.raises(OnnxUnavailableError, match="is missing from the index; run 'patient-qa index build'"):
        query_embedder(tmp_path / ONNX_FILE, manifest, "onnx")


def test_a_model_that_cannot_be_exported_builds_with_sentence_transformers(monkeypatch, capsys):
    embedding._notices.clear()
    def refuse(*args, **kwargs):
        raise OnnxUnavailableError("torch.onnx.export failed (UnsupportedOperator: x)")

    monkeypatch.setattr("knowledge.onnx_embedder.CachedExport", refuse)
    embedder, encoder = build_embedders("some-unexportable-model", "auto", 1)
    assert isinstance(embedder, Embedder) and encoder.get() is None
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
    # The weights beside the graph, in the file onnxruntime maps into memory rather than copying.
    assert record["weights_sha256"] == file_sha256(onnx_index / (ONNX_FILE + WEIGHTS_SUFFIX))
    assert (onnx_index / ONNX_FILE).stat().st_size < 1_000_000 < (onnx_index / (ONNX_FILE + WEIGHTS_SUFFIX)).stat().st_size
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
def test_the_chat_builds_its_page_and_answers_without_torch(onnx_index):
    """The server's own path: Assistant, warm-up, the Gradio page and one whole chat turn, as `patient-qa chat`."""
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from knowledge.settings import Settings\n"
        "from qa.assistant import Assistant\n"
        "from ui.chat import build_app\n"
        "from ui.chat_handlers import answer_turn\n"
        f"settings = Settings().updated(index_dir=Path({str(onnx_index)!r}), feedback=False)\n"
        "a = Assistant(settings)\n"
        "a.warm_up()\n"
        "build_app(a, settings)\n"
        "*_, (box, history, answers, sources) = answer_turn(a, 'What is CAR-T cell therapy?', [], [])\n"
        f"print(json.dumps({{'answers': len(answers), 'quotes': len(answers[-1].quotes), 'gradio': 'gradio' in sys.modules,"
        f" 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(Path.home()), "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answers"] == 1 and result["quotes"] >= 1 and result["gradio"]
    assert result["heavy"] == []


@pytest.mark.slow
def test_index_info_names_the_verified_export(onnx_index, capsys):
    from ui.cli import main

    assert main(["index", "info", "--index", str(onnx_index), "--json"]) == 0
    encoder = json.loads(capsys.readouterr().out)["query_encoder"]
    assert encoder["file"] == ONNX_FILE and encoder["sha256"] == file_sha256(onnx_index / ONNX_FILE)
    assert 0 <= encoder["max_abs_diff"] <= 1e-5
    assert main(["index", "info", "--index", str(onnx_index)]) == 0
    out = capsys.readouterr().out
    assert f"Questions: ONNX export {ONNX_FILE} (sha256 {encoder['sha256'][:12]}" in out and "verified max diff" in out


@pytest.mark.slow
def test_build_batches_of_long_texts_give_the_same_vectors(onnx_index, embedder):
    """A small token budget splits long chunks into more batches; every vector still matches sentence-transformers."""
    manifest = json.loads((onnx_index / "manifest.json").read_text())
    onnx = query_embedder(onnx_index / ONNX_FILE, manifest, "onnx")
    texts = [*QUESTIONS, "Fever after the infusion can be a sign of cytokine release syndrome. " * 20,
             "Neurotoxicity can cause confusion or trouble finding words. " * 8]
    expected = embedder.encode(texts)
    budget = onnx.batch_tokens
    try:
        onnx.batch_tokens = 300
        assert np.abs(onnx.encode(texts, batch_size=64) - expected).max() <= 1e-5
    finally:
        onnx.batch_tokens = budget


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
