"""The typed settings: real defaults, one reader for variables and flags, checked ranges, `patient-qa settings`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.settings import SPECS, Settings, SettingsError
from knowledge.text import squash_whitespace
from ui import cli


def test_every_setting_has_a_description_and_a_unique_variable() -> None:
    assert all(spec.help for spec in SPECS.values())
    variables = [spec.variable for spec in SPECS.values()]
    assert len(variables) == len(set(variables))
    # the knobs that used to live in qa/ are here, with their calibrated values as real defaults
    answer = Settings().answer
    assert (answer.abstain_threshold, answer.scope_threshold, answer.no_shared_words_threshold) == (0.30, 0.40, 0.46)
    assert answer.weights.sentence == 0.40 and Settings().retrieval.rrf_k == 60


def test_variables_take_the_field_types_and_reach_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENT_QA_ABSTAIN_THRESHOLD", "0")
    monkeypatch.setenv("PATIENT_QA_WEIGHT_SENTENCE", "0.5")
    monkeypatch.setenv("PATIENT_QA_MODE", "bm25")
    monkeypatch.setenv("PATIENT_QA_INDEX_DIR", "~/somewhere")
    settings = Settings.from_env()
    assert settings.answer.abstain_threshold == 0.0  # 0 is a real value: never abstain for low confidence
    assert settings.answer.weights.sentence == 0.5 and settings.retrieval.mode == "bm25"
    assert settings.index.index_dir == Path("~/somewhere").expanduser()
    assert Settings.from_env(abstain_threshold=0.2).answer.abstain_threshold == 0.2  # code beats the variable


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("PATIENT_QA_SCOPE_THRESHOLD", "1.5", "scope_threshold must be at most 1"),
    ("PATIENT_QA_NO_SHARED_WORDS_THRESHOLD", "-0.1", "must be at least 0"),
    ("PATIENT_QA_MODE", "fast", "mode must be one of hybrid, bm25, dense"),
    ("PATIENT_QA_MAX_QUOTES", "two", "PATIENT_QA_MAX_QUOTES='two' is not a whole number"),
    ("PATIENT_QA_ABSTAIN_THRESHOLD", "nan", "not NaN"),
])
def test_a_bad_value_is_a_one_line_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              variable: str, value: str, words: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env()
    assert cli.main(["settings"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("patient-qa: ") and words in err


def test_updated_checks_values_and_leaves_the_original_alone() -> None:
    base = Settings()
    changed = base.updated(max_quotes=2, index_dir="/tmp/x")
    assert changed.answer.max_quotes == 2 and changed.index.index_dir == Path("/tmp/x")
    assert base.answer.max_quotes == 4
    with pytest.raises(SettingsError, match="max_quotes must be at least 1"):
        base.updated(max_quotes=0)
    with pytest.raises(SettingsError, match="unknown setting 'abstain'"):
        base.updated(abstain=0.1)
    assert base.updated(feedback="no").chat.feedback is False  # text is read as a flag value would be
    with pytest.raises(SettingsError, match="max_quotes must be of type int, not 2.5"):
        base.updated(max_quotes=2.5)


def test_the_flat_names_of_before_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENT_QA_FEEDBACK", "off")
    settings = Settings.from_env(index_dir="/tmp/i")
    assert settings.feedback is False and settings.index_dir == Path("/tmp/i")  # type: ignore[attr-defined]
    assert settings.threads == settings.retrieval.threads  # type: ignore[attr-defined]


def test_settings_command_prints_the_effective_values(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATIENT_QA_ABSTAIN_THRESHOLD", "0.25")
    assert cli.main(["settings", "--max-quotes", "3"]) == 0
    text = capsys.readouterr().out
    assert "abstain_threshold = 0.25  (changed)" in text and "max_quotes = 3  (changed)" in text
    assert "PATIENT_QA_NO_SHARED_WORDS_THRESHOLD" in text and "[answer]" in text
    assert cli.main(["settings", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"]["abstain_threshold"] == 0.25 and data["answer"]["weights"]["margin"] == 0.15
    assert isinstance(data["index"]["index_dir"], str)


def test_help_shows_each_flags_description_default_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["ask", "--help"])
    text = squash_whitespace(capsys.readouterr().out)
    spec = SPECS["abstain_threshold"]
    assert "--abstain-threshold" in text and squash_whitespace(spec.describe()) in text


def test_a_flag_value_of_the_wrong_type_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["settings", "--abstain-threshold", "high"]) == 1
    err = capsys.readouterr().err
    assert err == "patient-qa: --abstain-threshold 'high' is not a number; fix or unset it\n"
