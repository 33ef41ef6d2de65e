"""`patient-qa eval leaflets`: the same MedQuAD-dev articles as Markdown, as printed PDF leaflets and as web pages.

Hospitals hand out PDF leaflets and web pages, not Markdown. This renders twelve MedQuAD-dev articles to PDF
(italic running header, "Page N of M" footer, two columns for some, a table for one, a junk or missing
/Title for most) and to HTML (site navigation, breadcrumbs, a cookie banner, a sidebar and a footer, plus a
page that is only navigation), indexes each format on its own, asks the articles' own questions and reports,
per format: how often a quote comes from the section that answers the question, whether every title is
right, whether header, footer or navigation text reaches a quote, title or section name, and whether every
quote is verbatim in the text the loader produced. The files are rendered at run time, never committed.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from knowledge.text import squash_whitespace

LEAFLET_COUNT = 12
MIN_QUESTIONS = 3  # articles whose sections are each asked about
MAX_WORDS = 2500  # a leaflet is a few pages, not a booklet
FORMATS = ("markdown", "pdf", "html")
RUNNING_HEADER = "Cancer Information Service - patient leaflet"
FOOTER = re.compile(r"Page \d+ of \d+")
SITE = "Cancer Information Service"
NAV_LABELS = ("Home", "Cancer types", "Treatments", "Support and services", "Contact us")
COOKIE_NOTICE = "We use cookies to make this site work. Accept all cookies or manage your cookie choices."
SIDEBAR = ("Related pages", "Clinical trials near you", "Talk to a nurse", "Paying for care")
FOOTER_TEXT = "© 2025 Cancer Information Service. Privacy policy. Terms of use. Accessibility."
CHROME = (RUNNING_HEADER, SITE, *NAV_LABELS, "cookie", *SIDEBAR, "Privacy policy", "Terms of use", "Page ")
CONTACTS = (("Who to call", "Number"), ("Clinic reception", "555-0100"), ("Nurse line, day and night", "555-0199"),
            ("Pharmacy", "555-0123"))
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEFAULT_OUT = Path("eval/report/leaflets")


class LeafletError(Exception):
    """The leaflet set cannot be built (no MedQuAD-dev folder, no fonts); the message says what to do."""


@dataclass(frozen=True)
class LeafletQuestion:
    """A MedQuAD question and the section of its article that answers it."""

    id: str
    question: str
    article: str
    section: str


@dataclass(frozen=True)
class LeafletArticle:
    """One MedQuAD-dev article as the renderers need it: title, sections in order, its questions."""

    stem: str
    title: str
    source: Path
    sections: tuple[tuple[str, str], ...]  # (heading, body text)
    questions: tuple[LeafletQuestion, ...]


@dataclass(frozen=True)
class LeafletSet:
    """The rendered folders, one per format, and what each file should turn into."""

    folders: dict[str, Path]
    articles: tuple[LeafletArticle, ...]
    expected_skips: dict[str, tuple[str, ...]]  # format -> file names that must be skipped


def select_articles(medquad: Path, count: int = LEAFLET_COUNT) -> list[LeafletArticle]:
    """`count` articles spread over the alphabet whose every section answers one of their questions."""
    from knowledge.loaders import load_document

    questions_file = medquad / "questions.jsonl"
    if not questions_file.is_file():
        raise LeafletError(f"no MedQuAD-dev questions at {questions_file}; give the folder with --medquad DIR")
    by_article: dict[str, list[dict]] = {}
    for line in questions_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            by_article.setdefault(item["gold_article"], []).append(item)
    usable: list[LeafletArticle] = []
    for stem in sorted(by_article):
        source = medquad / "articles" / f"{stem}.md"
        if not source.is_file():
            continue
        doc = load_document(source)
        sections = tuple((s.heading_path[-1] if s.heading_path else "", s.text) for s in doc.sections)
        names = [name for name, _ in sections]
        by_text = {squash_whitespace(text): name for name, text in sections}
        questions = []
        for item in by_article[stem]:
            section = by_text.get(squash_whitespace(item["gold_answer"]))
            if section:
                questions.append(LeafletQuestion(item["id"], item["question"], stem, section))
        words = sum(len(text.split()) for _, text in sections)
        if (len(questions) >= MIN_QUESTIONS and len(questions) == len(by_article[stem]) and all(names)
                and len(set(names)) == len(names) and words <= MAX_WORDS):
            usable.append(LeafletArticle(stem, doc.title, source, sections, tuple(questions)))
    if len(usable) < count:
        raise LeafletError(f"only {len(usable)} usable articles in {medquad}, {count} needed")
    return [usable[round(i * len(usable) / count)] for i in range(count)]


# ---------------------------------------------------------------- rendering


def _paragraphs(text: str) -> list[str]:
    """A section body as paragraphs and list items, in order."""
    return [p.strip() for p in re.split(r"\n\s*\n|\n(?=\s*[-*+] )", text) if p.strip()]


def leaflet_pdf(running_header: str, header_gap: float = 0):
    """An FPDF document as a word processor prints a leaflet: DejaVu fonts ("dejavu", regular, bold, italic), an
    italic running header and a "Page N of M" footer on every page; the eval and the PDF tests both draw on it."""
    from fpdf import FPDF

    if not (DEJAVU_DIR / "DejaVuSans.ttf").exists():
        raise LeafletError(f"no DejaVu fonts in {DEJAVU_DIR}; install them (apt-get install fonts-dejavu-core)")

    class Leaflet(FPDF):
        def header(self) -> None:
            self.set_font("dejavu", "I", 9)
            self.cell(0, 6, running_header, align="C", new_x="LMARGIN", new_y="NEXT")
            if header_gap:
                self.ln(header_gap)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("dejavu", "I", 9)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = Leaflet()
    for style, name in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf"), ("I", "DejaVuSans-Oblique.ttf")):
        pdf.add_font("dejavu", style=style, fname=str(DEJAVU_DIR / name))
    return pdf


def render_pdf(article: LeafletArticle, path: Path, *, columns: bool = False, table: bool = False,
               metadata_title: str = "") -> Path:
    """A printed leaflet: italic running header, bold headings, "Page N of M" footer; optionally two columns
    and a contacts table."""
    pdf = leaflet_pdf(RUNNING_HEADER, header_gap=3)
    if metadata_title:
        pdf.set_title(metadata_title)
    pdf.add_page()
    pdf.set_font("dejavu", "B", 18)
    pdf.multi_cell(0, 9, article.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    if columns:
        with pdf.text_columns(ncols=2, gutter=8, text_align="J", balance=True) as cols:
            for heading, body in article.sections:
                pdf.set_font("dejavu", "B", 13)
                with cols.paragraph(text_align="L", top_margin=3, bottom_margin=1) as par:
                    par.write(heading)
                pdf.set_font("dejavu", "", 10)
                for paragraph in _paragraphs(body):
                    with cols.paragraph(bottom_margin=2) as par:
                        par.write(_bullet(paragraph))
    else:
        for heading, body in article.sections:
            pdf.set_font("dejavu", "B", 13)
            pdf.ln(2)
            pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("dejavu", "", 11)
            for paragraph in _paragraphs(body):
                pdf.multi_cell(0, 6, _bullet(paragraph), align="J", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
    if table:
        pdf.set_font("dejavu", "B", 13)
        pdf.ln(2)
        pdf.multi_cell(0, 7, "Who to call", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("dejavu", "", 11)
        with pdf.table(col_widths=(60, 40)) as grid:
            for cells in CONTACTS:
                row = grid.row()
                for cell in cells:
                    row.cell(cell)
    pdf.output(str(path))
    return path


def _bullet(paragraph: str) -> str:
    """A Markdown list item drawn as a bullet, as a word processor prints it."""
    return re.sub(r"^[-*+]\s+", "• ", paragraph)


def render_html(article: LeafletArticle, path: Path) -> Path:
    """A hospital web page: the article inside navigation, breadcrumbs, a cookie banner, a sidebar and a footer."""
    e = html.escape
    body = [f"<h1>{e(article.title)}</h1>"]
    for heading, text in article.sections:
        body.append(f"<h2>{e(heading)}</h2>")
        items: list[str] = []
        for paragraph in _paragraphs(text):
            if re.match(r"[-*+]\s", paragraph):
                items.append(f"<li>{e(paragraph[2:].strip())}</li>")
                continue
            if items:
                body.append("<ul>" + "".join(items) + "</ul>")
                items = []
            body.append(f"<p>{e(paragraph)}</p>")
        if items:
            body.append("<ul>" + "".join(items) + "</ul>")
    path.write_text(_page(f"{e(article.title)} | {SITE}", "\n".join(body), e(article.title)), encoding="utf-8")
    return path


def _page(title: str, main: str, crumb: str) -> str:
    """The site's chrome around `main`."""
    nav = "".join(f'<li><a href="/{i}">{label}</a></li>' for i, label in enumerate(NAV_LABELS))
    side = "".join(f'<li><a href="/s{i}">{label}</a></li>' for i, label in enumerate(SIDEBAR[1:]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>window.dataLayer = [];</script><style>nav li {{ display: inline; }}</style></head>
<body>
<header><a class="logo" href="/">{SITE}</a><nav class="main-menu"><ul>{nav}</ul></nav></header>
<div id="cookie-banner" class="cookie-consent"><p>{COOKIE_NOTICE}</p><button>Accept</button></div>
<nav class="breadcrumb"><a href="/">Home</a> › <a href="/types">Cancer types</a> › {crumb}</nav>
<main><article>
{main}
</article></main>
<aside><h3>{SIDEBAR[0]}</h3><ul>{side}</ul></aside>
<footer><p>{FOOTER_TEXT}</p></footer>
</body></html>
"""


def render_set(medquad: Path, out_dir: Path, count: int = LEAFLET_COUNT) -> LeafletSet:
    """Render the chosen articles as Markdown (copies), PDF and HTML into `out_dir/<format>/`."""
    articles = select_articles(medquad, count)
    folders = {fmt: out_dir / fmt for fmt in FORMATS}
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for i, article in enumerate(articles):
        shutil.copyfile(article.source, folders["markdown"] / f"{article.stem}.md")
        # Most leaflets carry no /Title or a word processor's file name; a third carry the real title.
        metadata = (article.title, "Microsoft Word - leaflet.docx", "")[i % 3]
        render_pdf(article, folders["pdf"] / f"{article.stem}.pdf", columns=i % 3 == 1, table=i == 2,
                   metadata_title=metadata)
        render_html(article, folders["html"] / f"{article.stem}.html")
    nav = "<ul>" + "".join(f'<li><a href="/{a.stem}">{html.escape(a.title)}</a></li>' for a in articles) + "</ul>"
    (folders["html"] / "site-map.html").write_text(_page(f"Site map | {SITE}", nav, "Site map"), encoding="utf-8")
    return LeafletSet(folders, tuple(articles), {"markdown": (), "pdf": (), "html": ("site-map.html",)})


# ---------------------------------------------------------------- measuring


def _chrome_in(text: str, source_text: str) -> list[str]:
    """Header, footer or navigation phrases in `text` that the article itself does not contain."""
    found = [phrase for phrase in CHROME if phrase.lower() in text.lower() and phrase.lower() not in source_text.lower()]
    if FOOTER.search(text) and not FOOTER.search(source_text):
        found.append("Page N of M")
    return found


def evaluate_format(fmt: str, folder: Path, leaflets: LeafletSet, index_dir: Path, mode: str = "hybrid") -> dict:
    """Index one format's folder, ask every question, and score sections, titles, chrome and verbatim quotes."""

    from eval.faithfulness import SourceChecker
    from knowledge.build import build_index
    from knowledge.embedding import shared_embedder
    from knowledge.index import KnowledgeIndex
    from knowledge.loaders import LoadError, load_document
    from knowledge.settings import Settings
    from qa.assistant import Assistant

    settings = Settings.from_env().updated(index_dir=index_dir)
    embedder = shared_embedder(settings.index.model, settings.retrieval.threads)
    build = build_index([folder], settings, embedder=embedder, progress=False)
    skipped = {Path(s.path).name: s.reason for s in build.skipped}
    index = KnowledgeIndex.load(index_dir)
    assistant = Assistant(settings, index=index, embedder=embedder, mode=mode)
    source_text = {a.stem: a.source.read_text(encoding="utf-8") for a in leaflets.articles}
    suffix = {"markdown": ".md", "pdf": ".pdf", "html": ".html"}[fmt]

    documents = []
    for article in leaflets.articles:
        path = folder / f"{article.stem}{suffix}"
        try:
            doc = load_document(path, html_min_words=settings.limits.html_min_words)
        except LoadError as err:
            documents.append({"article": article.stem, "title": None, "title_ok": False, "error": str(err)})
            continue
        names = [s.heading_path[-1] for s in doc.sections if s.heading_path]
        documents.append({
            "article": article.stem, "title": doc.title, "expected": article.title, "title_ok": doc.title == article.title,
            "sections_found": sum(name in names for name, _ in article.sections), "sections": len(article.sections),
            "chrome": sorted({p for text in [doc.title, *names] for p in _chrome_in(text, source_text[article.stem])}),
        })

    checker = SourceChecker()
    pages = _PageTexts(folder) if fmt == "pdf" else None
    items = []
    for article in leaflets.articles:
        for q in article.questions:
            answer = assistant.ask(q.question, id=q.id)
            quotes = []
            for quote in answer.quotes:
                check = checker.check(quote.text, quote.source_path, quote.section)
                chrome = _chrome_in(quote.text, source_text.get(quote.article, ""))
                quotes.append({"article": quote.article, "section": quote.section, "page": quote.page,
                               "page_right": pages.on_page(quote.article, quote.page, quote.text) if pages else None,
                               "verbatim": check.verbatim, "chrome": chrome, "text": quote.text[:160]})
            items.append({
                "id": q.id, "question": q.question, "article": q.article, "section": q.section,
                "gold_section_quoted": any(x["article"] == q.article and x["section"] == q.section for x in quotes),
                "gold_article_quoted": any(x["article"] == q.article for x in quotes),
                "quotes": quotes,
            })
    quotes = [x for item in items for x in item["quotes"]]
    pdf_quotes = [x for x in quotes if fmt == "pdf"]
    return {
        "format": fmt,
        "documents": len(documents),
        "questions": len(items),
        "gold_section_quoted": _share(i["gold_section_quoted"] for i in items),
        "gold_article_quoted": _share(i["gold_article_quoted"] for i in items),
        "titles_right": _share(d["title_ok"] for d in documents),
        "sections_found": _share(d.get("sections_found", 0) == d.get("sections", -1) for d in documents),
        "quotes": len(quotes),
        "quotes_verbatim": _share(x["verbatim"] for x in quotes),
        "quotes_with_page": _share(x["page"] is not None for x in pdf_quotes) if pdf_quotes else None,
        "quotes_on_cited_page": _share(x["page_right"] for x in pdf_quotes) if pdf_quotes else None,
        "chrome_leaks": sum(bool(x["chrome"]) for x in quotes) + sum(bool(d.get("chrome")) for d in documents),
        "skipped": skipped,
        "expected_skips_ok": sorted(skipped) == sorted(leaflets.expected_skips[fmt]),
        "document_details": documents,
        "items": items,
    }


class _PageTexts:
    """Each rendered PDF's pages as pypdf reads them plainly, to check that a quote is on the page it cites."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pages: dict[str, list[str]] = {}

    def on_page(self, article: str, page: int | None, text: str) -> bool:
        """The quote's opening (spaces and hyphens ignored: lines break there) is on page `page`."""
        if page is None:
            return False
        if article not in self.pages:
            from pypdf import PdfReader

            reader = PdfReader(self.folder / f"{article}.pdf")
            self.pages[article] = [_squash(p.extract_text() or "") for p in reader.pages]
        texts = self.pages[article]
        return 0 < page <= len(texts) and _squash(text)[:40] in texts[page - 1]


def _squash(text: str) -> str:
    return re.sub(r"[\s\-]+", "", text)


def _share(values) -> float:
    values = [bool(v) for v in values]
    return round(sum(values) / len(values), 4) if values else 0.0


def run_leaflet_eval(medquad: Path, out_dir: Path, mode: str = "hybrid", count: int = LEAFLET_COUNT,
                     formats: tuple[str, ...] = FORMATS) -> dict:
    """Render, index and score every format; writes leaflets.json and leaflets.md into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    leaflets = render_set(medquad, out_dir / "files", count)
    results = {fmt: evaluate_format(fmt, leaflets.folders[fmt], leaflets, out_dir / "indexes" / fmt, mode)
               for fmt in formats}
    report = {"medquad": str(medquad), "mode": mode, "articles": [a.stem for a in leaflets.articles],
              "formats": results}
    (out_dir / "leaflets.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "leaflets.md").write_text(render_leaflet_table(report), encoding="utf-8")
    return report


HEADLINES = (("gold_section_quoted", "Gold section quoted"), ("gold_article_quoted", "Gold article quoted"),
             ("titles_right", "Titles right"), ("sections_found", "All sections found"),
             ("quotes_verbatim", "Quotes verbatim in the loaded text"), ("quotes_with_page", "PDF quotes cite a page"),
             ("quotes_on_cited_page", "PDF quotes are on the page they cite"))


def render_leaflet_table(report: dict) -> str:
    """Markdown vs PDF vs HTML side by side, then every miss."""
    formats = list(report["formats"])
    lines = [f"# Leaflet eval: {len(report['articles'])} MedQuAD-dev articles per format (mode {report['mode']})", "",
             "| | " + " | ".join(formats) + " |", "|---" * (len(formats) + 1) + "|"]
    for key, label in HEADLINES:
        cells = []
        for fmt in formats:
            value = report["formats"][fmt][key]
            cells.append("-" if value is None else f"{value * 100:.1f}%")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| Header/footer/navigation text in a quote, title or section | "
                 + " | ".join(str(report["formats"][f]["chrome_leaks"]) for f in formats) + " |")
    lines.append("| Questions | " + " | ".join(str(report["formats"][f]["questions"]) for f in formats) + " |")
    for fmt in formats:
        result = report["formats"][fmt]
        lines += ["", f"## {fmt}", ""]
        for name, reason in sorted(result["skipped"].items()):
            lines.append(f"- skipped {name}: {reason}")
        for doc in result["document_details"]:
            if not doc["title_ok"] or doc.get("chrome") or doc.get("sections_found") != doc.get("sections"):
                lines.append(f"- {doc['article']}: title {doc.get('title')!r} (expected {doc.get('expected')!r}), "
                             f"{doc.get('sections_found')}/{doc.get('sections')} sections, chrome {doc.get('chrome')}"
                             + (f", {doc['error']}" if doc.get("error") else ""))
        for item in result["items"]:
            if not item["gold_section_quoted"]:
                got = ", ".join(f"{q['article']}/{q['section']}" for q in item["quotes"]) or "no quote"
                lines.append(f"- {item['id']} {item['question']!r}: wanted {item['article']}/{item['section']}, got {got}")
    return "\n".join(lines) + "\n"


def add_leaflets_parser(ev_sub: argparse._SubParsersAction) -> None:
    """`patient-qa eval leaflets`: the per-format comparison."""
    leaflets = ev_sub.add_parser(
        "leaflets", help="gold section quoted and title correctness per format: Markdown vs PDF vs HTML",
        description="Render MedQuAD-dev articles as PDF leaflets (running header, page footer, two columns, a table) "
        "and as web pages (navigation, cookie banner), index each format, ask the articles' questions and compare.")
    leaflets.add_argument("--medquad", help="medquad-dev folder (default: ../shared/datasets/medquad-dev)")
    leaflets.add_argument("--out", default=str(DEFAULT_OUT), help=f"folder for leaflets.json, leaflets.md and the "
                          f"rendered files (default: {DEFAULT_OUT})")
    leaflets.add_argument("--count", type=int, default=LEAFLET_COUNT, help="articles per format")
    leaflets.add_argument("--format", dest="formats", choices=FORMATS, action="append",
                          help="only this format (repeatable; default: all three)")
    leaflets.add_argument("--json", action="store_true", help="print the headline figures as JSON")
    leaflets.set_defaults(func=cmd_eval_leaflets)


def cmd_eval_leaflets(args: argparse.Namespace) -> int:
    """Run the leaflet eval and print the comparison; 2 with a one-line message when it cannot run."""
    from eval.workspace import MEDQUAD_DEV
    from knowledge.errors import PatientQAError

    medquad = Path(args.medquad) if args.medquad else MEDQUAD_DEV
    if args.count < 1:
        print("patient-qa: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        report = run_leaflet_eval(medquad, Path(args.out), args.mode if hasattr(args, "mode") else "hybrid",
                                  args.count, tuple(dict.fromkeys(args.formats)) if args.formats else FORMATS)
    except (LeafletError, PatientQAError) as err:
        print(f"patient-qa: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({fmt: {k: r[k] for k, _ in HEADLINES} | {"chrome_leaks": r["chrome_leaks"]}
                          for fmt, r in report["formats"].items()}))
    else:
        print(render_leaflet_table(report).split("\n## ", 1)[0].rstrip())
        print(f"Wrote {Path(args.out) / 'leaflets.json'} and {Path(args.out) / 'leaflets.md'}")
    return 0
