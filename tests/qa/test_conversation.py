"""Follow-ups are rewritten from the history; new questions are left alone."""

from __future__ import annotations

from knowledge.glossary import load_glossary
from knowledge.settings import DEFAULT_GLOSSARY
from qa.conversation import rewrite_query, user_turns

GLOSSARY = load_glossary(DEFAULT_GLOSSARY)


def names(text: str) -> list[str]:
    return [m.name for m in GLOSSARY.find(text)]


def test_vague_follow_up_takes_the_topic_of_the_earlier_question() -> None:
    query = rewrite_query("how long does it last?", ["What is cytokine release syndrome?"], names)
    assert query == "how long does it last? (cytokine release syndrome)"


def test_chained_follow_ups_keep_the_first_subject() -> None:
    query = rewrite_query("does it ever go away", ["what is b cell aplasia", "why does car t cause it"], names)
    assert "b cell aplasia" in query


def test_connector_follow_up_with_its_own_topic_still_uses_the_history() -> None:
    query = rewrite_query("and for myeloma?", ["which car t products are approved for lymphoma"], names)
    assert query == "which car t products are approved for myeloma"


def test_a_connector_follow_up_after_a_statement_asks_about_its_subject_instead_of_rewriting_it() -> None:
    # Swapping "side effects" into "my mom is getting carvykti for her myeloma" searched "carvykti for her side
    # effects" and lost the myeloma; after a statement there is no question to ask again.
    query = rewrite_query("what about the side effects", ["my mom is getting carvykti for her myeloma in may"], names)
    assert query.startswith("what about the side effects")
    assert "carvykti" in query and "myeloma" in query


def test_unrelated_new_question_is_left_alone() -> None:
    question = "What does tocilizumab do?"
    assert rewrite_query(question, ["how long is the hospital stay after car t"], names) == question


def test_no_history_means_no_rewrite() -> None:
    assert rewrite_query("how is it treated?", [], names) == "how is it treated?"


def test_history_accepts_strings_messages_and_pairs() -> None:
    messages = [{"role": "user", "content": "what is ICANS"}, {"role": "assistant", "content": "quote"}]
    assert user_turns(messages) == ["what is ICANS"]
    assert user_turns([("what is CRS", "answer")]) == ["what is CRS"]
    gradio6 = [{"role": "user", "content": [{"type": "text", "text": "what is CRS"}]}]
    assert user_turns(gradio6) == ["what is CRS"]
    assert user_turns(["  what is CRS  ", ""]) == ["what is CRS"]
