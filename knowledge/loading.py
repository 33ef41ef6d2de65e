"""What every file reader shares: the `LoadError` a maintainer sees, and small helpers for titles and sizes."""

from __future__ import annotations

from pathlib import Path

from knowledge.errors import PatientQAError

SIZE_HINT = "PATIENT_QA_MAX_FILE_MB"


class LoadError(PatientQAError):
    """A file that cannot be indexed; the message is the one-line reason shown to the maintainer."""


def megabytes(size: int) -> str:
    """A byte count as MB for a reason line: 1160000 -> '1.2', 5000000 -> '5'."""
    return f"{size / 1_000_000:.1f}".removesuffix(".0") if size >= 100_000 else f"{size / 1_000_000:.2g}"


def title_from_path(source_path: str) -> str:
    """A readable title from a file name: 'car-t_basics.md' -> 'Car t basics'."""
    stem = Path(source_path).stem.replace("_", " ").replace("-", " ").strip()
    return stem[:1].upper() + stem[1:] if stem else "Untitled"
