"""The regression gate: compare a report's headline figures with a saved baseline, within stated tolerances."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import PatientQAError


@dataclass(frozen=True)
class Tolerance:
    """How far a headline figure may move the wrong way (in rate points, 0.02 = 2 points) before it counts."""

    points: float
    higher_is_better: bool = True


# Missed emergencies and unfaithful quotes get no slack, one extra false alarm in ~200 calm items is
# tolerated, quality figures get 2 points. The pipeline is deterministic: tolerances absorb small edits
# to articles and gold items, not run-to-run noise (latency is noisy, so it is reported, never gated).
GATED: dict[str, Tolerance] = {
    "fact_hit_rate": Tolerance(0.02),
    "emergency_recall": Tolerance(0.0),
    "self_harm_recall": Tolerance(0.0),
    "false_alarm_rate": Tolerance(0.01, higher_is_better=False),
    "defer_accuracy": Tolerance(0.02),
    "out_of_scope_accuracy": Tolerance(0.02),
    "faithfulness": Tolerance(0.0),
    "uncovered_handled": Tolerance(0.02),
    "false_abstention_rate": Tolerance(0.01, higher_is_better=False),
    "gold_article_hit_at_1": Tolerance(0.02),
    "gold_article_hit_at_3": Tolerance(0.02),
    "token_recall": Tolerance(0.02),
}
REPORTED_ONLY = ("abstention_precision", "abstention_recall", "retrieval_gold_hit_at_1",
                 "retrieval_gold_hit_at_5_chunks", "latency_p50_ms", "latency_p95_ms")
EPSILON = 1e-9


class BaselineError(PatientQAError, ValueError):
    """The baseline file is missing or not a report; the message says how to make one."""


@dataclass(frozen=True)
class Delta:
    """One headline figure before and after."""

    name: str
    baseline: float | None
    current: float | None
    tolerance: Tolerance | None  # None: reported, never gated

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def regressed(self) -> bool:
        """Moved the wrong way by more than the tolerance, or disappeared from the report."""
        if self.tolerance is None or self.baseline is None:
            return False
        if self.current is None:
            return True
        worse = -self.change if self.tolerance.higher_is_better else self.change
        return worse > self.tolerance.points + EPSILON

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "baseline": self.baseline,
            "current": self.current,
            "change": None if self.change is None else round(self.change, 4),
            "tolerance": None if self.tolerance is None else self.tolerance.points,
            "higher_is_better": True if self.tolerance is None else self.tolerance.higher_is_better,
            "gated": self.tolerance is not None,
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class Comparison:
    """A report against a baseline: every delta, what regressed, and which items changed outcome."""

    baseline_path: str
    deltas: tuple[Delta, ...]
    newly_failing: tuple[str, ...]
    newly_passing: tuple[str, ...]
    same_gold: bool

    @property
    def regressions(self) -> tuple[Delta, ...]:
        return tuple(d for d in self.deltas if d.regressed)

    def summary_lines(self) -> list[str]:
        """What dropped, one line each, for the terminal and the gate's exit message."""
        lines = []
        for d in self.regressions:
            if d.current is None:
                lines.append(f"{d.name}: missing from this report (baseline {_show(d.name, d.baseline)})")
                continue
            lines.append(
                f"{d.name}: {_show(d.name, d.baseline)} -> {_show(d.name, d.current)} "
                f"(tolerance {d.tolerance.points * 100:.0f} points)"
            )
        if self.newly_failing:
            lines.append(f"items failing now that passed in the baseline: {', '.join(self.newly_failing)}")
        return lines

    def to_json(self) -> dict:
        return {
            "baseline": self.baseline_path,
            "same_gold": self.same_gold,
            "deltas": [d.to_json() for d in self.deltas],
            "regressions": [d.name for d in self.regressions],
            "newly_failing": list(self.newly_failing),
            "newly_passing": list(self.newly_passing),
        }


def _show(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} ms" if name.endswith("_ms") else f"{value * 100:.1f}%"


def load_baseline(path: Path) -> dict:
    """A saved report or baseline file (JSON with a "headline" object)."""
    path = Path(path)
    if not path.exists():
        raise BaselineError(f"no baseline at {path}; create one with 'patient-qa eval --write-baseline {path}'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise BaselineError(f"{path} is not JSON ({err}); regenerate it with 'patient-qa eval --write-baseline'") from None
    if not isinstance(data, dict) or not isinstance(data.get("headline"), dict):
        raise BaselineError(f"{path} has no \"headline\" figures; it must be a report.json or a baseline file")
    return data


def compare(report: dict, baseline: dict, baseline_path: str = "") -> Comparison:
    """Delta of every headline figure present in either report; gated figures carry their tolerance."""
    names = list(GATED) + [n for n in REPORTED_ONLY]
    names += [n for n in {**baseline["headline"], **report["headline"]} if n not in names]
    deltas = tuple(
        Delta(name, baseline["headline"].get(name), report["headline"].get(name), GATED.get(name))
        for name in names
        if baseline["headline"].get(name) is not None or report["headline"].get(name) is not None
    )
    before = _outcomes(baseline)
    after = _outcomes(report)
    newly_failing = tuple(i for i, ok in after.items() if not ok and before.get(i) is True)
    newly_passing = tuple(i for i, ok in after.items() if ok and before.get(i) is False)
    same_gold = baseline.get("gold", {}).get("sha256") == report.get("gold", {}).get("sha256")
    return Comparison(baseline_path, deltas, newly_failing, newly_passing, same_gold)


def _outcomes(report: dict) -> dict[str, bool]:
    """item id -> passed, from a full report ("items") or a baseline ("outcomes")."""
    if isinstance(report.get("outcomes"), dict):
        return {str(k): not v for k, v in report["outcomes"].items()}
    return {str(i["id"]): bool(i.get("passed")) for i in report.get("items", [])}


def _portable(path: str) -> str:
    """A path relative to the working folder when it is inside it, so a committed baseline names no home folder."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return Path(path).name


def baseline_from_report(report: dict) -> dict:
    """The commit-ready baseline: headline figures, the metrics without per-quote detail, and each item's failures."""
    metrics = json.loads(json.dumps(report["metrics"]))
    metrics.get("faithfulness", {}).pop("problems", None)
    return {
        "schema": report["schema"],
        "kind": "baseline",
        "created_at": report["created_at"],
        "gold": {**report["gold"], "path": _portable(report["gold"]["path"])},
        "index": {k: report["index"].get(k) for k in ("model", "documents", "chunks", "sentences")},
        "mode": report["mode"],
        "headline": report["headline"],
        "tolerances": {name: {"points": t.points, "higher_is_better": t.higher_is_better} for name, t in GATED.items()},
        "metrics": metrics,
        # id -> reasons it fails (empty list: passes); lets the gate name the items that started failing.
        "outcomes": {item["id"]: item["failures"] for item in report["items"]},
    }
