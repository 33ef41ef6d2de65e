"""Question keys as vectors: grouped by section, matched against a question, fused into retrieval (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from fake_store import DIMENSION, QUERY_VECTOR, FakeStore, S

from knowledge.question_key_vectors import QuestionKey, QuestionKeyVectors, document_question_keys
from knowledge.settings import Settings
from qa.question_keys import section_keys
from qa.retrieval import Retriever


def _unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_keys_come_from_the_front_matter_questions_of_each_document() -> None:
    meta = {"questions": {"Can I drive?": ["can i drive after car t", "  ", "when can my wife drive again"]},
            "title": "Driving"}
    assert document_question_keys(meta) == (("Can I drive?", "can i drive after car t"),
                                            ("Can I drive?", "when can my wife drive again"))
    assert document_question_keys({"title": "no keys"}) == ()
    assert document_question_keys({"questions": "not a mapping"}) == ()


def test_a_section_scores_its_best_key_and_its_chunks_rank_by_it() -> None:
    store = FakeStore()
    drive = store.add("life", ["Can I drive?"], [S("Do not drive for 8 weeks.", 0.5)])
    drive_more = store.add("life", ["Can I drive?"], [S("Ask before driving again.", 0.5)], position=1)
    swim = store.add("life", ["Can I swim?"], [S("Avoid lakes and pools for now.", 0.5)], position=2)
    keys = QuestionKeyVectors(
        (QuestionKey("life", "Can I drive?", "can i drive"),
         QuestionKey("life", "Can I drive?", "when can i get behind the wheel"),
         QuestionKey("life", "Can I swim?", "can i swim"), QuestionKey("life", "Gone heading", "no chunk has it")),
        np.vstack([_unit(1, 0, 0), _unit(0.6, 0.8, 0), _unit(0, 0, 1), _unit(1, 0, 0)]),
    )
    sections = section_keys(keys, store.chunks.values())
    scores = sections.section_scores(_unit(0.6, 0.8, 0.1))
    assert set(scores) == {("life", "Can I drive?"), ("life", "Can I swim?")}  # the heading no chunk has is gone
    assert scores[("life", "Can I drive?")] == pytest.approx(float(_unit(0.6, 0.8, 0) @ _unit(0.6, 0.8, 0.1)))
    ranked = [chunk_id for chunk_id, _ in sections.ranked_chunks(scores, depth=3)]
    assert ranked == [drive.chunk_id, drive_more.chunk_id, swim.chunk_id]
    assert [c for c, _ in sections.ranked_chunks(scores, depth=1)] == [drive.chunk_id]


def test_no_stored_keys_score_no_section() -> None:
    store = FakeStore()
    store.add("life", ["Can I drive?"], [S("Do not drive for 8 weeks.", 0.5)])
    sections = section_keys(QuestionKeyVectors.empty(DIMENSION), store.chunks.values())
    assert sections.section_scores(_unit(1, 0, 0)) == {}


class _QueryEmbedder:
    """Every question embeds as the fake store's query vector."""

    def encode_query(self, text: str) -> np.ndarray:
        return QUERY_VECTOR


def test_the_key_channel_brings_the_section_patients_ask_this_way_into_retrieval() -> None:
    store = FakeStore()
    store.add("hepatitis", ["Why can viruses wake up?"], [S("A sleeping virus can wake up while immunity is low.", 0.7)])
    pets = store.add("pets", ["Where should my pet rest?"], [S("Give your animal its own basket in another room.", 0.2)])
    store.key_vectors = QuestionKeyVectors((QuestionKey("pets", "Where should my pet rest?", "can my dog sleep in my bed"),),
                                           QUERY_VECTOR[None, :].copy())

    def retrieve(key_weight: float):
        settings = Settings().updated(search_depth=1, key_weight=key_weight, key_added=0).retrieval
        return Retriever(store, _QueryEmbedder(), settings=settings).retrieve("can my dog sleep in my bed", k=3)

    assert [h.chunk.doc_id for h in retrieve(0.0).chunks] == ["hepatitis"]  # dense search's one hit
    keyed = retrieve(1.0)
    assert pets.chunk_id in [h.chunk.chunk_id for h in keyed.chunks]
    assert keyed.key_scores == {("pets", "Where should my pet rest?"): pytest.approx(1.0)}  # the prior's input


def test_a_section_asked_this_way_is_added_after_the_found_chunks_which_keep_their_ranks() -> None:
    store = FakeStore()
    store.add("hepatitis", ["Why can viruses wake up?"], [S("A sleeping virus can wake up while immunity is low.", 0.7)])
    pets = store.add("pets", ["Where should my pet rest?"], [S("Give your animal its own basket in another room.", 0.2)])
    near = QUERY_VECTOR.copy()
    near[1] = 1.0  # cosine 0.71 to the question
    store.key_vectors = QuestionKeyVectors(
        (QuestionKey("pets", "Where should my pet rest?", "can my dog sleep in my bed"),), (near / np.linalg.norm(near))[None, :])

    def retrieve(**overrides):
        settings = Settings().updated(search_depth=1, **{"key_added": 0, **overrides}).retrieval
        return Retriever(store, _QueryEmbedder(), settings=settings).retrieve("can my dog sleep in my bed", k=1)

    plain = retrieve()
    added = retrieve(key_added=1, key_floor=0.6)
    assert [(h.chunk.doc_id, h.rank) for h in added.chunks] == [(plain.chunks[0].chunk.doc_id, 0), ("pets", 1)]
    assert added.chunks[0] == plain.chunks[0]  # the found chunk keeps its rank and scores
    assert added.chunks[1].dense == pytest.approx(float(store.chunk_vectors([pets.chunk_id])[0] @ QUERY_VECTOR))
    assert [h.chunk.doc_id for h in retrieve(key_added=1, key_floor=0.8).chunks] == ["hepatitis"]  # below the floor
