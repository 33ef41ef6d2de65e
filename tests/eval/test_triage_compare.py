"""`patient-qa triage compare`: both models are judged on the same messages, each by a model that never saw their
writer, and the figures count what a person would see (an alarm, the crisis message, a referral)."""

from __future__ import annotations

import numpy as np
import pytest
from eval_fixtures import fake_triage_embed as fake_embed

from eval.gold import GoldItem
from eval.triage_compare import Outcome, compare, decide_all, figures
from eval.triage_train import design, examples_from, fit_heads, model_from
from qa.triage_model import Thresholds

CALM = ["what is car-t?", "how long does manufacturing take?", "what does a caregiver do?", "what is a bispecific?",
        "is gel nail polish ok on keytruda?", "can i go camping this summer after car-t?"]
URGENT = ["my temp is 39.1 and i am shaking, day 4 after yescarta", "he is confused and cannot talk right now",
          "she had a seizure just now", "i can't breathe tonight, cells were last week"]
CRISIS = ["i want to die", "i don't want to wake up anymore", "saving my pills to end it"]
DEFER = ["should i skip my next keytruda dose?", "should i stop my steroids?", "is car-t right for me?"]
ELSEWHERE = ["what is a good pizza recipe?", "how do i fix my wifi?", "write me a poem about cats"]


def item(writer: str, i: int, kind: str, question: str) -> GoldItem:
    return GoldItem(id=f"{writer}-{i}", question=question, kind=kind, writer=writer)


def corpus(writers: int) -> list[GoldItem]:
    """Every writer words the same messages; the last one also uses a code word ('zorblax') only it calls urgent."""
    out = []
    for w in range(writers):
        name = f"w{w}"
        texts = ([("answer", q) for q in CALM] + [("emergency", q) for q in URGENT] + [("self_harm", q) for q in CRISIS]
                 + [("defer", q) for q in DEFER] + [("out_of_scope", q) for q in ELSEWHERE])
        out += [item(name, i, kind, q + (f" ({name})" if kind == "answer" else "")) for i, (kind, q) in enumerate(texts)]
    out += [item("w9", 100 + i, "emergency", f"zorblax zorblax number {i}") for i in range(6)]
    out += [item("w9", 200 + i, "answer", f"what is step {i} of car-t?") for i in range(6)]
    return out


def test_figures_count_alarms_on_calm_messages_and_everyday_questions_sent_to_the_care_team():
    outcomes = [Outcome("a", "w1", "answer", "emergency", False, ()), Outcome("b", "w1", "not_emergency", "general", True, ()),
                Outcome("c", "w1", "answer", "defer", False, ()), Outcome("d", "w1", "emergency", "emergency", True, ()),
                Outcome("e", "w1", "self_harm", "emergency", False, ()), Outcome("f", "w1", "defer", "defer", False, ())]
    f = figures(outcomes)
    assert f.calm_alarm == (2, 4)  # the alarm and the crisis message on a look-alike; the defer counts as calm
    assert f.general_deferred == (1, 2)
    assert f.emergency == (1, 1) and f.self_harm == (0, 1) and f.defer == (1, 1)


@pytest.fixture(scope="module")
def shipped():
    """A 'shipped' model trained on writers w0-w2 only (w3 and w9 come later)."""
    examples = sorted(examples_from([i for i in corpus(3)]), key=lambda e: e.item_id)
    examples = [e for e in examples if e.writer != "w9"]
    rows = design(examples, fake_embed)
    fitted = fit_heads(examples, rows)
    model = model_from(fitted, Thresholds(0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.75, 0.75, 0.25), "fake")
    model.meta = {"trained_on": {"writers": ["w0", "w1", "w2"]}}
    return model


def test_both_models_are_judged_on_the_same_messages_by_models_that_never_saw_their_writer(shipped):
    examples = sorted(examples_from(corpus(4)), key=lambda e: e.item_id)
    outside = examples_from([item("x1", i, "answer", q) for i, q in enumerate(CALM)])
    result = compare(examples, fake_embed, shipped, external=outside)
    assert result.unseen == ("w3", "w9")
    assert [o.item_id for o in result.baseline] == [o.item_id for o in result.candidate] == [e.item_id for e in examples]
    # w9's code word is an emergency only in w9's own messages: a model that had seen w9 would flag it.
    code_word = [o for o in result.candidate if o.writer == "w9" and o.kind == "emergency"]
    assert not any(o.decided == "emergency" for o in code_word)
    # Writers the shipped model never saw are decided by the shipped model itself, as a user would meet it.
    unseen = [e for e in examples if e.writer in result.unseen]
    direct = decide_all(unseen, lambda writer: shipped, fake_embed)
    assert [(o.item_id, o.decided, o.crisis) for o in direct] == [
        (o.item_id, o.decided, o.crisis) for o in result.baseline if o.writer in result.unseen]
    table = result.table()
    assert set(table) == {"all writers", "unseen by shipped", "seen by shipped", "other messages, untrained"}
    assert table["other messages, untrained"]["candidate"].general_deferred[1] == len(CALM)
    new = table["unseen by shipped"]["baseline"]
    assert new.emergency[1] == len(URGENT) + 6 and new.self_harm[1] == len(CRISIS)
    # The crisis lexicon runs first on both sides, whatever the model.
    assert table["all writers"]["baseline"].self_harm == table["all writers"]["candidate"].self_harm == (12, 12)


def test_a_model_fitted_with_the_writer_would_have_flagged_the_code_word():
    """The control for the test above: the code word is learnable, so held-out really means held out."""
    examples = sorted(examples_from(corpus(4)), key=lambda e: e.item_id)
    rows = design(examples, fake_embed)
    model = model_from(fit_heads(examples, rows), Thresholds(0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.75, 0.75, 0.25))
    from qa.triage_features import normalise

    text = "zorblax zorblax number 3"
    assert model.scores(normalise(text), fake_embed([text])[0]).emergency >= 0.5
    assert np.isfinite(model.bias).all()


def test_the_command_names_a_missing_model_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-m", "ui.cli", "triage", "compare", "--model", str(tmp_path / "none.npz")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"patient-qa: triage model not found at {tmp_path / 'none.npz'}; run 'patient-qa triage train' "
        "(or 'make triage-model') to rebuild it"]
