"""Checks an article writer runs before an article lands: front matter, sources, staleness, reading grade, lone sentences, question keys."""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from knowledge.errors import PatientQAError
from knowledge.loaders import LoadError, sections_from_markdown, split_front_matter
from knowledge.sentences import split_sentences
from knowledge.settings import ArticleCheckSettings
from knowledge.text import is_web_url, squash_whitespace

Level = Literal["error", "warning"]
AUDIENCES = ("patients", "caregivers", "both")
QUESTIONS_HEADING = "Questions to ask your care team"
BLOCKLIST = Path(__file__).with_name("source_blocklist.yaml")

# Words that point back to an earlier sentence: quoted alone, "These can last weeks" names nothing.
_POINTING_WORDS = frozenset(
    "this that these those such they them their theirs he she his her hers its both another "
    "either neither former latter".split()
)
# "Both patients and caregivers ..." names its pair; "Both can cause ..." does not.
_PAIR_WORDS = {"both": "and", "either": "or", "neither": "nor"}
# "It" is often a dummy subject ("It is normal to feel tired"), so it is only a warning.
_WEAK_POINTING_WORDS = frozenset({"it"})
# Linking words that may open a sentence before the word that matters ("However, these ...").
_LINKING_WORDS = frozenset(
    "however also but and so still yet then instead otherwise besides again thus therefore "
    "even meanwhile finally plus".split()
)
_LINKING_PHRASES = ("in addition", "for example", "for instance", "even so", "on the other hand", "as a result",
                    "in that case", "because of this", "after that", "in those cases", "in this case")
_MARKUP = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)?")
_HEADING_MARK = re.compile(r"^#{1,6}\s+")
_WORD = re.compile(r"[A-Za-z']+")


class ArticleCheckError(PatientQAError):
    """The articles to check cannot be read at all (no such folder, no Markdown files)."""


@dataclass(frozen=True)
class Rules:
    """What an article must meet; the defaults are the bundled articles' bar (NIH/AMA reading range)."""

    # The defaults are the settings' (ArticleCheckSettings), so the bar is written down once.
    max_grade: float = ArticleCheckSettings().max_reading_grade  # Flesch-Kincaid grade of the body
    stale_after_days: int = ArticleCheckSettings().stale_after_days  # an older `reviewed` date is a warning
    min_question_keys: int = ArticleCheckSettings().min_question_keys  # ways patients ask each `##` section
    today: dt.date = field(default_factory=dt.date.today)


@dataclass(frozen=True)
class Finding:
    """One problem in one article, with where to look."""

    level: Level
    check: str
    message: str
    line: int | None = None

    def to_json(self) -> dict:
        """The finding as a JSON object."""
        return {"level": self.level, "check": self.check, "message": self.message, "line": self.line}


@dataclass(frozen=True)
class ArticleReport:
    """The outcome for one article file."""

    path: str
    title: str
    words: int
    grade: float | None
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        """How many findings block the article."""
        return sum(f.level == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many findings are advice only."""
        return sum(f.level == "warning" for f in self.findings)

    def to_json(self) -> dict:
        """The report as a JSON object."""
        return {"path": self.path, "title": self.title, "words": self.words, "grade": self.grade,
                "errors": self.errors, "warnings": self.warnings,
                "findings": [f.to_json() for f in self.findings]}


@lru_cache(maxsize=1)
def blocked_hosts() -> dict[str, str]:
    """Host → reason, from `source_blocklist.yaml`."""
    from knowledge.yaml_text import load_yaml

    entries = load_yaml(BLOCKLIST.read_text(encoding="utf-8")) or []
    return {str(e["host"]).lower(): str(e["reason"]) for e in entries}


def source_problem(url: str) -> str | None:
    """Why a source URL must not be cited, or None when it may be."""
    if not is_web_url(url):
        return f"{url!r} is not an http(s) URL"
    host = (urlparse(url.strip()).hostname or "").lower()
    try:
        ipaddress.ip_address(host)
        return f"{url} is a bare IP address (a mirror): cite the publisher's own page"
    except ValueError:
        pass
    for blocked, reason in blocked_hosts().items():
        if host == blocked or host.endswith("." + blocked):
            return f"{url} is on the source blocklist: {reason}"
    return None


def plain_body(body: str) -> str:
    """The body as running text for a reading-grade formula: headings and list items as sentences, no markup."""
    lines = []
    for line in body.split("\n"):
        line = _HEADING_MARK.sub("", _MARKUP.sub("", line)).replace("**", "").replace("__", "").strip()
        if line and line[-1] not in ".!?:;":
            line += "."  # a heading or list item is a sentence of its own to a reader
        lines.append(line)
    return "\n".join(lines)


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade from the textstat library (the formula readability checkers use)."""
    try:
        import textstat
    except ImportError as err:  # pragma: no cover - a main dependency; the message says how to fix a broken install
        raise ArticleCheckError("the textstat package is missing: run `pip install -e .` in the project") from err
    return round(float(textstat.flesch_kincaid_grade(text)), 1)


def opening_pointer(sentence: str) -> tuple[Level, str] | None:
    """The word a sentence opens with that points back to an earlier sentence, and how serious it is."""
    text = _MARKUP.sub("", sentence).replace("**", "").replace("*", "").strip().lower()
    for phrase in _LINKING_PHRASES:
        if text.startswith(phrase):
            text = text[len(phrase):].lstrip(" ,;:")
            break
    words = _WORD.findall(text)
    while words and words[0] in _LINKING_WORDS:
        words = words[1:]
    if not words:
        return None
    first = words[0]
    if first in _PAIR_WORDS and _PAIR_WORDS[first] in words[2:8]:
        return None
    if first in _POINTING_WORDS:
        return "error", first
    if first in _WEAK_POINTING_WORDS:
        return "warning", first
    return None


def _line_of(body_offset_lines: list[int], offset: int) -> int:
    """1-based line number of a character offset, from the offsets where lines start."""
    return bisect.bisect_right(body_offset_lines, offset)


def _front_matter_findings(meta: dict, title: str, rules: Rules) -> list[Finding]:
    """Required fields, their types, and the review date."""
    found: list[Finding] = []
    for key in ("title", "summary", "reviewed"):
        if not str(meta.get(key) or "").strip():
            found.append(Finding("error", "front-matter", f"`{key}:` is missing or empty"))
    topics = meta.get("topics")
    if not (isinstance(topics, list) and topics and all(isinstance(t, str) and t.strip() for t in topics)):
        found.append(Finding("error", "front-matter", "`topics:` must be a non-empty list of words"))
    if meta.get("audience") not in AUDIENCES:
        found.append(Finding("error", "front-matter", f"`audience:` must be one of {', '.join(AUDIENCES)}"))
    if meta.get("title") and title and str(meta["title"]).strip() != title:
        found.append(Finding("error", "front-matter", f"the '#' title {title!r} differs from `title:`"))
    if not title:
        found.append(Finding("error", "front-matter", "no '#' title line in the body"))
    reviewed = meta.get("reviewed")
    if reviewed:
        try:
            date = reviewed if isinstance(reviewed, dt.date) else dt.date.fromisoformat(str(reviewed).strip())
        except ValueError:
            found.append(Finding("error", "front-matter", f"`reviewed:` {reviewed!r} is not a date like 2026-11-29"))
        else:
            age = (rules.today - date).days
            if age > rules.stale_after_days:
                found.append(Finding("warning", "stale",
                                     f"reviewed {date.isoformat()}, {age} days ago: check the facts against the sources again"))
    return found


def _source_findings(meta: dict) -> list[Finding]:
    """Sources present, and none a reader should not trust."""
    sources = meta.get("sources")
    if not isinstance(sources, list) or not sources:
        return [Finding("error", "sources", "`sources:` must list the URL of every source used")]
    return [Finding("error", "sources", problem) for url in sources if (problem := source_problem(url))]


def _sentence_findings(body: str, first_line: int) -> list[Finding]:
    """Sentences that cannot be quoted alone because they open by pointing back; lines count from the file's top."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", body)]
    found: list[Finding] = []
    for start, end in split_sentences(body):
        sentence = body[start:end]
        if sentence.lstrip().startswith("#"):
            continue
        hit = opening_pointer(sentence)
        if hit:
            level, word = hit
            short = squash_whitespace(sentence)
            short = short if len(short) <= 90 else short[:87] + "..."
            found.append(Finding(level, "stands-alone",
                                 f'opens with "{word}", so it may not make sense quoted alone: "{short}"',
                                 first_line + _line_of(line_starts, start)))
    return found


def _question_key_findings(meta: dict, body: str, rules: Rules) -> list[Finding]:
    """Each `##` section should carry the ways patients ask it (front matter `questions:`)."""
    _, sections = sections_from_markdown(body)
    headings = []
    for section in sections:
        if len(section.heading_path) >= 1 and section.heading_path[0] not in headings:
            headings.append(section.heading_path[0])
    keys = meta.get("questions") or {}
    if not isinstance(keys, dict):
        return [Finding("error", "question-keys", "`questions:` must map each '##' heading to a list of questions")]
    found: list[Finding] = []
    for heading, asked in keys.items():
        if heading not in headings:
            found.append(Finding("error", "question-keys", f"`questions:` names {heading!r}, which is not a '##' heading"))
        elif not (isinstance(asked, list) and all(isinstance(q, str) and q.strip() for q in asked)):
            found.append(Finding("error", "question-keys", f"`questions:` for {heading!r} must be a list of questions"))
    for heading in headings:
        if heading == QUESTIONS_HEADING:
            continue
        count = len(keys.get(heading) or []) if isinstance(keys.get(heading), list) else 0
        if count < rules.min_question_keys:
            found.append(Finding("warning", "question-keys",
                                 f"section {heading!r} has {count} question keys (want {rules.min_question_keys})"))
    return found


def check_article(path: Path, rules: Rules = Rules()) -> ArticleReport:
    """Every check on one Markdown article."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return ArticleReport(str(path), "", 0, None, (Finding("error", "read", f"cannot read the file: {err}"),))
    try:
        meta, body = split_front_matter(text)
    except LoadError as err:
        return ArticleReport(str(path), "", 0, None, (Finding("error", "front-matter", str(err)),))
    if not meta:
        return ArticleReport(str(path), "", len(body.split()), None,
                             (Finding("error", "front-matter", "no YAML front matter between '---' lines"),))
    title, _ = sections_from_markdown(body)
    findings = _front_matter_findings(meta, title, rules) + _source_findings(meta)
    plain = plain_body(body)
    grade = reading_grade(plain) if plain.strip() else None
    if grade is not None and grade > rules.max_grade:
        findings.append(Finding("error", "reading-grade",
                                f"Flesch-Kincaid grade {grade} is above {rules.max_grade}: use shorter sentences and common words"))
    front_matter_lines = text[: len(text) - len(body)].count("\n")
    findings += _sentence_findings(body, front_matter_lines) + _question_key_findings(meta, body, rules)
    return ArticleReport(str(path), title or str(meta.get("title", "")), len(plain.split()), grade, tuple(findings))


def article_paths(paths: Sequence[Path]) -> list[Path]:
    """The Markdown files named, or found in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.glob("*.md"))
        elif path.is_file():
            found.append(path)
        else:
            raise ArticleCheckError(f"{path} does not exist: give article files or a folder of them")
    if not found:
        raise ArticleCheckError(f"no Markdown (.md) articles in {', '.join(map(str, paths))}")
    return found


def with_pack_findings(reports: list[ArticleReport], root: Path, packs: Path,
                       chunking: dict[str, object]) -> list[ArticleReport]:
    """A warning on each article under `root` whose shipped vectors are out of date: a new user's first build would
    embed it (the answers stay the same, only slower)."""
    from dataclasses import replace

    from knowledge.vector_packs import stale_packs

    under = [Path(r.path) for r in reports if Path(r.path).resolve().is_relative_to(root.resolve())]
    stale = set(stale_packs(under, root, packs, chunking))
    message = "its shipped vectors are out of date: run 'make vectors' (patient-qa index pack) and commit knowledge/vectors"
    return [replace(r, findings=(*r.findings, Finding("warning", "vectors", message))) if r.path in stale else r
            for r in reports]


def check_articles(paths: Iterable[Path], rules: Rules = Rules()) -> list[ArticleReport]:
    """Every check on every article named or found."""
    return [check_article(path, rules) for path in article_paths(list(paths))]
