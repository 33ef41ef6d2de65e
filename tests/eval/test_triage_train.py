"""`patient-qa triage train` on a tiny corpus with a stand-in embedding: files written, loadable, reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_fixtures import fake_triage_embed

from eval.triage_train import TrainingError, train
from qa import safety
from qa.triage_model import load_model

MESSAGES = {
    "emergency": ["my temp is 39.1 and I am shaking, day 4 after yescarta", "he is confused and cannot talk right now",
                  "she had a seizure just now", "I can't breathe tonight, cells were last week",
                  "fiebre de 39 ahora mismo", "black stool and belly pain since this morning on opdivo"],
    "self_harm": ["I want to die", "I don't want to wake up anymore", "no quiero vivir",
                  "saving my pills to end it"],
    "lookalike": ["what temperature is a fever after car-t?", "last year I had a seizure, can it come back?",
                  "my friend had CRS in the hospital", "37.2 today and I feel fine", "the wait is killing me",
                  "how common is confusion after car-t?"],
    "defer": ["should I skip my next keytruda dose?", "can I take ibuprofen?", "is car-t right for me?",
              "should I stop my steroids?"],
    "out_of_scope": ["what is a good pizza recipe?", "who won the football game?", "how do I fix my wifi?",
                     "write me a poem about cats"],
    "general": ["what is car-t?", "how long does manufacturing take?", "what does a caregiver do?",
                "what is a bispecific antibody?"],
}


fake_embed = fake_triage_embed  # a unit vector from the text's hash (deterministic, no model)


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "triage"
    folder.mkdir()
    lines = []
    for label, messages in MESSAGES.items():
        for i, message in enumerate(messages):
            writer = f"w{i % 3}"
            lines.append(json.dumps({"id": f"{label}-{i}", "writer": writer, "label": label, "family": "",
                                     "lang": "en", "message": message, "history": []}))
    lines.append(json.dumps({"id": "conv-1", "writer": "w1", "label": "emergency", "family": "fever", "lang": "en",
                             "message": "101.6 this time", "history": ["she had kymriah last week"]}))
    (folder / "dev.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.slow
def test_training_writes_a_loadable_model_and_is_reproducible(corpus, tmp_path):
    outputs = []
    for run in ("a", "b"):
        weights, meta = tmp_path / f"{run}.npz", tmp_path / f"{run}.json"
        summary = train(fake_embed, "all-MiniLM-L6-v2", weights, meta, corpus_dir=corpus,
                        dev_gold=tmp_path / "absent.jsonl")
        outputs.append((weights, meta, summary))
    (wa, ma, sa), (wb, mb, _) = outputs
    with np.load(wa) as a, np.load(wb) as b:
        assert all(np.array_equal(a[k], b[k]) for k in ("dense", "ngrams", "bias"))
    assert json.loads(ma.read_text()) == json.loads(mb.read_text())
    assert sa["trained_on"]["messages"] == sum(len(v) for v in MESSAGES.values()) + 1
    model = load_model(wa, ma)
    decision = safety.triage("I want to die", embed=lambda t: fake_embed([t])[0], model=model)
    assert decision.self_harm


def test_training_without_a_corpus_says_where_it_belongs(tmp_path):
    with pytest.raises(TrainingError, match="no triage corpus"):
        train(fake_embed, "all-MiniLM-L6-v2", tmp_path / "m.npz", tmp_path / "m.json", corpus_dir=tmp_path)


def test_one_self_harm_message_the_head_cannot_see_does_not_put_the_crisis_message_on_everything():
    """The recall target would follow a held-out self-harm message scored 0.003 down to 0.003; the false-alarm
    cap keeps the threshold where at most MAX_FALSE_ALARM of other held-out messages alarm."""
    from eval.triage_train import HEADS, MAX_FALSE_ALARM, Example, choose_thresholds

    kinds = ["self_harm"] * 20 + ["not_emergency"] * 200 + ["emergency"] * 50
    examples = [Example(f"message {i}", f"message {i}", f"message {i}", f"message {i}", kind, "w1", "", str(i))
                for i, kind in enumerate(kinds)]
    alone = np.zeros((len(kinds), len(HEADS)))
    h, e = HEADS.index("self_harm"), HEADS.index("emergency")
    alone[:20, h] = 0.8
    alone[0, h] = 0.003  # the one the head cannot see
    alone[20:220, h] = np.linspace(0.0, 0.5, 200)  # calm messages, some scored high
    alone[220:, e] = 0.9
    thresholds = choose_thresholds(examples, alone, alone, np.zeros_like(alone))
    alarmed = (alone[20:, h] >= thresholds.self_harm).mean()
    assert alarmed <= MAX_FALSE_ALARM["self_harm"] + 0.01
    assert (alone[1:20, h] >= thresholds.self_harm).all()  # every other self-harm message still gets it


@pytest.mark.slow
def test_the_command_embeds_with_the_onnx_export_without_torch(corpus, tmp_path):
    """`patient-qa triage train` embeds as a build does: the cached, verified export, never torch (identical vectors)."""
    import subprocess
    import sys
    from pathlib import Path

    from knowledge.embedding import build_embedders
    from knowledge.settings import DEFAULT_MODEL

    build_embedders(DEFAULT_MODEL, "auto", 1)  # the export exists in the user cache, as after any build
    code = ("import runpy, sys; sys.argv = ['patient-qa', 'triage', 'train', '--corpus', sys.argv[1], '--out', "
            "sys.argv[2]]\ntry:\n    runpy.run_module('ui.cli', run_name='__main__')\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = tmp_path / "model"
    done = subprocess.run([sys.executable, "-c", code, str(corpus), str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=600)
    assert done.stdout.strip().splitlines()[-1] == "exit 0 False False", done.stdout + done.stderr[-500:]
    assert (out / "triage_model.npz").exists() and (out / "triage_model.json").exists()


def test_the_sentence_bar_chosen_on_held_out_scores_drops_look_alike_alarms_and_keeps_recall():
    """Calm messages whose best sentence scores 0.8 alarm at the fixed 0.75 bar; a grid finds a bar above them, where the
    emergencies those sentences caught are still caught by the whole-message threshold."""
    from eval.triage_train import HEADS, Example, ThresholdPolicy, choose_thresholds

    kinds = ["emergency"] * 100 + ["not_emergency"] * 100 + ["self_harm"] * 5
    examples = [Example(f"message {i}", f"message {i}", f"message {i}", f"message {i}", kind, "w1", "", str(i))
                for i, kind in enumerate(kinds)]
    alone, sentence = np.zeros((len(kinds), len(HEADS))), np.zeros((len(kinds), len(HEADS)))
    e, h = HEADS.index("emergency"), HEADS.index("self_harm")
    alone[:100, e] = np.linspace(0.3, 0.9, 100)
    sentence[:100, e] = 0.9
    alone[100:200, e] = np.linspace(0.0, 0.2, 100)
    sentence[100:130, e] = 0.8  # a calm sentence that sounds urgent on its own
    alone[200:, h] = 0.9
    fixed = choose_thresholds(examples, alone, alone, sentence)
    tuned = choose_thresholds(examples, alone, alone, sentence,
                              ThresholdPolicy(sentence_grid=(0.6, 0.75, 0.85, 0.95)))

    def alarms(t, rows):
        return int(((alone[rows, e] >= t.emergency) | (sentence[rows, e] >= t.emergency_sentence)).sum())

    assert alarms(fixed, slice(100, 200)) == 30 and alarms(tuned, slice(100, 200)) == 0
    assert tuned.emergency_sentence >= 0.85  # on a tie, the higher bar: a sentence must be clearly alarming
    assert alarms(tuned, slice(0, 100)) >= 99  # the recall target (99%) holds


def test_weighting_calm_messages_lowers_their_alarm_scores_and_keeps_emergencies_high(corpus):
    from eval.gold import load_gold
    from eval.triage_train import _UNUSED_THRESHOLDS, HEADS, design, examples_from, fit_heads, model_from

    examples = sorted(examples_from(load_gold(corpus / "dev.jsonl").items), key=lambda e: e.item_id)
    rows = design(examples, fake_embed)
    e = HEADS.index("emergency")

    def scores(weight: float, kind: str) -> float:
        model = model_from(fit_heads(examples, rows, calm_weight=weight), _UNUSED_THRESHOLDS)
        chosen = [x for x in examples if x.kind == kind]
        return float(np.mean([model.logits(x.text, fake_embed([x.raw_text])[0])[e] for x in chosen]))

    assert scores(2.0, "not_emergency") < scores(1.0, "not_emergency")
    assert scores(2.0, "emergency") > 0  # still on the alarming side of the boundary
