"""Re-check quotes against the source files themselves, independently of the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from knowledge.text import squash_whitespace

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".text")


@dataclass(frozen=True)
class SourceText:
    """A source file's text (whitespace-normalised) and the section names a quote may cite."""

    text: str
    sections: frozenset[str]
    error: str = ""


@dataclass(frozen=True)
class QuoteCheck:
    """Whether one quote is verbatim in its source file and cites a section that exists there."""

    verbatim: bool
    section_exists: bool
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.verbatim and self.section_exists


@dataclass
class SourceChecker:
    """Reads each source file once; relative paths are resolved against `base` (the working folder)."""

    base: Path = field(default_factory=Path.cwd)
    _cache: dict[str, SourceText] = field(default_factory=dict)

    def source(self, source_path: str) -> SourceText:
        """The source's normalised text and section names; a missing or unreadable file gives an empty text."""
        if source_path not in self._cache:
            self._cache[source_path] = _read_source(self._resolve(source_path))
        return self._cache[source_path]

    def _resolve(self, source_path: str) -> Path:
        path = Path(source_path).expanduser()
        return path if path.is_absolute() else self.base / path

    def check(self, text: str, source_path: str, section: str) -> QuoteCheck:
        """Verbatim after whitespace normalisation, and the cited section is a heading (or the title) of the source."""
        source = self.source(source_path)
        if source.error:
            return QuoteCheck(False, False, source.error)
        quote = squash_whitespace(text)
        verbatim = bool(quote) and quote in source.text
        section_exists = section in source.sections
        problems = []
        if not verbatim:
            problems.append(f"quote not found verbatim in {source_path}")
        if not section_exists:
            problems.append(f"section '{section}' is not a heading of {source_path}")
        return QuoteCheck(verbatim, section_exists, "; ".join(problems))


def _read_source(path: Path) -> SourceText:
    """Markdown and text are compared with the file as written; other formats with the loader's extracted text."""
    from knowledge.loaders import LoadError, load_document

    if not path.exists():
        return SourceText("", frozenset(), f"source file {path} does not exist")
    try:
        document = load_document(path)
    except (LoadError, OSError) as err:
        return SourceText("", frozenset(), f"source file {path} cannot be read ({err})")
    sections = {document.title}
    for section in document.sections:
        sections.update(section.heading_path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        text = path.read_text(encoding="utf-8-sig")
    else:
        text = "\n".join(section.text for section in document.sections)
    return SourceText(squash_whitespace(text), frozenset(sections))
