"""Question -> triage -> retrieval -> quoted answer. `qa.Assistant` is the one way to ask."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.assistant import Assistant
    from qa.types import Answer, Quote

__all__ = ["Answer", "Assistant", "Quote"]


def __getattr__(name: str):
    """Lazy exports: `import qa` stays cheap; the model loads only when an Assistant is made."""
    if name == "Assistant":
        from qa.assistant import Assistant

        return Assistant
    if name in {"Answer", "Quote"}:
        from qa import types

        return getattr(types, name)
    raise AttributeError(name)
