"""Fixtures every test package shares."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_patient_qa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide their own settings; a developer's PATIENT_QA_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("PATIENT_QA_"):
            monkeypatch.delenv(name)
