"""PNG plots of a report with matplotlib (headless): per-category bars, triage confusion matrix, latency histogram."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    """matplotlib on the Agg backend: no display needed, nothing opens a window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(report: dict, out_dir: Path) -> list[Path]:
    """categories.png, triage_confusion.png and latency.png into out_dir; returns the paths."""
    out_dir = Path(out_dir)
    return [
        plot_categories(report, out_dir / "categories.png"),
        plot_confusion(report, out_dir / "triage_confusion.png"),
        plot_latency(report, out_dir / "latency.png"),
    ]


def _category_series(report: dict) -> tuple[str, dict[str, float], dict[str, int]]:
    """Fact hit per category for dev sets; gold article among quoted per category for medquad sets."""
    metrics = report["metrics"]
    if metrics["facts"]["answer_followup"]["total"]:
        data = metrics["facts"]["by_category"]
        title = "Fact hit rate by category (answer and followup items)"
    else:
        data = metrics["gold_article"]["hit_at_3_by_category"]
        title = "Gold article among quoted articles, by question type"
    rates = {c: v["rate"] or 0.0 for c, v in data.items()}
    counts = {c: v["total"] for c, v in data.items()}
    return title, rates, counts


def _save(plt, fig, path: Path) -> Path:
    """Lay out, write the PNG and free the figure (matplotlib keeps figures alive otherwise)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_categories(report: dict, path: Path) -> Path:
    """Horizontal bars, one per category, weakest at the bottom, labelled with rate and count."""
    plt = _pyplot()
    title, rates, counts = _category_series(report)
    names = sorted(rates, key=lambda c: rates[c])
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(names) + 1)))
    bars = ax.barh(names, [rates[c] * 100 for c in names], color="#4C72B0")
    for bar, name in zip(bars, names):
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2,
                f"{rates[name] * 100:.0f}% (n={counts[name]})", va="center", fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xlabel("%")
    ax.set_title(title, fontsize=10)
    return _save(plt, fig, path)


def plot_confusion(report: dict, path: Path) -> Path:
    """The triage confusion matrix as a heat map with counts (rows expected, columns given)."""
    plt = _pyplot()
    triage = report["metrics"]["triage"]
    labels, matrix = triage["labels"], triage["matrix"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("triage given")
    ax.set_ylabel("expected")
    ax.set_title("Triage confusion matrix", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(plt, fig, path)


def plot_latency(report: dict, path: Path) -> Path:
    """Histogram of per-question ask latency with the p50 and p95 marked."""
    plt = _pyplot()
    values = [item["latency_ms"] for item in report["items"]]
    latency = report["metrics"]["latency_ms"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(values, bins=min(40, max(5, len(values) // 5)), color="#55A868")
    for name, color in (("p50", "black"), ("p95", "#C44E52")):
        if latency[name] is not None:
            ax.axvline(latency[name], color=color, linestyle="--", label=f"{name} {latency[name]:.1f} ms")
    ax.set_xlabel("ask latency (ms, wall clock)")
    ax.set_ylabel("questions")
    ax.set_title("Latency of Assistant.ask", fontsize=10)
    ax.legend()
    return _save(plt, fig, path)
