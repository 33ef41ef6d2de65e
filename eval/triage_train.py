"""`patient-qa triage train`: fit the triage heads on the blind-written tuning splits, choose thresholds on
writer-held-out predictions, and write qa/triage_model.{npz,json}. The sealed split is never read here.

Reproducible: fixed solver, no randomness, inputs sorted; the same corpus and model give the same weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.gold import DEFAULT_GOLD, TRIAGE_GOLD, GoldItem, load_gold
from knowledge.errors import PatientQAError
from qa.triage_features import HASH_SIZE, CueSet, default_cues, hashed_ngrams, join_context, normalise
from qa.triage_model import DEFAULT_META, DEFAULT_WEIGHTS, HEADS, Thresholds, TriageModel

TUNING_FILES = ("dev.jsonl",)  # sealed.jsonl is measured once, never trained or tuned on
EMBEDDING_SCALE = 1.0
# Leave-one-writer-out emergency recall at 3% false alarms: C=1 0.936, C=4 0.963, C=16 0.975, C=64 0.976.
REGULARISATION_C = 16.0
# Recall targets for choosing thresholds on held-out writers: safety heads lean to recall (DESIGN: take the
# false alarm over the missed emergency), the others to accuracy.
RECALL_TARGET = {"emergency": 0.99, "self_harm": 1.0, "defer": 0.90, "out_of_scope": 0.90}
THRESHOLD_MARGIN = 0.9  # thresholds sit a little below the held-out figure: new writers are further away
# A head's threshold never drops so low that more than this share of held-out messages of other kinds alarm: with
# w24-w26, one blind self-harm message the held-out head scores 0.003 (w26-150, "he'd rather be dead than do another
# round", a parent quoting a son) would have set the self-harm threshold to 0.003 and put the crisis message on 43%
# of calm held-out messages. At 3% the cap set the threshold for w1-w28 (0.19) and the crisis message showed on 3.5%
# of calm messages; at 1.5% (0.37-0.41), judged by `patient-qa triage compare` on the same held-out writers, self-harm
# recall was unchanged (375/376; the lexicon and the sentence layer catch what the head then misses) and calm
# alarms fell (218 -> 197 of 2,518). On w1-w23 alone the cap moves the threshold only from 0.319 to 0.356.
MAX_FALSE_ALARM = {"self_harm": 0.015}
# A long message is also read sentence by sentence (a red flag or a suicidal line buried after logistics);
# one sentence must be clearly alarming on its own to count (held-out writers, 18 of them: 0.75 kept the
# recall of 0.6 with 0.7 points fewer look-alike alarms).
SENTENCE_HEADS = ("emergency", "self_harm")
SENTENCE_THRESHOLD = 0.75
# The symptom-now rules alarm when the model gives at least this share of its threshold (held-out writers:
# +0.3 points of emergency recall for +1.5 points of look-alike alarms).
RULES_SUPPORT = 0.5
# What a person would not want an alarm on: everyday questions, look-alikes, decisions, other topics.
CALM_KINDS = ("answer", "followup", "not_emergency", "defer", "out_of_scope", "abstain")
# The emergency and self-harm heads count each calm message twice (on top of the class balance): on the same
# held-out writers (`patient-qa triage compare`, w1-w28) calm alarms 197 -> 187 of 2,518 with emergency recall
# 1,226 -> 1,228 of 1,242 and self-harm recall unchanged (375 of 376).
CALM_WEIGHT = 2.0
HEAD_POSITIVE = {
    "emergency": {"emergency"},
    "self_harm": {"self_harm"},
    "defer": {"defer"},
    "out_of_scope": {"out_of_scope"},
}


class TrainingError(PatientQAError):
    """Training cannot run; the message says what is missing."""


@dataclass(frozen=True)
class Example:
    """One labelled message as the model reads it, alone and with its earlier turns."""

    text: str  # normalised, as the n-grams and cues read it
    context: str  # equals text when there is no history
    raw_text: str  # as typed, as the embedding reads it (shared with retrieval at answer time)
    raw_context: str
    kind: str
    writer: str
    family: str
    item_id: str
    history: tuple[str, ...] = ()  # the earlier turns as typed, for deciding with the full triage


def examples_from(items: Sequence[GoldItem]) -> list[Example]:
    """Gold items as training examples (the dev gold set's answers count as ordinary questions)."""
    out = []
    for item in items:
        raw_context = join_context(list(item.history), item.question) if item.history else item.question
        out.append(Example(normalise(item.question), normalise(raw_context), item.question, raw_context,
                           item.kind, item.writer or "dev-gold", item.family, item.id, tuple(item.history)))
    return out


def tuning_examples(corpus_dir: Path = TRIAGE_GOLD, dev_gold: Path = DEFAULT_GOLD) -> list[Example]:
    """The tuning splits of the triage corpus plus the dev gold set, sorted for reproducibility."""
    items: list[GoldItem] = []
    for name in TUNING_FILES:
        path = corpus_dir / name
        if not path.exists():
            raise TrainingError(f"no triage corpus at {path}; it ships in eval/gold/triage/")
        items.extend(load_gold(path).items)
    if dev_gold.exists():
        items.extend(load_gold(dev_gold).items)
    return sorted(examples_from(items), key=lambda e: e.item_id)


def feature_matrix(texts: Sequence[str], vectors: np.ndarray, scale: float | None = None, cues: CueSet | None = None):
    """Sparse rows [scaled embedding, cue flags, hashed n-grams], the exact layout TriageModel scores; `texts` are
    normalised, `vectors` are the embeddings of the same messages as typed."""
    from scipy import sparse

    cues = cues or default_cues()
    scale = EMBEDDING_SCALE if scale is None else scale
    dense = np.hstack([vectors * scale, np.stack([cues.vector(t) for t in texts])]).astype(np.float32)
    rows, cols, vals = [], [], []
    for row, text in enumerate(texts):
        indices, values = hashed_ngrams(text)
        rows.extend([row] * len(indices))
        cols.extend(indices.tolist())
        vals.extend(values.tolist())
    grams = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), HASH_SIZE), dtype=np.float32)
    return sparse.hstack([sparse.csr_matrix(dense), grams], format="csr"), dense.shape[1]


def _rows(examples: Sequence[Example]) -> tuple[list[str], list[str], list[int]]:
    """Training rows: every message alone, plus conversations read with their history (same label)."""
    texts, raws, owners = [], [], []
    for i, ex in enumerate(examples):
        texts.append(ex.text)
        raws.append(ex.raw_text)
        owners.append(i)
        if ex.context != ex.text:
            texts.append(ex.context)
            raws.append(ex.raw_context)
            owners.append(i)
    return texts, raws, owners


@dataclass(frozen=True)
class Design:
    """The feature rows of a set of examples, built once and sliced per fold (hashing is the slow part)."""

    matrix: object  # scipy CSR, one row per training row
    width: int  # dense columns (embedding + cues) before the n-grams
    owners: np.ndarray  # the example each row belongs to
    cues: CueSet | None = None  # the cue lexicons the dense columns hold (None: default_cues())


def design(examples: Sequence[Example], embed: Callable[[list[str]], np.ndarray], cues: CueSet | None = None) -> Design:
    """Every message alone, plus conversations read with their history, as sparse feature rows."""
    texts, raws, owners = _rows(examples)
    matrix, width = feature_matrix(texts, embed(raws), cues=cues)
    return Design(matrix, width, np.array(owners), cues)


def fit_heads(examples: Sequence[Example], rows: Design, keep: np.ndarray | None = None, c: float | None = None,
              calm_weight: float = CALM_WEIGHT):
    """One logistic regression per head over the rows whose example is in `keep` (all by default);
    returns (dense weights, n-gram weights, biases, dense width). The safety heads count a calm message
    `calm_weight` times (on top of the class balance)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise TrainingError("training needs scikit-learn: pip install 'patient-qa[train]'") from None
    selected = np.ones(len(rows.owners), dtype=bool) if keep is None else keep[rows.owners]
    matrix, owners, width = rows.matrix[selected], rows.owners[selected], rows.width
    dense_w = np.zeros((len(HEADS), width), dtype=np.float32)
    gram_w = np.zeros((len(HEADS), HASH_SIZE), dtype=np.float32)
    bias = np.zeros(len(HEADS), dtype=np.float32)
    for h, head in enumerate(HEADS):
        y = np.array([examples[o].kind in HEAD_POSITIVE[head] for o in owners], dtype=int)
        if y.min() == y.max():
            raise TrainingError(f"the tuning data has no {'positive' if y.max() == 0 else 'negative'} "
                                f"examples for the '{head}' head")
        clf = LogisticRegression(C=REGULARISATION_C if c is None else c, class_weight="balanced",
                                 solver="liblinear", max_iter=2000)
        weight = None
        if head in SENTENCE_HEADS and calm_weight != 1.0:
            weight = np.array([calm_weight if examples[o].kind in CALM_KINDS else 1.0 for o in owners])
        clf.fit(matrix, y, sample_weight=weight)
        coef = clf.coef_[0].astype(np.float32)
        dense_w[h], gram_w[h], bias[h] = coef[:width], coef[width:], float(clf.intercept_[0])
    return dense_w, gram_w, bias, width


# Scoring held-out writers needs a model but no decision, so these thresholds are never read.
_UNUSED_THRESHOLDS = Thresholds(0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.6, 0.6, 0.25)


def fold_models(examples: Sequence[Example], rows: Design, c: float | None = None,
                calm_weight: float = CALM_WEIGHT) -> dict[str, TriageModel]:
    """Per writer, the heads fitted on every other writer (their thresholds are set by the caller)."""
    writers = np.array([e.writer for e in examples])
    return {writer: model_from(fit_heads(examples, rows, writers != writer, c, calm_weight), _UNUSED_THRESHOLDS,
                                cues=rows.cues)
            for writer in sorted(set(writers))}


def scores_by(models: dict[str, TriageModel], examples: Sequence[Example],
              vectors: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities (alone, with context, best sentence) of each example by its writer's model in `models`."""
    alone = np.zeros((len(examples), len(HEADS)))
    context = np.zeros((len(examples), len(HEADS)))
    sentence = np.zeros((len(examples), len(HEADS)))
    for i, ex in enumerate(examples):
        model = models[ex.writer]
        vector = vectors([ex.raw_text])[0]
        alone[i] = _probs(model, ex.text, vector)
        context[i] = _probs(model, ex.context, vectors([ex.raw_context])[0])
        best = model.sentence_scores(ex.text, vector)
        sentence[i] = [best.get(h) for h in HEADS]
    return alone, context, sentence


def held_out_scores(examples: Sequence[Example], embed: Callable[[list[str]], np.ndarray],
                    c: float | None = None, rows: Design | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-writer-out probabilities (alone, with context, best sentence) for every example."""
    vectors = embed_once(examples, embed)
    rows = rows or design(examples, vectors)
    return scores_by(fold_models(examples, rows, c), examples, vectors)


def _probs(model: TriageModel, text: str, vector: np.ndarray) -> np.ndarray:
    s = model.scores(text, vector)
    return np.array([s.get(h) for h in HEADS])


def embed_once(examples: Sequence[Example], embed: Callable[[list[str]], np.ndarray]):
    """Embed every distinct text once; return a lookup with the same signature as `embed`."""
    texts = sorted({t for e in examples for t in (e.raw_text, e.raw_context)})
    table = dict(zip(texts, embed(texts)))

    def lookup(batch: list[str]) -> np.ndarray:
        missing = [t for t in batch if t not in table]
        if missing:
            table.update(zip(missing, embed(missing)))
        return np.stack([table[t] for t in batch])

    return lookup


def model_from(fitted, thresholds: Thresholds, embedding_model: str = "", meta: dict | None = None,
               cues: CueSet | None = None) -> TriageModel:
    """A triage model from fitted heads, deciding at `thresholds` (training and the fair comparison build it alike)."""
    dense_w, gram_w, bias, _ = fitted
    return TriageModel(dense_w, gram_w, bias, EMBEDDING_SCALE, thresholds, embedding_model, cues or default_cues(), meta)


@dataclass(frozen=True)
class ThresholdPolicy:
    """How thresholds are read off the held-out scores (the defaults are the shipped recipe)."""

    recall_target: tuple[tuple[str, float], ...] = tuple(RECALL_TARGET.items())
    margin: float = THRESHOLD_MARGIN
    max_false_alarm: tuple[tuple[str, float], ...] = tuple(MAX_FALSE_ALARM.items())
    # The sentence layer's bar per head is the one of these, at or above the head's own threshold, with the fewest
    # held-out calm alarms for the recall target (a single value fixes it).
    sentence_grid: tuple[float, ...] = (SENTENCE_THRESHOLD,)


def choose_thresholds(examples: Sequence[Example], alone: np.ndarray, context: np.ndarray,
                      sentence: np.ndarray, policy: ThresholdPolicy = ThresholdPolicy()) -> Thresholds:
    """Per head, the threshold that keeps the held-out recall target for what the other layers miss."""
    from qa.safety import self_harm_said

    targets, caps = dict(policy.recall_target), dict(policy.max_false_alarm)
    chosen: dict[str, float] = {}
    bars = {head: SENTENCE_THRESHOLD for head in SENTENCE_HEADS}
    calm = np.array([e.kind in CALM_KINDS for e in examples])
    crisis = np.zeros(len(examples), dtype=bool)  # what the self-harm layers catch (they run first)
    lexicon = np.array([self_harm_said(e.raw_text) for e in examples])
    for head in ("self_harm", "emergency", "defer", "out_of_scope"):
        h = HEADS.index(head)
        positive = np.array([e.kind in HEAD_POSITIVE[head] for e in examples])
        before = crisis.copy() if head == "emergency" else np.zeros(len(examples), dtype=bool)
        if head == "self_harm":
            before |= lexicon
        best = np.maximum(alone[:, h], np.where(positive, context[:, h], 0.0))
        # The recall target is over all positives: the misses it allows come from what no other layer caught.
        allowed = int(np.floor((1.0 - targets[head]) * int(positive.sum())))
        options = []
        for bar in policy.sentence_grid if head in SENTENCE_HEADS else (np.inf,):
            caught = before | (sentence[:, h] >= bar)
            scores = np.sort(best[positive & ~caught])
            if len(scores) <= allowed:
                threshold = 0.5
            else:
                threshold = min(0.5, float(scores[allowed]) * policy.margin)
                if head in caps:
                    others = np.sort(alone[~positive, h])
                    threshold = max(threshold, float(np.quantile(others, 1.0 - caps[head])))
            bar = max(bar, threshold)
            alarms = int((calm & ((alone[:, h] >= threshold) | (sentence[:, h] >= bar))).sum())
            options.append((alarms, -bar, threshold, bar, caught))
        alarms, _, chosen[head], bar, caught = min(options, key=lambda o: o[:2])
        if head in SENTENCE_HEADS:
            bars[head] = bar
        if head == "self_harm":
            crisis = caught | (np.maximum(alone[:, h], context[:, h]) >= chosen[head])
    conv = [i for i, e in enumerate(examples) if e.context != e.text and e.kind == "emergency"]
    floor = float(np.quantile(alone[conv, 0], 0.02)) * policy.margin if conv else chosen["emergency"]
    return Thresholds(emergency=chosen["emergency"], self_harm=chosen["self_harm"], defer=chosen["defer"],
                      out_of_scope=chosen["out_of_scope"], emergency_context=chosen["emergency"],
                      emergency_alone_floor=min(floor, chosen["emergency"]),
                      emergency_sentence=bars["emergency"], self_harm_sentence=bars["self_harm"],
                      emergency_with_rules=chosen["emergency"] * RULES_SUPPORT)


def corpus_fingerprint(examples: Sequence[Example]) -> str:
    """A hash of the training rows, recorded in the model JSON so a rebuild can be compared."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.item_id}\t{e.kind}\t{e.raw_text}\t{e.raw_context}\n".encode())
    return digest.hexdigest()[:16]


def train(embed: Callable[[list[str]], np.ndarray], embedding_model: str, out_weights: Path = DEFAULT_WEIGHTS,
          out_meta: Path = DEFAULT_META, corpus_dir: Path = TRIAGE_GOLD, dev_gold: Path = DEFAULT_GOLD,
          held_out: Path | None = None, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Fit, choose thresholds on held-out writers, refit on everything, save; returns the summary."""
    examples = tuning_examples(corpus_dir, dev_gold)
    progress(f"{len(examples)} tuning messages from {len({e.writer for e in examples})} writers")
    cached = embed_once(examples, embed)
    rows = design(examples, cached)
    progress("leave-one-writer-out predictions")
    alone, context, sentence = held_out_scores(examples, cached, rows=rows)
    thresholds = choose_thresholds(examples, alone, context, sentence)
    if held_out is not None:
        save_held_out(held_out, examples, alone, context, sentence)
    progress("final fit")
    fitted = fit_heads(examples, rows)
    counts = {k: sum(e.kind == k for e in examples) for k in sorted({e.kind for e in examples})}
    meta = {
        "trained_on": {"files": list(TUNING_FILES) + [DEFAULT_GOLD.name], "messages": len(examples),
                       "kinds": counts, "writers": sorted({e.writer for e in examples}),
                       "fingerprint": corpus_fingerprint(examples)},
        "regularisation_c": REGULARISATION_C,
        "recall_targets": RECALL_TARGET,
        "max_false_alarm": MAX_FALSE_ALARM,
        "calm_weight": CALM_WEIGHT,
        "threshold_margin": THRESHOLD_MARGIN,
    }
    model = model_from(fitted, thresholds, embedding_model, meta)
    model.save(Path(out_weights), Path(out_meta))
    return {"thresholds": thresholds.__dict__, **meta}


def save_held_out(path: Path, examples: Sequence[Example], alone: np.ndarray, context: np.ndarray,
                  sentence: np.ndarray) -> None:
    """Write the held-out probabilities (JSONL) for inspection."""
    with path.open("w", encoding="utf-8") as out:
        for e, a, c, s in zip(examples, alone, context, sentence):
            out.write(json.dumps({"id": e.item_id, "kind": e.kind, "writer": e.writer, "family": e.family,
                                  "text": e.text, "alone": dict(zip(HEADS, a.round(4).tolist())),
                                  "context": dict(zip(HEADS, c.round(4).tolist())),
                                  "sentence": dict(zip(HEADS, s.round(4).tolist()))}, ensure_ascii=False) + "\n")
