"""Features for the learned triage model: hashed character n-grams (typos, slang, Spanish) and cue counts.

Pure numpy and the standard library, so answering never needs scikit-learn; training (eval.triage_train)
builds exactly the same features through these functions.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.text import squash_whitespace

# Part of the trained triage model's feature layout, not knobs: the weights in qa/triage_model.npz are indexed by
# these hashed character n-grams, so changing them means retraining (`make triage-model`).
NGRAM_RANGE = (3, 5)
HASH_BITS = 16
HASH_SIZE = 1 << HASH_BITS

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "´": "'"})


def normalise(text: str) -> str:
    """Lowercase, accents kept, straight quotes, single spaces: the form every triage layer reads."""
    text = unicodedata.normalize("NFKC", text or "").translate(_APOSTROPHES)
    return squash_whitespace(text.lower())


def fold_accents(text: str) -> str:
    """'fiébre' -> 'fiebre': patients type Spanish with and without accents."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def char_ngrams(text: str, low: int = NGRAM_RANGE[0], high: int = NGRAM_RANGE[1]) -> Counter:
    """Character n-grams inside word boundaries (like scikit-learn's char_wb): robust to typos and spacing."""
    counts: Counter = Counter()
    for word in re.findall(r"[\w'°./-]+", fold_accents(text)):
        padded = f" {word} "
        for n in range(low, high + 1):
            if len(padded) < n:
                break
            for i in range(len(padded) - n + 1):
                counts[padded[i:i + n]] += 1
    return counts


def hashed_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (indices, values): sublinear term frequency, L2-normalised, hashed into HASH_SIZE slots."""
    counts = char_ngrams(text)
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    slots = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in counts), dtype=np.int64, count=len(counts))
    slots &= HASH_SIZE - 1
    weights = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
    indices, inverse = np.unique(slots, return_inverse=True)
    values = np.zeros(len(indices), dtype=np.float64)
    np.add.at(values, inverse, weights)  # colliding n-grams share a slot, as in scikit-learn's hashing
    values /= float(np.linalg.norm(values)) or 1.0
    return indices, values.astype(np.float32)


@dataclass(frozen=True)
class CueSet:
    """Named lexicons of timing, person and framing cues; each becomes one feature (0/1)."""

    names: tuple[str, ...]
    patterns: tuple[re.Pattern, ...]

    def vector(self, text: str) -> np.ndarray:
        """1.0 where a cue's pattern occurs in the (normalised, accent-folded) text."""
        folded = fold_accents(text)
        return np.array([1.0 if p.search(folded) else 0.0 for p in self.patterns], dtype=np.float32)


# Cues that move a red flag into or out of "happening now". Written as classes of wording (English and
# Spanish), never as single messages; the model learns their weights.
CUES: dict[str, str] = {
    "now": r"\b(right now|now|currently|tonight|today|this (morning|afternoon|evening)|just now|since (yesterday|last night|this morning)|"
           r"for the (last|past) \w+ (hours?|days?)|\d+ (hours?|hrs?|mins?|minutes?) ago|keeps?|still|won'?t stop|"
           r"ahora|ahorita|hoy|esta (noche|manana|tarde)|desde (ayer|anoche|hace))\b",
    "recent_treatment": r"\b(day \d{1,2}|\d{1,2} days? (ago|after|since|post)|last week|yesterday|infusion|got (his|her|my) cells|"
                        r"hace \w+ dias|la semana pasada)\b",
    "first_person": r"\b(i|i'm|im|i've|ive|me|my|mine|we|our|us|yo|mi|mis|me siento|tengo|estoy)\b",
    "caregiver": r"\b(he|she|he's|she's|his|her|him|husband|wife|partner|son|daughter|mom|mum|mother|dad|father|"
                 r"grandma|grandpa|child|kid|baby|boy|girl|esposo|esposa|hijo|hija|mama|papa|abuel[oa])\b",
    "other_story": r"\b(my friend|a friend|friend'?s|someone (in|at|from)|a (guy|woman|man|lady|patient) (in|at|from|on)|support group|"
                   r"forum|article|read (that|about|online)|heard (that|about)|neighbou?r|coworker|co-worker|cousin'?s|un amigo|una amiga)\b",
    "past": r"\b(last (year|month|spring|summer|fall|winter)|\d+ (months?|years?) ago|a (few|couple of) (months|years) ago|back (then|in)|"
            r"in 20\d\d|during (my|his|her) (treatment|stay|hospital stay|crs)|used to|had (a|an) .{0,30} (back|before)|"
            r"went away|resolved|gone now|got better|all better|el ano pasado|hace (meses|anos))\b",
    "hypothetical": r"\b(what if|if (i|he|she|we|my|you|someone)|in case|should i (watch|look)|how (do|will|would) i know|"
                    r"what (are|is) the (signs?|symptoms?)|is it common|how common|can (car.?t|it|this|immunotherapy) cause|"
                    r"que pasa si|si (tengo|me da|le da))\b",
    "negation": r"\b(no fever|no temp|not (feverish|dizzy|confused)|feel (fine|ok|okay|great|good)|feeling (fine|ok|okay|great|good)|"
                r"no symptoms|nothing else|sin fiebre|me siento bien)\b",
    "question_normal": r"\b(is (this|that|it) normal|normal\?|should i (worry|be worried)|weird,? right|is that bad|"
                       r"is this bad|es normal|me preocupo)\b",
    # A temperature reading at or over the fever line (38.0 C / 100.4 F), and one under it: numbers are
    # hard for n-grams and embeddings, so the reading itself is a feature.
    "temp_fever": r"(?<![\d.,])((3[89]|4[0-2])[.,]\d|100[.,][4-9]|10[1-7][.,]\d)(?![\d%])"
                  r"|(?<![\d.,])(3[89]|4[0-2]|10[1-7])\s*(°|º|deg|degrees|grados|c\b|f\b)"
                  r"|\b(temp|temperature|fever|fiebre|temperatura|calentura|thermometer|termometro)\D{0,20}(3[89]|4[0-2]|10[1-7])\b",
    "temp_normal": r"(?<![\d.,])(3[5-7][.,]\d|9[5-9][.,]\d|100[.,][0-3])(?![\d%])"
                   r"|\b(temp|temperature|fiebre|temperatura|thermometer|termometro)\D{0,20}(3[5-7]|9[5-9]|100)\b(?![.,]\d)",
    "idiom": r"\b(killing me|dying to|to die for|drives? me crazy|head spin|sick of (waiting|the)|scared to death|"
             r"nervous wreck|heart attack (when|if)|me muero de)\b",
}


def default_cues() -> CueSet:
    """The cue lexicons above, compiled once."""
    return cue_set(tuple(CUES))


def cue_set(names: Sequence[str]) -> CueSet:
    """The named lexicons of CUES, in the given order (a model keeps the cue layout it was trained with)."""
    unknown = [n for n in names if n not in CUES]
    if unknown:
        raise KeyError(", ".join(unknown))
    return CueSet(tuple(names), tuple(re.compile(CUES[n]) for n in names))


def split_sentences(text: str) -> list[str]:
    """Message sentences (also split at line breaks): self-harm is checked in every one of them."""
    parts = re.split(r"(?<=[.!?¿¡])\s+|\n+|\s+-\s+|;\s+", text or "")
    return [p.strip() for p in parts if p and p.strip()]


def join_context(history: Sequence[str], message: str, turns: int = 2) -> str:
    """The message read with the last earlier turns, oldest first ("she had kymriah last week. 101.6 now")."""
    earlier = [h.strip() for h in history[-turns:] if h and h.strip()]
    return " . ".join([*earlier, message.strip()])
