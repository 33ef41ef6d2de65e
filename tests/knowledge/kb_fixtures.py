"""Helpers for the knowledge tests: small articles, generated PDFs, a fake embedder (fixtures in conftest.py)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from knowledge.settings import Settings

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
REPO = Path(__file__).resolve().parents[2]
MEDQUAD = REPO.parent / "shared/datasets/medquad-dev/articles"

# Small but realistic articles: each has a distinctive fact a search must find in the right place.
ARTICLES = {
    "cytokine-release-syndrome.md": """---
title: Cytokine release syndrome
summary: Fever and low blood pressure after CAR-T.
url: https://example.org/crs
reviewed: 2025-03-01
topics: [side-effects, crs]
---

# Cytokine release syndrome

Cytokine release syndrome (CRS) is the most common side effect of CAR-T cell therapy. It happens when the new cells
release large amounts of signalling proteins into the blood.

## Signs to watch for

Fever is usually the first sign. Some people also have chills, a fast heartbeat or low blood pressure.
Tell your care team at once if your temperature reaches 38 degrees.

## Treatment

Doctors often give tocilizumab, a medicine that blocks interleukin 6. Steroids such as dexamethasone are also used.
Most people recover within a few days.
""",
    "neurotoxicity.md": """---
title: Neurotoxicity after CAR-T
url: https://example.org/icans
---

# Neurotoxicity after CAR-T

Some people become confused or have trouble finding words after CAR-T. Doctors call this ICANS.

## What caregivers notice

A caregiver may notice handwriting changes first. Nurses ask you to write a sentence every day to catch this early.
""",
    "driving.md": """---
title: Driving after treatment
---

# Driving after treatment

You should not drive for eight weeks after a CAR-T infusion. Sudden sleepiness or seizures can happen without warning.
Ask a family member or friend to drive you to appointments.
""",
    "leukapheresis.txt": """Leukapheresis collects your white blood cells. A machine draws blood from one arm, keeps the T cells and
returns the rest through the other arm. The collection takes three to six hours.
""",
}


def write_articles(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    """Write articles into `folder` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def whitespace_tokens(texts: list[str]) -> list[int]:
    """A fake tokenizer: one token per whitespace-separated word, plus [CLS] and [SEP]."""
    if not texts:
        raise IndexError("the real tokenizer fails on an empty batch, so the fake one does too")
    return [len(t.split()) + 2 for t in texts]


class FakeEmbedder:
    """The Embedder interface without a model: whitespace tokens and hashed bag-of-words unit vectors."""

    model_name = "fake-test-model"
    threads = 1
    max_tokens = 256
    dimension = 64

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def count_tokens(self, texts: list[str]) -> list[int]:
        return whitespace_tokens(texts)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.encoded.extend(texts)
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or ["_"]:
                matrix[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def fake_settings(index_dir: Path) -> Settings:
    """Settings for builds with `FakeEmbedder`."""
    return Settings().updated(index_dir=index_dir, model=FakeEmbedder.model_name)


def make_pdf(path: Path, pages: list[list[str]], *, header: str = "", footer_page_numbers: bool = False,
             title: str = "", unicode_font: bool = True, align: str = "J") -> Path:
    """Write a PDF with one list of paragraphs per page, an optional running header and "Page n of N" footer."""
    from fpdf import FPDF

    use_dejavu = unicode_font and DEJAVU.exists()
    family = "dejavu" if use_dejavu else "helvetica"

    class _Pdf(FPDF):
        def header(self) -> None:
            if header:
                self.set_font(family, size=9)
                self.cell(0, 8, header, align="C", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            if footer_page_numbers:
                self.set_y(-15)
                self.set_font(family, size=9)
                self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _Pdf()
    if use_dejavu:
        pdf.add_font("dejavu", fname=str(DEJAVU))
    if title:
        pdf.set_title(title)
    for paragraphs in pages:
        pdf.add_page()
        pdf.set_font(family, size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, align=align, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path
