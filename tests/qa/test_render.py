"""`qa.render`: citation numbers match the Sources list, and text from articles is shown, never run."""

from __future__ import annotations

import re

from qa.render import citation_numbers, render_answer, sources_block
from qa.types import DISCLAIMER, Quote


def _quote(text: str, article: str, section: str, url: str = "", page: int | None = None) -> Quote:
    return Quote(text=text, article=article, title=article.title(), section=section, url=url,
                 source_path=f"/articles/{article}.md", score=1.0, page=page)


QUOTES = (
    _quote("Fever is the first sign.", "crs", "Symptoms"),
    _quote("Tocilizumab treats it.", "crs", "Treatment", url="https://example.org/crs"),
    _quote("Chills are common too.", "crs", "Symptoms"),
    _quote("Confusion can follow.", "icans", "Signs", page=2),
)


def test_each_quote_cites_the_number_of_its_source_in_the_list() -> None:
    markdown = render_answer(QUOTES)
    cited = [int(n) for n in re.findall(r"\[(\d+)\]$", markdown, re.M)]
    assert cited == [1, 2, 1, 3]
    listed = re.findall(r"^(\d+)\. \*(\w+)\* — (\w+)", markdown.split("**Sources**")[1], re.M)
    assert listed == [("1", "Crs", "Symptoms"), ("2", "Crs", "Treatment"), ("3", "Icans", "Signs")]
    assert citation_numbers(QUOTES) == {("crs", "Symptoms", None): 1, ("crs", "Treatment", None): 2,
                                        ("icans", "Signs", 2): 3}
    assert markdown.endswith(f"*{DISCLAIMER}*")


def test_a_web_source_is_a_link_and_a_file_source_is_a_path() -> None:
    block = sources_block(QUOTES)
    assert "[https://example.org/crs](https://example.org/crs)" in block
    assert "`/articles/icans.md`" in block and ", p. 2" in block
    assert "[javascript:" not in sources_block((_quote("Some text here.", "x", "S", url="javascript:alert(1)"),))


def test_markup_from_an_article_is_escaped_everywhere_it_is_shown() -> None:
    quote = Quote(text="Call if <b>38 C</b> & rising.", article="a", title="Fever <script>x</script>",
                  section="When <i>to</i> call", url="", source_path="/a.md", score=1.0)
    markdown = render_answer((quote,), suggested=("Is <u>this</u> ok?",), note="cut <at> 2,000")
    assert "&lt;b&gt;38 C&lt;/b&gt; &amp; rising." in markdown
    assert "*Fever &lt;script&gt;x&lt;/script&gt;*" in markdown and "When &lt;i&gt;to&lt;/i&gt; call" in markdown
    assert "Is &lt;u&gt;this&lt;/u&gt; ok?" in markdown and "cut &lt;at&gt; 2,000" in markdown
    assert not re.search(r"<(b|i|u|script|at)\b", markdown)
