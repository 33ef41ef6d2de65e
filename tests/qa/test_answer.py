"""`qa.answer` on a small fake store: sentence scoring, neighbours, dedup and the abstain boundaries (no model)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fake_store import QUERY_VECTOR, FakeStore, S, retrieved

from knowledge.settings import AnswerSettings
from qa.answer import compose, dedupe_overlaps, score_sentences
from qa.decide import is_weak
from qa.types import Quote

DEFAULTS = AnswerSettings()
W = DEFAULTS.weights


def _scores(result, store, query: str) -> dict[str, float]:
    return {c.text: c.score for c in score_sentences(result, store, query)}


# ---------------------------------------------------------------- scoring


def test_a_sentence_score_is_the_weighted_sum_of_its_evidence() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["What is CRS?"], [S("Cytokine release syndrome causes fever and chills.", 0.8)])
    [candidate] = score_sentences(retrieved(chunk, dense=0.5), store, "what causes fever")
    # cosine, chunk cosine, all question words present, rank 0; the heading shares no question word
    expected = W.sentence * 0.8 + W.chunk * 0.5 + W.overlap * 1.0 + W.rank / 1
    assert candidate.score == pytest.approx(expected, abs=1e-6)
    assert candidate.cosine == pytest.approx(0.8, abs=1e-6)


def test_a_heading_that_shares_the_question_adds_its_bonus() -> None:
    store = FakeStore()
    plain = store.add("a", ["Overview"], [S("Most people go home within two weeks.", 0.6)])
    titled = store.add("b", ["Going home"], [S("Most people go home within two weeks.", 0.6)])
    query = "going home"  # both words are in the sentences too, so only the heading differs
    gap = _scores(retrieved(titled), store, query)["Most people go home within two weeks."] \
        - _scores(retrieved(plain), store, query)["Most people go home within two weeks."]
    assert gap == pytest.approx(W.heading, abs=1e-6)


def test_text_before_the_first_heading_is_penalised() -> None:
    store = FakeStore()
    intro = store.add("guide", [], [S("This guide explains the whole treatment.", 0.7)])
    body = store.add("guide", ["Overview"], [S("This guide explains the whole treatment.", 0.7)], position=1)
    text = "This guide explains the whole treatment."
    gap = _scores(retrieved(body), store, "zzz")[text] - _scores(retrieved(intro), store, "zzz")[text]
    assert gap == pytest.approx(W.intro, abs=1e-6)


def test_a_sentence_with_the_kind_of_answer_asked_for_gets_the_bonus() -> None:
    store = FakeStore()
    chunk = store.add("stay", ["Staying close"], [S("You stay about 2 weeks near the center.", 0.6),
                                                  S("You stay near the center with a caregiver.", 0.6)])
    scores = _scores(retrieved(chunk), store, "how long will I stay")
    gap = scores["You stay about 2 weeks near the center."] - scores["You stay near the center with a caregiver."]
    assert gap == pytest.approx(W.answer_type, abs=1e-6)


@pytest.mark.parametrize(("question", "answer", "other"), [
    # "is it forever" is answered by whether it lasts, not by how common it is
    ("opdivo wrecked my thyroid, is it forever", "Thyroid problems from checkpoint inhibitors may be permanent.",
     "Thyroid problems from checkpoint inhibitors are common with nivolumab."),
    ("will the nerve damage go away", "Nerve problems after CAR-T often improve over months.",
     "Nerve problems after CAR-T were seen with one product."),
    # "how rare" asks for a rate
    ("how rare is it", "HLH happened in about 4 in 100 people.", "HLH is a severe overreaction of the immune system."),
    # "too old" is answered by ages, not by the word "older" about something else
    ("im 78, am i too old for car t", "People in their 70s and 80s have received CAR-T.",
     "Older salvage chemotherapy for lymphoma worked less often than CAR-T."),
])
def test_the_sentence_with_the_kind_of_answer_asked_for_is_quoted_first(question: str, answer: str,
                                                                          other: str) -> None:
    store = FakeStore()
    chunk = store.add("doc", ["Answer"], [S(other, 0.62), S(answer, 0.60)])
    quotes = compose(retrieved(chunk), store, question, replace(DEFAULTS, max_quotes=1)).quotes
    assert answer in quotes[0].text and other not in quotes[0].text


def test_fragments_questions_and_question_lists_are_not_quoted_unless_questions_are_asked_for() -> None:
    store = FakeStore()
    body = store.add("crs", ["Treatment"], [S("Fever and chills.", 0.9), S("Is CRS serious for most people?", 0.9),
                                            S("Doctors treat CRS with tocilizumab.", 0.5)])
    asks = store.add("crs", ["Questions to ask"], [S("Which signs should make me call you?", 0.9)], position=1)
    answers = _scores(retrieved(body, asks), store, "how is CRS treated")
    assert list(answers) == ["Doctors treat CRS with tocilizumab."]
    wanted = _scores(retrieved(body, asks), store, "what questions should I ask about CRS")
    assert "Which signs should make me call you?" in wanted and "Is CRS serious for most people?" in wanted


# ---------------------------------------------------------------- choosing


def test_at_most_three_articles_and_the_margin_bound_the_quotes() -> None:
    store = FakeStore()
    chunks = [store.add(f"doc-{i}", ["Answer"], [S(f"Answer number {i} says something useful.", 0.9 - 0.01 * i)])
              for i in range(4)]
    weak = store.add("doc-weak", ["Answer"], [S("A loosely related sentence about something.", 0.4)])
    composition = compose(retrieved(*chunks, weak), store, "zzz")
    assert [q.article for q in composition.quotes] == ["doc-0", "doc-1", "doc-2"]
    two = compose(retrieved(*chunks), store, "zzz", replace(DEFAULTS, max_quotes=2))
    assert [q.article for q in two.quotes] == ["doc-0", "doc-1"]


def test_the_same_point_made_twice_is_quoted_once() -> None:
    store = FakeStore()
    first = store.add("a", ["Stay"], [S("Plan to stay near the center for about four weeks.", 0.9, point=7)])
    again = store.add("b", ["Stay"], [S("Most centers ask you to stay close for four weeks.", 0.89, point=7)])
    other = store.add("c", ["Stay"], [S("A caregiver must stay with you the whole time.", 0.88)])
    articles = [q.article for q in compose(retrieved(first, again, other), store, "zzz").quotes]
    assert articles == ["a", "c"]


def _leaning_on(store: FakeStore, chunk, other, similarity: float) -> None:
    """Give `chunk`'s one sentence this cosine to `other`'s sentence, keeping its cosine to the question."""
    e0, base, mine = QUERY_VECTOR, store.vectors[other.chunk_id][0], store.vectors[chunk.chunk_id][0]
    cosine = float(mine @ e0)
    theirs = base - float(base @ e0) * e0
    theirs /= np.linalg.norm(theirs)
    own = mine - float(mine @ e0) * e0
    own -= float(own @ theirs) * theirs
    own /= np.linalg.norm(own)
    along = (similarity - cosine * float(base @ e0)) / float(base @ theirs)
    vector = cosine * e0 + along * theirs + math.sqrt(1 - cosine ** 2 - along ** 2) * own
    store.vectors[chunk.chunk_id] = vector[None, :].astype(np.float32)


def test_a_second_sentence_of_an_article_that_repeats_the_first_gives_way_to_one_that_adds_a_point() -> None:
    store = FakeStore()
    first = store.add("stay", ["Stay"], [S("Plan to stay near the center for about two weeks.", 0.80)])
    repeat = store.add("stay", ["Stay"], [S("You stay close to the center for two weeks or so.", 0.79)], position=1)
    adds = store.add("stay", ["Driving"], [S("You cannot drive for eight weeks after the infusion.", 0.785)],
                     position=2)
    _leaning_on(store, repeat, first, 0.93)  # close, but under same_point: not dropped as the same point
    assert float(store.vectors[repeat.chunk_id][0] @ store.vectors[first.chunk_id][0]) == pytest.approx(0.93, abs=1e-5)
    assert float(store.vectors[repeat.chunk_id][0] @ QUERY_VECTOR) == pytest.approx(0.79, abs=1e-6)
    result = retrieved(first, repeat, adds)
    two = replace(DEFAULTS, max_quotes=2)
    quoted = " ".join(q.text for q in compose(result, store, "zzz", two).quotes)
    assert "cannot drive" in quoted and "two weeks or so" not in quoted
    plain = replace(two, weights=replace(W, redundancy=0.0))  # without the penalty the repeat wins on its score
    assert "two weeks or so" in " ".join(q.text for q in compose(result, store, "zzz", plain).quotes)


def test_a_sentence_in_two_overlapping_chunks_is_quoted_once_from_the_copy_with_its_next_sentence() -> None:
    store = FakeStore()
    shared = "Tocilizumab is the usual first treatment for CRS."
    ending = store.add("crs", ["Treatment"], [S("CRS is treated in hospital.", 0.2), S(shared, 0.9, point=5)])
    opening = store.add("crs", ["Treatment"], [S(shared, 0.9, point=5), S("Steroids are added if needed.", 0.8)],
                        position=1)
    quotes = compose(retrieved(ending, opening), store, "zzz").quotes
    assert [q.chunk_id for q in quotes] == [opening.chunk_id]
    assert quotes[0].text == f"{shared} Steroids are added if needed."


def test_overlapping_quotes_of_one_article_keep_the_longer() -> None:
    def quote(text: str, article: str = "a") -> Quote:
        return Quote(text=text, article=article, title="A", section="S", url="", source_path="/a.md", score=1.0)

    short, long = quote("Fever is common."), quote("CRS starts early. Fever is  common.")
    assert dedupe_overlaps([short, long]) == (long,)
    assert dedupe_overlaps([long, short]) == (long,)
    assert dedupe_overlaps([short, quote("Fever is common.", article="b")]) == (short, quote("Fever is common.", "b"))


# ---------------------------------------------------------------- neighbours


def _quoted(store: FakeStore, *chunks, query: str = "zzz") -> list[str]:
    return [q.text for q in compose(retrieved(*chunks), store, query).quotes]


def test_a_sentence_starting_with_it_brings_the_sentence_it_refers_to() -> None:
    store = FakeStore()
    chunk = store.add("car-t", ["What is CAR-T?"], [S("CAR-T is made from your own immune cells.", 0.2),
                                                    S("It is given once as a drip into a vein.", 0.9)])
    assert _quoted(store, chunk) == [chunk.text]
    plain = FakeStore()
    alone = plain.add("car-t", ["What is CAR-T?"], [S("CAR-T is made from your own immune cells.", 0.2),
                                                    S("The cells are given once as a drip.", 0.9)])
    assert _quoted(plain, alone) == ["The cells are given once as a drip."]


def test_a_sentence_ending_in_a_colon_brings_up_to_six_list_items() -> None:
    store = FakeStore()
    items = [S(f"Item number {i} of the symptom list.", 0.1) for i in range(1, 9)]
    chunk = store.add("crs", ["Symptoms"], [S("The symptoms of CRS can include:", 0.9), *items])
    [quote] = _quoted(store, chunk)
    assert quote.startswith("The symptoms of CRS can include:")
    assert "Item number 6 " in quote and "Item number 7" not in quote


def test_a_neighbour_that_opens_a_list_brings_its_list_so_no_quote_ends_on_a_colon() -> None:
    store = FakeStore()
    items = [S(f"Item number {i} is a reason to call 911.", 0.1) for i in range(1, 9)]
    # The list's opening sentence is not chosen itself: it comes as the second sentence of the section's best one.
    chunk = store.add("red-flags", ["When should I call 911?"],
                      [S("Call 911 for any symptom that feels life-threatening.", 0.9),
                       S("Call 911 right away for any of these:", 0.2), *items], section_start=True)
    [quote] = _quoted(store, chunk)
    assert quote.startswith("Call 911 for any symptom that feels life-threatening. Call 911 right away for any of these:")
    assert "Item number 6 " in quote and "Item number 7" not in quote


@pytest.mark.parametrize(("next_cosine", "kept"), [(0.45, True), (0.35, False)])
def test_the_next_sentence_is_kept_when_it_scores_within_the_neighbour_weight_of_the_best(
        next_cosine: float, kept: bool) -> None:
    # the score gap is 0.4 * (0.9 - next_cosine): 0.18 is inside the 0.20 neighbour window, 0.22 is not;
    # both are outside the 0.15 margin, so the next sentence is never chosen on its own
    store = FakeStore()
    chunk = store.add("crs", ["Treatment"], [S("Tocilizumab treats CRS quickly in most people.", 0.9),
                                             S("Steroids are added when it is severe.", next_cosine)])
    expected = chunk.text if kept else "Tocilizumab treats CRS quickly in most people."
    assert _quoted(store, chunk) == [expected]


@pytest.mark.parametrize("opens_section", [True, False])
def test_the_best_sentence_opening_a_section_brings_its_second(opens_section: bool) -> None:
    store = FakeStore()
    chunk = store.add("stay", ["How long do I stay?"], [S("Most people stay close for four weeks.", 0.9),
                                                        S("Your team tells you when to leave.", 0.1)],
                      section_start=opens_section)
    assert _quoted(store, chunk) == [chunk.text if opens_section else "Most people stay close for four weeks."]


def test_quotes_of_one_article_follow_the_document_order() -> None:
    store = FakeStore()
    later = store.add("crs", ["Treatment"], [S("Tocilizumab is given through a vein.", 0.9)], position=3)
    earlier = store.add("crs", ["Symptoms"], [S("Fever is usually the first sign of CRS.", 0.85)], position=1)
    assert _quoted(store, later, earlier) == ["Fever is usually the first sign of CRS.",
                                              "Tocilizumab is given through a vein."]


def test_a_quote_cites_its_page_and_the_source_path_stored_at_build_time_from_any_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    chunk = store.add("guide", ["Fever"], [S("Call the team about any fever.", 0.9)], page_start=3,
                      source_path="/srv/articles/guide.pdf")
    monkeypatch.chdir(tmp_path)
    here = compose(retrieved(chunk), store, "zzz").quotes
    monkeypatch.chdir("/")
    there = compose(retrieved(chunk), store, "zzz").quotes
    assert here == there and here[0].source_path == "/srv/articles/guide.pdf" and here[0].page == 3


def test_a_passage_across_a_page_break_is_quoted_as_one_quote_per_page() -> None:
    store = FakeStore()
    first, second = "Fever is the first sign of CRS in most people.", "Call the team about any fever right away."
    chunk = store.add("guide", ["Fever"], [S(first, 0.9), S(second, 0.85)], page_start=3,
                      source_path="/srv/articles/guide.pdf", page_breaks=((len(first) + 1, 4),))
    quotes = compose(retrieved(chunk), store, "zzz").quotes
    assert [(q.text, q.page) for q in quotes] == [(first, 3), (second, 4)]
    assert all(q.text in chunk.text for q in quotes)  # still verbatim


# ---------------------------------------------------------------- confidence and abstaining


def test_confidence_is_half_the_best_sentence_cosine_and_half_its_chunk_cosine() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["CRS"], [S("Cytokine release syndrome is a common reaction.", 0.8)])
    assert compose(retrieved(chunk, dense=0.6), store, "zzz").confidence == pytest.approx(0.7, abs=1e-6)


def test_the_abstain_boundary_is_the_threshold_itself() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["CRS"], [S("Cytokine release syndrome is a common reaction.", 0.3)])
    composition = compose(retrieved(chunk, dense=0.3), store, "zzz")
    at = composition.confidence
    assert not is_weak(composition, replace(DEFAULTS, abstain_threshold=at))
    assert is_weak(composition, replace(DEFAULTS, abstain_threshold=math.nextafter(at, 1.0)))
    assert is_weak(composition, DEFAULTS) is (at < DEFAULTS.abstain_threshold)


def test_a_threshold_of_zero_never_abstains_even_on_a_negative_confidence() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["CRS"], [S("Cytokine release syndrome is a common reaction.", -0.2)])
    composition = compose(retrieved(chunk, dense=-0.1), store, "zzz")
    assert composition.quotes and composition.confidence < 0
    assert is_weak(composition, DEFAULTS)
    assert not is_weak(composition, replace(DEFAULTS, abstain_threshold=0.0))


def test_quotes_sharing_no_informative_word_need_the_stronger_threshold() -> None:
    store = FakeStore(idf_weights={"hair": 4.0})
    chunk = store.add("side-effects", ["Side effects"], [S("Most people feel tired for a few weeks.", 0.5)])
    composition = compose(retrieved(chunk, dense=0.44), store, "will I lose my hair")
    assert not composition.shares_words and composition.confidence == pytest.approx(0.47, abs=1e-6)
    assert not is_weak(composition, DEFAULTS)  # 0.47 clears the 0.46 bar for quotes without shared words
    assert is_weak(composition, replace(DEFAULTS, no_shared_words_threshold=0.48))
    with_word = store.add("hair", ["Hair"], [S("Hair loss after the chemotherapy is usually short.", 0.5)])
    assert compose(retrieved(with_word, dense=0.44), store, "will I lose my hair").shares_words


def test_no_quotable_sentence_is_an_empty_composition_that_abstains() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["CRS"], [S("Fever and chills.", 0.9)])
    composition = compose(retrieved(chunk), store, "zzz")
    assert composition.quotes == () and composition.confidence == 0.0
    assert is_weak(composition, replace(DEFAULTS, abstain_threshold=0.0))


def test_the_answer_logic_does_not_depend_on_presentation() -> None:
    import ast

    for module in ("qa/answer.py", "qa/decide.py"):
        tree = ast.parse((Path(__file__).resolve().parents[2] / module).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {name for name in imported if name == "qa.render" or name.startswith("ui")}, module


# ---------------------------------------------------------------- question keys


KEYED = replace(DEFAULTS, weights=replace(W, keys=0.10))


def test_a_section_whose_question_keys_match_the_question_lifts_its_sentences_by_the_key_weight() -> None:
    store = FakeStore()
    asked = store.add("care", ["How much time does caregiving take?"], [S("Caregiving is a full-time job.", 0.6)])
    other = store.add("care", ["What does a caregiver do?"], [S("Caregiving is a full-time role.", 0.6)],
                      position=1)
    result = replace(retrieved(asked, other), key_scores={("care", "How much time does caregiving take?"): 0.9,
                                                          ("care", "What does a caregiver do?"): 0.4})
    scores = {c.text: c.score for c in score_sentences(result, store, "zzz", KEYED)}
    # same cosine, same words; only the sections' best key cosines differ (and the rank bonus, by 1/2)
    gap = scores["Caregiving is a full-time job."] - scores["Caregiving is a full-time role."]
    assert gap == pytest.approx(KEYED.weights.keys * (0.9 - 0.4) + W.rank * (1 - 1 / 2), abs=1e-6)


def test_the_sentence_quoted_comes_from_the_section_patients_ask_this_way() -> None:
    store = FakeStore()
    general = store.add("care", ["What does a caregiver do?"],
                        [S("A caregiver stays with you, drives you and watches for warning signs.", 0.60)])
    answer = store.add("care", ["Does the caregiver have to be there all the time?"],
                       [S("Someone must be with you day and night for the first four weeks.", 0.58)], position=1)
    result = retrieved(general, answer, dense=[0.5, 0.5])

    def best_quote(result) -> str:
        return max(compose(result, store, "zzz", KEYED).quotes, key=lambda q: q.score).text

    assert best_quote(result) == "A caregiver stays with you, drives you and watches for warning signs."
    keyed = replace(result, key_scores={("care", "What does a caregiver do?"): 0.35,
                                        ("care", "Does the caregiver have to be there all the time?"): 0.85})
    assert best_quote(keyed) == "Someone must be with you day and night for the first four weeks."


def test_without_question_keys_the_scores_do_not_change() -> None:
    store = FakeStore()
    chunk = store.add("crs", ["What is CRS?"], [S("Cytokine release syndrome causes fever and chills.", 0.8)])
    intro = store.add("crs", [], [S("This guide explains cytokine release syndrome.", 0.7)])
    plain = _scores(retrieved(chunk, intro), store, "what causes fever")
    keyed = {c.text: c.score for c in score_sentences(retrieved(chunk, intro), store, "what causes fever", KEYED)}
    assert keyed == pytest.approx(plain)
