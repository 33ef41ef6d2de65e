"""`index build --ray`: the same library as a plain build, embedded by a pool of Ray actors; clear errors without Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import ARTICLES as TEST_ARTICLES
from kb_fixtures import FakeEmbedder, write_articles

from knowledge.build import build_index
from knowledge.index import KnowledgeIndex
from knowledge.ray_embedding import RayClusterError, RayIngestion, RayUnavailableError, ray_cluster
from knowledge.settings import RaySettings, Settings
from ui.cli import main

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "knowledge" / "articles"
# A few real articles besides the small test ones: long chunks, headings and many sentences.
REAL_ARTICLES = ("cytokine-release-syndrome.md", "neurotoxicity-icans.md", "staying-near-the-center-and-driving.md")
MAX_ABS_DIFF = 1e-5  # issue 13: a Ray build gives the vectors of a one-process build


def library_vectors(index_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Chunk texts in document order, their vectors and their sentences' vectors, as a reader of the library sees them."""
    index = KnowledgeIndex.load(index_dir)
    chunks = [c for doc_id in sorted(index.doc_chunk_ids) for c in index.document_chunks(doc_id)]
    ids = [c.chunk_id for c in chunks]
    if hasattr(index, "chunk_vectors"):
        chunk_vectors = np.asarray(index.chunk_vectors(ids))
    else:
        from knowledge.vectors import reconstruct

        chunk_vectors = reconstruct(index.vectors, ids)
    sentence_vectors = np.vstack([index.sentence_vectors(c) for c in chunks])
    return [c.text for c in chunks], chunk_vectors, sentence_vectors


def few_articles(folder: Path) -> Path:
    """The small test articles and three bundled ones, in one folder."""
    write_articles(folder)
    (folder / "bundled").mkdir()
    for name in REAL_ARTICLES:
        (folder / "bundled" / name).write_text((ARTICLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    return folder


# ---------------------------------------------------------------- without a cluster


def test_missing_ray_says_to_install_the_scale_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as without the extra
    with pytest.raises(RayUnavailableError, match=r"\[scale\]"):
        with ray_cluster(RaySettings()):
            pass
    code = main(["index", "build", str(write_articles(tmp_path / "a")), "--index", str(tmp_path / "i"), "--ray"])
    err = capsys.readouterr().err
    assert code != 0
    assert "pip install" in err and "[scale]" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize("address, said", [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
    ("no-such-host.invalid:6379", "cannot reach the Ray cluster at no-such-host.invalid:6379"),
    ("knowledge/articles", "is not HOST:PORT"),  # paths given after --ray are read as its address
])
def test_unreachable_or_malformed_address_is_one_line(address, said, tmp_path, capsys):
    code = main(["index", "build", str(write_articles(tmp_path / "a")), "--index", str(tmp_path / "i"),
                 "--ray", address])
    err = capsys.readouterr().err
    assert code != 0
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "i").exists()


def test_ray_settings_come_from_the_environment_and_are_checked():
    settings = Settings.from_env({"PATIENT_QA_RAY_WORKERS": "3", "PATIENT_QA_RAY_BATCH_SIZE": "32",
                                  "PATIENT_QA_RAY_ADDRESS": "10.0.0.5:6379"})
    assert settings.ray == RaySettings(address="10.0.0.5:6379", workers=3, batch_size=32, worker_threads=1)
    from knowledge.settings import SettingsError

    with pytest.raises(SettingsError, match="ray_workers must be at least 1"):
        Settings.from_env({"PATIENT_QA_RAY_WORKERS": "0"})


def test_answering_never_imports_ray():
    """`ask` and `chat` load these modules; `import ray` alone costs seconds, so none of them may pull it in."""
    code = ("import sys, ui.cli, ui.chat_command, qa.assistant, knowledge.index, knowledge.embedding, "
            "knowledge.ray_embedding; ui.cli.build_parser(); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_encode_outside_a_cluster_is_a_clear_error():
    import ray

    assert not ray.is_initialized()
    embedder = RayIngestion(RaySettings()).distribute(FakeEmbedder())
    with pytest.raises(RayClusterError, match="not initialised"):
        embedder.encode(["a text"])
    assert embedder.encode([]).shape == (0, FakeEmbedder.dimension)


@pytest.mark.slow
def test_a_node_without_the_drivers_export_uses_its_own(tmp_path):
    """On another machine the driver's export path does not exist: the node's own verified export gives the same vectors."""
    from knowledge.embedding import build_embedders
    from knowledge.ray_embedding import embedder_factory

    settings = Settings()
    local, export = build_embedders(settings.index.model, "auto", 1)
    assert export.get() is not None
    factory = embedder_factory(local, threads=1)
    away = replace_path(factory, tmp_path / "elsewhere" / "query_encoder.onnx")
    texts = ["What is CAR-T?", "Most people have a fever first, often in the first few days after the infusion."]
    np.testing.assert_allclose(away().encode(texts), local.encode(texts), atol=MAX_ABS_DIFF)


def replace_path(factory, path: Path):
    """The same actor factory with the export's path replaced, as a node that cannot read it would see it."""
    from functools import partial

    return partial(factory.func, str(path), *factory.args[1:])


# ---------------------------------------------------------------- on a local 2-worker cluster


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs for the module (starting one takes 10-30 s here)."""
    with ray_cluster(RaySettings(workers=2, worker_threads=1)) as ray:
        yield ray


@pytest.mark.slow
def test_actor_pool_keeps_the_order_of_the_texts(cluster, tmp_path):
    import kb_fixtures
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(kb_fixtures)  # the workers cannot import the tests' helpers
    texts = [f"sentence {i} about " + " ".join(["fever"] * (i % 7) + ["fatigue"] * (i % 5)) for i in range(300)]
    texts.reverse()  # not sorted by length or by number: any reordering in the pool would show
    embedder = RayIngestion(RaySettings(workers=2, batch_size=16)).distribute(FakeEmbedder())
    got = embedder.encode(texts, batch_size=8)
    assert got.shape == (300, FakeEmbedder.dimension)
    np.testing.assert_array_equal(got, FakeEmbedder().encode(texts))
    assert len(embedder.last_workers) == 2  # both actors took batches
    assert os.getpid() not in embedder.last_workers


@pytest.mark.slow
def test_ray_build_gives_the_vectors_of_a_plain_build(cluster, tmp_path):
    articles = few_articles(tmp_path / "articles")
    plain = Settings().updated(index_dir=tmp_path / "plain")
    distributed = Settings().updated(index_dir=tmp_path / "ray")
    build_index([articles], plain, progress=False)
    ingestion = RayIngestion(replace(distributed.ray, workers=2, batch_size=32))
    report = build_index([articles], distributed, embedder=ingestion, progress=False)

    assert report.documents == len(REAL_ARTICLES) + len(TEST_ARTICLES)
    texts_plain, chunks_plain, sentences_plain = library_vectors(tmp_path / "plain")
    texts_ray, chunks_ray, sentences_ray = library_vectors(tmp_path / "ray")
    assert texts_ray == texts_plain and len(texts_ray) > 20
    assert chunks_ray.shape == chunks_plain.shape and sentences_ray.shape == sentences_plain.shape
    assert float(np.abs(chunks_ray - chunks_plain).max()) <= MAX_ABS_DIFF
    assert float(np.abs(sentences_ray - sentences_plain).max()) <= MAX_ABS_DIFF
    assert ingestion.embedder is not None and len(ingestion.embedder.last_workers) == 2  # the vectors came from the two actors, not from this process
    # Questions are embedded with the same verified export, so `ask` answers from the Ray build as from the plain one.
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["query_encoder"] == json.loads((tmp_path / "plain" / "manifest.json").read_text())["query_encoder"]


@pytest.mark.slow
def test_cli_ray_build_starts_a_local_cluster(tmp_path):
    """`patient-qa index build --ray` on its own: a local cluster for the build, the same vectors as a plain build."""
    articles = few_articles(tmp_path / "articles")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PATIENT_QA_RAY_WORKERS": "2"}
    out = subprocess.run([sys.executable, "-m", "ui.cli", "index", "build", str(articles), "--index",
                          str(tmp_path / "ray"), "--json", "--ray"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["documents"] == len(REAL_ARTICLES) + len(TEST_ARTICLES)
    build_index([articles], Settings().updated(index_dir=tmp_path / "plain"), progress=False)
    texts_plain, chunks_plain, sentences_plain = library_vectors(tmp_path / "plain")
    texts_ray, chunks_ray, sentences_ray = library_vectors(tmp_path / "ray")
    assert texts_ray == texts_plain
    assert float(np.abs(chunks_ray - chunks_plain).max()) <= MAX_ABS_DIFF
    assert float(np.abs(sentences_ray - sentences_plain).max()) <= MAX_ABS_DIFF


def damaged_model():
    """An actor factory that fails as a missing or damaged model file does."""
    raise RuntimeError("the model file is damaged")


@pytest.mark.slow
def test_a_worker_that_cannot_load_the_model_fails_in_one_line(cluster):
    import ray.cloudpickle

    from knowledge.ray_embedding import RayEmbedder

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    embedder = RayEmbedder(FakeEmbedder(), RaySettings(workers=2), factory=damaged_model)
    with pytest.raises(RayClusterError, match="damaged") as failed:
        embedder.encode(["a text", "another text"])
    assert "\n" not in str(failed.value)

