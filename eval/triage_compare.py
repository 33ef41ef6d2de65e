"""`patient-qa triage compare`: the shipped triage model against a retrained one on the SAME held-out writers.

Comparing leave-one-writer-out figures of two corpora compares two test sets. Here every message of the tuning
corpus is decided by the full triage (qa.safety: lexicon, rules, every model layer) with, on each side, a model
that never saw its writer: the shipped model itself for writers it was not trained on, otherwise the shipped
recipe refitted without that writer; the candidate likewise on the whole corpus. Thresholds are chosen on the
other writers' held-out scores only, so a writer's own messages never set the bar they are judged by.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from eval.triage_train import (
    CALM_KINDS,
    Design,
    Example,
    choose_thresholds,
    corpus_fingerprint,
    design,
    embed_once,
    fit_heads,
    fold_models,
    model_from,
    scores_by,
)
from qa.triage_model import Thresholds, TriageModel

GENERAL_KINDS = ("answer", "followup", "abstain")
Embed = Callable[[list[str]], np.ndarray]
Fit = Callable[[Sequence[Example], Design], dict[str, TriageModel]]


@dataclass(frozen=True)
class Outcome:
    """How the full triage decided one held-out message."""

    item_id: str
    writer: str
    kind: str  # the gold kind
    decided: str  # emergency | defer | out_of_scope | general
    crisis: bool  # the self-harm message was shown
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    """Recall per safety label and the alarms on calm messages, as (hits, total) pairs."""

    emergency: tuple[int, int]
    self_harm: tuple[int, int]
    calm_alarm: tuple[int, int]  # a calm message (general, look-alike, defer, out of scope) got an alarm
    general_deferred: tuple[int, int]  # an everyday question was sent to the care team
    defer: tuple[int, int]

    def rows(self) -> list[tuple[str, tuple[int, int]]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


def figures(outcomes: Iterable[Outcome]) -> Figures:
    """Recall and alarm counts over some outcomes."""
    out = list(outcomes)

    def count(kinds: Sequence[str], hit: Callable[[Outcome], bool]) -> tuple[int, int]:
        chosen = [o for o in out if o.kind in kinds]
        return sum(hit(o) for o in chosen), len(chosen)

    alarm = lambda o: o.decided == "emergency" or o.crisis  # noqa: E731
    return Figures(emergency=count(("emergency",), alarm), self_harm=count(("self_harm",), lambda o: o.crisis),
                   calm_alarm=count(CALM_KINDS, alarm),
                   general_deferred=count(GENERAL_KINDS, lambda o: o.decided == "defer"),
                   defer=count(("defer",), lambda o: o.decided == "defer"))


def with_thresholds(model: TriageModel, thresholds: Thresholds) -> TriageModel:
    """The same heads deciding at other thresholds (weights shared, not copied)."""
    clone = copy.copy(model)
    clone.thresholds = thresholds
    return clone


def nested_models(examples: Sequence[Example], rows: Design, vectors: Embed, fit: Fit | None = None,
                  choose: Callable[..., Thresholds] = choose_thresholds) -> tuple[dict[str, TriageModel], Thresholds]:
    """Per writer: heads fitted without it, at thresholds chosen on the other writers' held-out scores; and the
    thresholds chosen on every writer (what `patient-qa triage train` would ship)."""
    models = (fit or (lambda ex, r: fold_models(ex, r)))(examples, rows)
    alone, context, sentence = scores_by(models, examples, vectors)
    writers = np.array([e.writer for e in examples])
    out = {}
    for writer, model in models.items():
        keep = writers != writer
        chosen = choose([e for e, k in zip(examples, keep) if k], alone[keep], context[keep], sentence[keep])
        out[writer] = with_thresholds(model, chosen)
    return out, choose(examples, alone, context, sentence)


def decide_all(examples: Sequence[Example], models: Callable[[str], TriageModel], vectors: Embed,
               glossary=None) -> list[Outcome]:
    """Each example through qa.safety.triage with the model `models(writer)` gives for its writer."""
    from qa import safety

    out = []
    for ex in examples:
        d = safety.triage(ex.raw_text, list(ex.history), glossary, embed=lambda t: vectors([t])[0],
                          model=models(ex.writer))
        out.append(Outcome(ex.item_id, ex.writer, ex.kind, d.kind, d.self_harm, d.reasons))
    return out


@dataclass(frozen=True)
class Comparison:
    """Both sides' outcomes on the same messages, and which writers the shipped model never saw."""

    baseline: list[Outcome]
    candidate: list[Outcome]
    unseen: tuple[str, ...]  # writers outside the shipped model's training corpus
    # Messages neither side trained on (e.g. eval/gold/uncovered-dev.jsonl), decided by the shipped model and by
    # the candidate fitted on the whole corpus: both out of sample.
    external: tuple[list[Outcome], list[Outcome]] = ([], [])

    def table(self) -> dict[str, dict[str, Figures]]:
        """Figures per slice: all writers, the writers the shipped model never saw, and the others."""
        slices = {"all writers": lambda o: True, "unseen by shipped": lambda o: o.writer in self.unseen,
                  "seen by shipped": lambda o: o.writer not in self.unseen}
        table = {name: {"baseline": figures(filter(keep, self.baseline)),
                        "candidate": figures(filter(keep, self.candidate))} for name, keep in slices.items()}
        if self.external[0]:
            table["other messages, untrained"] = {"baseline": figures(self.external[0]),
                                                  "candidate": figures(self.external[1])}
        return table


def compare(examples: Sequence[Example], embed: Embed, shipped: TriageModel, glossary=None,
            fit: Fit | None = None, candidate_design: Callable[[Sequence[Example], Embed], Design] | None = None,
            progress: Callable[[str], None] = lambda message: None, external: Sequence[Example] = ()) -> Comparison:
    """The shipped model (refitted without each writer it saw) against the candidate recipe on every writer."""
    vectors = embed_once(examples, embed)
    seen = set(shipped.meta.get("trained_on", {}).get("writers", []))
    old = [e for e in examples if e.writer in seen]
    recorded = shipped.meta.get("trained_on", {}).get("fingerprint")
    if recorded and corpus_fingerprint(old) != recorded:
        progress(f"warning: the shipped model's writers no longer give its corpus (fingerprint {recorded}); "
                 "the refitted baseline is an approximation")
    progress(f"baseline: refit the shipped recipe without each of its {len(seen)} writers")
    base, _ = nested_models(old, design(old, vectors, shipped.cues), vectors)
    progress(f"candidate: fit without each of {len({e.writer for e in examples})} writers")
    cand_rows = (candidate_design or design)(examples, vectors)
    cand, thresholds = nested_models(examples, cand_rows, vectors, fit)
    progress("deciding every message with both")
    baseline = decide_all(examples, lambda w: base.get(w, shipped), vectors, glossary)
    candidate = decide_all(examples, lambda w: cand[w], vectors, glossary)
    unseen = tuple(sorted({e.writer for e in examples} - seen))
    if not external:
        return Comparison(baseline, candidate, unseen)
    full = model_from(fit_heads(examples, cand_rows), thresholds, cues=cand_rows.cues)
    vectors_out = embed_once(external, embed)
    return Comparison(baseline, candidate, unseen, (decide_all(external, lambda w: shipped, vectors_out, glossary),
                                                    decide_all(external, lambda w: full, vectors_out, glossary)))


def render(comparison: Comparison) -> str:
    """A side-by-side text table (counts and percentages)."""
    lines = [f"writers the shipped model never saw: {', '.join(comparison.unseen) or 'none'}"]
    for name, sides in comparison.table().items():
        lines.append(f"\n{name}:\n{'':<18}{'shipped':>20}{'candidate':>20}")
        for (label, b), (_, c) in zip(sides["baseline"].rows(), sides["candidate"].rows()):
            cells = [f"{h}/{n} {100 * h / n:5.1f}%" if n else "-" for h, n in (b, c)]
            lines.append(f"{label:<18}{cells[0]:>20}{cells[1]:>20}")
    return "\n".join(lines)
