"""The one base class of every error patient-qa expects: `ui.cli.main` prints its message as one line.

Lives at the bottom of the dependency chain (`knowledge`, standard library only) so every layer can derive from it.
"""

from __future__ import annotations


class PatientQAError(Exception):
    """A problem a person can fix; the message says what happened and what to do, on one line."""


def fail(message: str, code: int) -> int:
    """Print `message` as the one `patient-qa: ...` line on stderr and return the exit code, for every command."""
    import sys

    print(f"patient-qa: {message}", file=sys.stderr)
    return code
