"""Which language a message is in (English or Spanish), so safety messages answer in the person's language."""

from __future__ import annotations

import re

from qa.triage_features import fold_accents

# Function words that are common in one language and rare in the other: a handful is enough to tell
# "mi esposo tiene fiebre" from "my husband has a fever" (hand-written: no small offline detector was worth a dependency).
_SPANISH = frozenset(
    "el la los las un una unos unas de del al y o pero que porque como cuando donde esta estoy esta estan es son "
    "muy mas ya no si se le lo les me mi mis tu su sus yo el ella nosotros hay tiene tengo tienen hace desde con "
    "sin para por sobre entre ayer hoy ahora anoche manana noche dia dias semana puedo puede debo deberia quiero "
    "siento duele dolor fiebre esposo esposa hijo hija mama papa abuela abuelo tambien todo nada algo pues".split()
)
_ENGLISH = frozenset(
    "the a an and or but that because how when where is are was were am i you he she we they my your his her our "
    "their it this these those have has had do does did can could should would will not no yes with without for "
    "from on in at to of about after before now today yesterday night day days week what why who which".split()
)
_SPANISH_MARKS = re.compile(r"[ñ¿¡]|ción")


def detect_language(text: str) -> str:
    """'es' when Spanish function words outnumber English ones (ties go to English), else 'en'."""
    words = re.findall(r"[a-zñ]+", fold_accents((text or "").lower()))
    spanish = sum(w in _SPANISH for w in words) + 2 * len(_SPANISH_MARKS.findall(text or ""))
    english = sum(w in _ENGLISH for w in words)
    return "es" if spanish > english else "en"
