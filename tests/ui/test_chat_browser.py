"""The web chat in a real browser (Debian chromium + Playwright) against `patient-qa chat` on a real index.

Run with: .venv/bin/pytest tests/ui -m slow
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from pypdf import PdfReader
from ui_fixtures import free_port

from knowledge.text import squash_whitespace

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUESTION = "What is cytokine release syndrome?"
EMERGENCY = "my husband had car t 3 days ago and now has a fever of 39"
HOSTILE = ('<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> ${window.__xss=3} '
           "is tiredness after CAR-T common?")
OWN_QUESTION = "When can he drive again?"
ASKED = (QUESTION, EMERGENCY, HOSTILE, OWN_QUESTION)
API_QUESTION = "zq-5120 does CRS come back after a week?"
PHONE_WIDTH = 390
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chat_server(small_index: Path, tmp_path_factory):
    """`patient-qa chat --index ... --port ...` in a subprocess, exactly as a person starts it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)")
    data_dir = tmp_path_factory.mktemp("chat-data")
    log_path = data_dir.parent / "server.log"
    port = free_port()
    env = {**os.environ, "PATIENT_QA_DATA_DIR": str(data_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "ui.cli", "chat", "--index", str(small_index),
                                   "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"the chat server exited:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the chat server did not start in 180 s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url, log_path, data_dir
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def fresh_page(browser, url: str, **options):
    """A new browser context and page of its own, so a test sets up its own state; its requests are recorded."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    own = context.new_page()
    own.requests = []
    own.on("request", lambda request: own.requests.append(request.url))
    try:
        own.goto(url)
        own.wait_for_selector("#pqa-question textarea", timeout=TIMEOUT_MS)
        own.evaluate("window.__xss = 0")
        yield own
    finally:
        context.close()


def ask(page, question: str):
    """Type a question, press Enter, wait until the whole answer (ending in the disclaimer) is in."""
    from playwright.sync_api import expect

    before = page.locator("#pqa-chat .bot").count()
    page.fill("#pqa-question textarea", question)
    page.press("#pqa-question textarea", "Enter")
    expect(page.locator("#pqa-chat .bot")).to_have_count(before + 1, timeout=TIMEOUT_MS)
    answer = page.locator("#pqa-chat .bot").last
    expect(answer).to_contain_text("not medical advice", timeout=TIMEOUT_MS)
    return answer


def save_and_export(page, own_question: str = OWN_QUESTION):
    """Save the selected answer to the visit sheet, write a question and a note, export; returns the PDF link."""
    from playwright.sync_api import expect

    page.click("#pqa-save")
    expect(page.locator("#pqa-status")).to_contain_text("Saved to your visit sheet", timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Visit sheet").click()
    expect(page.locator("#pqa-saved blockquote").first).to_be_visible(timeout=TIMEOUT_MS)
    page.fill("#pqa-my-questions textarea", own_question)
    page.fill("#pqa-notes textarea", "Temperature 38.4 °C on Monday evening")
    page.click("#pqa-export")
    pdf_link = page.locator("#pqa-files a[href$='.pdf']").first
    expect(pdf_link).to_be_visible(timeout=TIMEOUT_MS)
    return pdf_link


def test_a_question_gets_quotes_citations_sources_and_the_disclaimer(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as page:
        expect(page.locator("#pqa-disclaimer")).to_contain_text("not medical advice")
        answer = ask(page, QUESTION)
        quote = answer.locator("blockquote").first
        expect(quote).to_contain_text("[1]")
        assert "cytokine release syndrome" in quote.inner_text().lower()
        expect(page.locator("#pqa-sources .pqa-source-title").first).to_contain_text("Cytokine release syndrome")
        marked = page.locator("#pqa-sources mark").first.inner_text()
        assert marked.split()[:4] == quote.inner_text().split()[:4]  # the quoted sentence, highlighted in context
        expect(page.locator("#pqa-sources")).to_contain_text("Article file: cytokine-release-syndrome.md")
        assert page.locator("#pqa-disclaimer").is_visible()


def test_an_emergency_shows_the_red_banner_above_the_answer(browser, chat_server):
    with fresh_page(browser, chat_server[0]) as page:
        answer = ask(page, EMERGENCY)
        banner = answer.locator(".pqa-banner-emergency")
        assert banner.is_visible()
        assert banner.get_attribute("role") == "alert"  # read out by a screen reader as it arrives
        assert "24-hour number" in banner.inner_text()
        assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(185, 28, 28)"
        first_quote = answer.locator("blockquote").first
        if first_quote.count():
            assert banner.bounding_box()["y"] < first_quote.bounding_box()["y"]


def test_no_markup_from_a_question_or_an_article_runs(browser, chat_server):
    with fresh_page(browser, chat_server[0]) as page:
        answer = ask(page, HOSTILE)
        assert page.evaluate("window.__xss") == 0
        assert page.locator("#pqa-chat img, #pqa-sources img, #pqa-chat script, #pqa-sources script").count() == 0
        question_shown = page.locator("#pqa-chat .user").last.inner_text()
        assert '<img src=x onerror="window.__xss=1">' in question_shown  # shown as the text it is
        assert "Tiredness" in page.locator("#pqa-sources").inner_text()  # the hostile article was quoted
        assert "onerror" in page.locator("#pqa-sources").inner_text() + answer.inner_text()


def test_like_with_a_comment_is_stored_locally(browser, chat_server):
    from playwright.sync_api import expect

    _, _, data_dir = chat_server
    comment = f"Short and clear {uuid.uuid4().hex[:8]}"
    with fresh_page(browser, chat_server[0]) as page:
        ask(page, QUESTION)
        page.locator("#pqa-chat .bot").first.hover()
        page.locator("#pqa-chat button[aria-label='Like']").first.click()
        expect(page.locator("#pqa-status")).to_contain_text("Thank you", timeout=TIMEOUT_MS)
        page.fill("#pqa-comment textarea", comment)
        page.click("#pqa-comment-send")
        expect(page.locator("#pqa-status")).to_contain_text("comment was saved", timeout=TIMEOUT_MS)
    rows = sqlite3.connect(data_dir / "feedback.sqlite").execute(
        "SELECT rating, question, quotes FROM feedback WHERE comment = ?", (comment,)).fetchall()
    assert rows == [("like", QUESTION, rows[0][2])]
    assert "cytokine" in rows[0][2].lower()


def test_save_to_visit_sheet_and_download_the_pdf(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0], accept_downloads=True) as page:
        ask(page, QUESTION)
        ask(page, EMERGENCY)
        page.locator("#pqa-chat .bot").first.click()  # select the earlier, CRS answer
        expect(page.locator("#pqa-sources .pqa-sources-for")).to_contain_text(QUESTION, timeout=TIMEOUT_MS)
        pdf_link = save_and_export(page)
        quote_text = page.locator("#pqa-saved blockquote").first.inner_text().rsplit(" [", 1)[0]
        with page.expect_download() as download:
            pdf_link.click()
        text = " ".join(squash_whitespace(p.extract_text()) for p in PdfReader(download.value.path()).pages)
    assert OWN_QUESTION in text
    assert squash_whitespace(quote_text) in text
    assert QUESTION in text and "Temperature 38.4 °C on Monday evening" in text
    assert EMERGENCY not in text  # only the selected answer was saved
    assert "cytokine-release-syndrome.md" in text  # the source


def test_clearing_the_sheet_asks_first_then_empties_it(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as page:
        ask(page, QUESTION)
        page.click("#pqa-save")
        expect(page.locator("#pqa-status")).to_contain_text("Saved to your visit sheet", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="Visit sheet").click()
        page.fill("#pqa-my-questions textarea", OWN_QUESTION)
        page.click("#pqa-clear-sheet")
        expect(page.locator("#pqa-confirm-clear")).to_be_visible(timeout=TIMEOUT_MS)
        page.click("#pqa-confirm-no")
        expect(page.locator("#pqa-confirm-clear")).to_be_hidden(timeout=TIMEOUT_MS)
        expect(page.locator("#pqa-saved blockquote")).not_to_have_count(0)
        page.click("#pqa-clear-sheet")
        page.click("#pqa-confirm-yes")
        expect(page.locator("#pqa-saved")).to_contain_text("No saved answers yet", timeout=TIMEOUT_MS)
        expect(page.locator("#pqa-my-questions textarea")).to_have_value("")


def test_clear_conversation_empties_the_chat_and_the_sources(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as page:
        ask(page, QUESTION)
        ask(page, EMERGENCY)
        page.click("#pqa-clear")
        expect(page.locator("#pqa-chat .bot")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(page.locator("#pqa-sources")).to_contain_text("Ask a question", timeout=TIMEOUT_MS)
        answer = ask(page, QUESTION)  # and the chat works again afterwards
        expect(answer.locator("blockquote").first).to_contain_text("[1]")


def test_the_page_made_no_outside_requests(browser, chat_server):
    url, _, _ = chat_server
    with fresh_page(browser, url, accept_downloads=True) as page:
        ask(page, QUESTION)
        ask(page, EMERGENCY)
        save_and_export(page)
        requests = list(page.requests)
    assert len(requests) > 5  # the recorder saw the page load
    outside = [u for u in requests if not u.startswith((url.rstrip("/"), "data:", "blob:"))]
    assert outside == []


def test_phone_width_nothing_overflows(browser, chat_server, tmp_path):
    url, _, _ = chat_server
    context = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 844}, device_scale_factor=1)
    phone = context.new_page()
    phone.goto(url)
    phone.wait_for_selector("#pqa-question textarea", timeout=TIMEOUT_MS)
    ask(phone, EMERGENCY)
    ask(phone, QUESTION)
    phone.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert (tmp_path / "phone.png").stat().st_size > 10_000
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 2, f"the page is {width} px wide on a {PHONE_WIDTH} px phone"
    # the sources panel goes under the chat on a phone
    assert phone.locator("#pqa-sources").bounding_box()["y"] > phone.locator("#pqa-chat").bounding_box()["y"]
    phone.get_by_role("tab", name="Visit sheet").click()
    phone.wait_for_selector("#pqa-export", timeout=TIMEOUT_MS)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH + 2
    context.close()


def test_the_api_endpoint_answers_with_quotes(chat_server):
    from gradio_client import Client

    url, _, _ = chat_server
    result = Client(url, verbose=False).predict(question=QUESTION, api_name="/ask")
    assert result["triage"] == "general" and result["quotes"]
    assert "cytokine" in result["quotes"][0]["text"].lower()


def test_no_question_text_in_the_server_log(browser, chat_server):
    """Every way a question reaches the server (chat, visit sheet, API), then the log is read: none is in it."""
    from gradio_client import Client

    url, log_path, _ = chat_server
    with fresh_page(browser, url, accept_downloads=True) as page:
        for question in (QUESTION, EMERGENCY, HOSTILE):
            ask(page, question)
        save_and_export(page, OWN_QUESTION)
    Client(url, verbose=False).predict(question=API_QUESTION, api_name="/ask")
    time.sleep(0.5)
    log = log_path.read_text()
    assert "Open http://127.0.0.1:" in log
    for question in (*ASKED, API_QUESTION):
        assert question not in log
    assert "fever of 39" not in log and "cytokine release syndrome?" not in log and "zq-5120" not in log


def test_the_crisis_banner_stays_until_the_conversation_is_cleared(browser, chat_server):
    """A suicidal message, then an ordinary question: the crisis banner stays; Clear removes it."""
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as own:
        answer = ask(own, "i keep thinking about ending my life")
        assert answer.locator("blockquote").count() == 0
        crisis = own.locator("#pqa-crisis .pqa-crisis")
        expect(crisis).to_be_visible(timeout=TIMEOUT_MS)
        expect(crisis).to_contain_text("988")
        ask(own, QUESTION)
        expect(crisis).to_be_visible()
        expect(crisis).to_contain_text("988")
        own.click("#pqa-clear")
        expect(own.locator("#pqa-chat .bot")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(own.locator("#pqa-crisis .pqa-crisis")).to_have_count(0, timeout=TIMEOUT_MS)


def test_a_spanish_emergency_gets_the_banner_in_spanish(browser, chat_server):
    with fresh_page(browser, chat_server[0]) as own:
        answer = ask(own, "mi hijo tiene una convulsión ahora mismo, le pusieron kymriah hace una semana")
        banner = answer.locator(".pqa-banner-emergency")
        assert banner.is_visible()
        assert "llame al 911" in banner.inner_text()


def test_markdown_in_a_question_shows_as_text_and_fetches_nothing(browser, chat_server):
    """An image or link typed into a question is shown as typed; the browser asks no other host for anything."""
    question = ("![x](http://203.0.113.9/x.png) [click](http://203.0.113.9/) <http://203.0.113.9/a> "
                "www.example.org *what* is CRS?")
    with fresh_page(browser, chat_server[0]) as own:
        requests: list[str] = []
        own.on("request", lambda request: requests.append(request.url))
        ask(own, question)
        bubble = own.locator("#pqa-chat .user").last
        assert bubble.locator("img, a").count() == 0
        assert bubble.inner_text().strip() == question
        own.wait_for_timeout(500)  # an image would have been requested by now
    assert [u for u in requests if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))] == []


def test_exports_are_private_and_deleted_when_the_tab_closes(browser, chat_server):
    """The served visit-sheet files are 0600 and gone once the person closes the page."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    own = context.new_page()
    own.goto(chat_server[0])
    own.wait_for_selector("#pqa-question textarea", timeout=TIMEOUT_MS)
    own.get_by_role("tab", name="Visit sheet").click()
    own.fill("#pqa-my-questions textarea", OWN_QUESTION)
    own.click("#pqa-export")
    link = own.locator("#pqa-files a[href$='.pdf']").first
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    served = Path(urllib.request.unquote(link.get_attribute("href").split("file=", 1)[1]))
    assert served.exists() and served.stat().st_mode & 0o777 == 0o600
    context.close()
    deadline = time.monotonic() + 30
    while served.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not served.exists(), "the exported visit sheet outlived the closed page"


def test_a_wrongly_shaped_api_call_leaves_no_question_in_the_log(chat_server):
    """One input instead of two: Gradio refuses it without writing the question into the server log."""
    import json

    url, log_path, _ = chat_server
    request = urllib.request.Request(f"{url}gradio_api/call/ask", method="POST",
                                     data=json.dumps({"data": ["zq-4417 rash on my son's arm"]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=30) as response:
        assert "event: error" in response.read().decode()
    time.sleep(0.5)
    assert "zq-4417" not in log_path.read_text()


# ---------------------------------------------------------------- accessibility

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
              "resultTypes": ["violations"]}


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG_21_AA).response
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in results["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violation_on_load_after_an_answer_and_after_an_urgent_one(browser, chat_server):
    with fresh_page(browser, chat_server[0]) as page:
        page.wait_for_selector("#pqa-chat .examples", timeout=TIMEOUT_MS)  # the examples are what axe reads on load
        assert serious_violations(page) == []
        answer = ask(page, QUESTION)
        answer.locator("blockquote").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#pqa-sources .pqa-source").first.wait_for(timeout=TIMEOUT_MS)
        assert serious_violations(page) == []
        ask(page, EMERGENCY).locator(".pqa-banner-emergency").wait_for(timeout=TIMEOUT_MS)
        assert serious_violations(page) == []
        page.get_by_role("tab", name="Visit sheet").click()
        page.wait_for_selector("#pqa-export", timeout=TIMEOUT_MS)
        assert serious_violations(page) == []


def focused(page) -> str:
    """What has the keyboard focus: its own id, else the nearest id around it, plus its class."""
    return page.evaluate("""() => {
        const e = document.activeElement;
        const around = e.closest('[id]');
        return `${e.id || (around ? around.id : '')} ${e.className || ''}`;
    }""")


def test_keyboard_only_enter_asks_tab_reaches_every_control_and_the_skip_link_works(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as page:
        assert focused(page).startswith("pqa-question")  # the page opens with the question box ready
        page.keyboard.type(QUESTION)
        page.keyboard.press("Enter")  # Enter asks
        answer = page.locator("#pqa-chat .bot").last
        expect(answer).to_contain_text("not medical advice", timeout=TIMEOUT_MS)
        expect(answer.locator("blockquote").first).to_contain_text("[1]")
        controls = ("pqa-skip", "pqa-size", "pqa-tab-chat-button", "pqa-tab-sheet-button", "pqa-question",
                    "pqa-ask", "pqa-save", "pqa-clear", "pqa-sources")
        reached: list[str] = []
        for _ in range(80):  # round the whole page: Tab wraps from the last control to the first
            page.keyboard.press("Tab")
            reached.append(focused(page))
        for control in controls:
            assert any(control in item for item in reached), f"Tab never reaches {control}: {reached}"
        for _ in range(80):
            if "pqa-skip" in focused(page):
                break
            page.keyboard.press("Tab")
        expect(page.locator(".pqa-skip")).to_be_visible()  # shown while it has the focus
        page.keyboard.press("Enter")
        assert focused(page).startswith("pqa-question")


def test_the_text_size_control_enlarges_the_answer_and_stays_for_the_tab(browser, chat_server):
    from playwright.sync_api import expect

    with fresh_page(browser, chat_server[0]) as page:
        answer = ask(page, QUESTION)
        size = lambda: float(answer.locator("blockquote").first.evaluate(  # noqa: E731
            "e => parseFloat(getComputedStyle(e).fontSize)"))
        normal = size()
        page.get_by_role("button", name="Largest text").click()
        expect(page.get_by_role("button", name="Largest text")).to_have_attribute("aria-pressed", "true")
        assert size() == pytest.approx(normal * 1.5, rel=0.05)
        page.reload()
        page.wait_for_selector("#pqa-question textarea", timeout=TIMEOUT_MS)
        answer = ask(page, QUESTION)
        assert size() == pytest.approx(normal * 1.5, rel=0.05)  # kept for this tab
        expect(page.get_by_role("button", name="Largest text")).to_have_attribute("aria-pressed", "true")
        page.get_by_role("button", name="Normal text").click()
        assert size() == pytest.approx(normal, rel=0.05)
    with fresh_page(browser, chat_server[0]) as other:  # another tab starts at the normal size
        assert other.evaluate("getComputedStyle(document.documentElement).fontSize") == "16px"
