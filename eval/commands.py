"""`patient-qa eval` and `patient-qa bench`: argument parsing only; the work is imported when a command runs."""

from __future__ import annotations


def add_eval_parsers(sub) -> None:
    """Placeholder until the eval harness lands (issue 6)."""
