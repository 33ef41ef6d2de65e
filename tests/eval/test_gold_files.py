"""Reading gold files in the dev and medquad shapes, and refusing bad lines with their line numbers."""

from __future__ import annotations

import pytest
from eval_fixtures import write_jsonl

from eval.gold import DEFAULT_GOLD, GoldFormatError, load_gold


def test_dev_shape_items_keep_kind_history_facts_and_expected_triage(tmp_path):
    path = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "f1", "kind": "followup", "question": "how long does it last?", "history": ["what is crs"],
         "facts": ["lasts"], "category": "followup", "gold_article": "crs"},
        {"id": "e1", "kind": "emergency", "question": "fever now after car t", "facts": [], "category": "safety"},
        {"id": "n1", "kind": "not_emergency", "question": "what fever is dangerous?", "facts": ["fever"]},
    ])
    gold = load_gold(path)
    assert gold.shape == "dev"
    follow, emergency, calm = gold.items
    assert follow.history == ("what is crs",) and follow.gold_article == "crs" and follow.scores_facts
    assert emergency.expected_triage == "emergency" and not emergency.scores_facts
    assert calm.expected_triage == "general" and not calm.scores_facts  # reported, not gated
    assert calm.category == "not_emergency"


def test_medquad_shape_items_become_answer_items_with_a_gold_answer(tmp_path):
    path = write_jsonl(tmp_path / "questions.jsonl", [
        {"id": "1-1", "question": "What is (are) Breast Cancer ?", "qtype": "information",
         "gold_article": "breast-cancer", "gold_answer": "Breast cancer is ..."},
    ])
    gold = load_gold(path)
    assert gold.shape == "medquad"
    item = gold.items[0]
    assert (item.kind, item.category, item.gold_article) == ("answer", "information", "breast-cancer")
    assert item.expected_triage == "general" and item.gold_answer == "Breast cancer is ..."


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "kind": "answer", "question": "ok?", "facts": ["x"]}\n'
        "not json\n"
        '{"id": "b", "kind": "panic", "question": "q"}\n'
        '{"id": "c", "kind": "answer", "question": "q", "facts": ["(unclosed"]}\n'
        '{"id": "d", "kind": "answer", "question": ""}\n',
        encoding="utf-8",
    )
    with pytest.raises(GoldFormatError) as err:
        load_gold(path)
    message = str(err.value)
    assert "4 bad line(s)" in message
    for expected in ("line 2:", "line 3: \"kind\" must be one of", "line 4: fact '(unclosed'",
                     'line 5: needs a non-empty "question"'):
        assert expected in message


def test_a_repeated_id_is_scored_under_a_new_name_with_a_note(tmp_path):
    path = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "q", "question": "What is X ?", "gold_article": "x", "gold_answer": "X is"},
        {"id": "q", "question": "What is X ?", "gold_article": "x", "gold_answer": "X is also"},
    ])
    gold = load_gold(path)
    assert [i.id for i in gold.items] == ["q", "q#2"]
    assert gold.notes == ("line 2: repeated id 'q' scored as 'q#2'",)


def test_a_missing_or_empty_gold_file_says_what_to_do(tmp_path):
    with pytest.raises(GoldFormatError, match="--gold"):
        load_gold(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(GoldFormatError, match="no gold items"):
        load_gold(tmp_path / "empty.jsonl")


def test_the_default_gold_set_loads_with_every_kind():
    gold = load_gold(DEFAULT_GOLD)
    kinds = {item.kind for item in gold.items}
    assert kinds == {"answer", "followup", "emergency", "not_emergency", "defer", "out_of_scope"}
    assert len(gold.items) >= 150


def test_uncovered_topic_sets_are_split_by_writer():
    """The sealed uncovered-topic questions come from writers whose questions were never tuned on (u3, u4)."""
    from pathlib import Path

    dev = load_gold(Path(DEFAULT_GOLD).with_name("uncovered-dev.jsonl")).items
    sealed = load_gold(Path(DEFAULT_GOLD).with_name("uncovered-sealed.jsonl")).items
    assert len(dev) >= 40 and len(sealed) >= 40
    assert all(i.kind == "abstain" and i.topic_terms for i in dev)
    assert all(i.kind == "abstain" and i.topic_terms for i in sealed)
    assert {i.writer for i in dev}.isdisjoint({i.writer for i in sealed})


def test_the_blind_answer_questions_are_split_by_writer_and_name_their_facts():
    """`answers-dev.jsonl` (writers a3, a4) is for tuning; `answers-sealed.jsonl` (a1, a2) is measured once after a
    change, never tuned on. All four saw only the articles. Each fact must be in its gold article's body (front matter
    is never quoted), or the split would score a miss the articles cannot fix."""
    import re
    from pathlib import Path

    from knowledge.loaders import split_front_matter
    from knowledge.settings import Settings
    from knowledge.text import squash_whitespace

    dev = load_gold(Path(DEFAULT_GOLD).with_name("answers-dev.jsonl")).items
    sealed = load_gold(Path(DEFAULT_GOLD).with_name("answers-sealed.jsonl")).items
    assert len(dev) == 67 and {i.writer for i in dev} == {"a3", "a4"}
    assert len(sealed) == 69 and {i.writer for i in sealed} == {"a1", "a2"}
    assert all(i.kind == "answer" and i.facts for i in (*dev, *sealed))
    for item in (*dev, *sealed):
        _, body = split_front_matter((Settings().articles / f"{item.gold_article}.md").read_text(encoding="utf-8"))
        assert all(re.search(fact, squash_whitespace(body), re.I) for fact in item.facts), item.id


def test_no_question_is_in_two_gold_files():
    """Two writers can land on the same words: a question in a tuning file and in a sealed one would be tuned on."""
    import re
    from pathlib import Path

    def asked(name: str) -> set[str]:
        items = load_gold(Path(DEFAULT_GOLD).with_name(name)).items
        return {re.sub(r"\W+", " ", i.question.lower()).strip() for i in items}

    files = ["default.jsonl", "new-topics.jsonl", "answers-dev.jsonl", "answers-sealed.jsonl"]
    for n, first in enumerate(files):
        for second in files[n + 1:]:
            assert not asked(first) & asked(second), (first, second)
