"""The web chat's page: the Gradio 6 Blocks layout, its events wired to plain handlers, and `launch`.

What an answer looks like is `ui/chat_render.py` (no Gradio); what each event does is `ui/chat_handlers.py`
(state in, state out). This module only places components and connects them. It renders answers; it never
decides them.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr  # noqa: E402 - analytics must be off before gradio is imported

from knowledge.settings import ChatSettings  # noqa: E402
from ui import visit_sheet as vs  # noqa: E402
from ui.chat_handlers import (  # noqa: E402
    answer_turn,
    articles_root,
    clear_conversation,
    export_sheet,
    record_comment,
    record_feedback,
    remove_from_sheet,
    save_to_sheet,
    select_answer,
)
from ui.chat_render import (  # noqa: E402
    HEADER_HTML,
    HEADER_JS,
    SOURCES_PLACEHOLDER,
    crisis_html,
    disclaimer_html,
    saved_answers_html,
    saved_choices,
)
from ui.exports import ExportFolder  # noqa: E402
from ui.guards import BodyLimitMiddleware, LoginThrottleMiddleware, hide_input_values  # noqa: E402

STATIC_DIR = Path(__file__).resolve().parent / "static"
APP_TITLE = "patient-qa: questions about CAR-T and immunotherapy"

EXAMPLE_QUESTIONS = (
    "What is CAR-T cell therapy and how does it work?",
    "What is cytokine release syndrome?",
    "How long do I need to stay near the treatment center?",
    "What should a caregiver watch for at home?",
    "What side effects can checkpoint inhibitors cause?",
)


# ------------------------------------------------------------------ the app


def theme():
    """The default look with system fonts only, so the page never fetches fonts from the internet.

    Text sizes are in rem, so a reader's larger browser font setting makes the whole page larger.
    """
    text_size = gr.themes.Size(name="text_rem", xxs="0.625rem", xs="0.75rem", sm="0.875rem", md="1rem",
                               lg="1.125rem", xl="1.375rem", xxl="1.625rem")
    return gr.themes.Default(
        primary_hue=gr.themes.colors.blue,
        neutral_hue=gr.themes.colors.slate,
        text_size=text_size,
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    ).set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        body_text_color_subdued="*neutral_600",
        # "stop" buttons (Clear the visit sheet): white on red-700 is 6.5:1, red-500 was 3.8:1 (WCAG AA needs 4.5)
        button_cancel_background_fill="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
    )


def app_css() -> str:
    return (STATIC_DIR / "chat.css").read_text(encoding="utf-8")


# Gradio scopes the `css` of an app to its content; the page margins around it need a plain <style>.
PAGE_HEAD = (
    "<style>@media (max-width: 640px) { .gradio-container .main.app "
    "{ padding-left: 10px !important; padding-right: 10px !important; } }</style>"
)


def build_app(assistant, settings=None, feedback_store=None):
    """The Gradio Blocks app. `feedback_store=None` with settings.feedback on opens the store under data_dir."""
    from ui.feedback import FeedbackStore, feedback_path

    if settings is None:
        settings = assistant.settings
    if feedback_store is None and getattr(settings, "feedback", False):
        feedback_store = FeedbackStore(feedback_path(settings), settings.chat.max_comment_chars)
    exports = ExportFolder.create()
    # Only computing an answer takes one of the answer slots; a turn waiting for one must not block the queue.
    slots, turns = settings.chat.answer_slots, settings.chat.turns_in_flight
    answer_slots = threading.BoundedSemaphore(slots)

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        answers = gr.State([])
        selected = gr.State(None)
        feedback_rows = gr.State({})
        comment_row = gr.State(None)
        sheet = gr.State(vs.VisitSheet())

        gr.HTML(HEADER_HTML, js_on_load=HEADER_JS, elem_id="pqa-header")
        gr.HTML(disclaimer_html(), js_on_load=None, elem_id="pqa-disclaimer")
        crisis = gr.HTML("", js_on_load=None, elem_id="pqa-crisis")

        with gr.Tabs(elem_id="pqa-tabs"):
            with gr.Tab("Ask a question", id="chat", elem_id="pqa-tab-chat"):
                with gr.Row(equal_height=False, elem_id="pqa-chat-row"):
                    with gr.Column(scale=3, min_width=300, elem_id="pqa-chat-column"):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            show_label=False,
                            elem_id="pqa-chat",
                            height="min(62vh, 640px)",
                            min_height=320,
                            examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                            placeholder="**Ask anything about CAR-T or immunotherapy**, or start with an example:",
                            feedback_options=("Like", "Dislike") if feedback_store is not None else None,
                            latex_delimiters=[],  # "$5,000 to $10,000" in the costs article is money, not maths
                            sanitize_html=True,
                            buttons=["copy"],
                            autoscroll=True,
                        )
                        with gr.Row(elem_id="pqa-ask-row"):
                            question = gr.Textbox(
                                show_label=False,
                                label="Your question",
                                placeholder="Type your question and press Enter",
                                lines=1,
                                max_lines=5,
                                scale=5,
                                min_width=180,
                                elem_id="pqa-question",
                                autofocus=True,
                            )
                            ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="pqa-ask")
                        with gr.Row(elem_id="pqa-chat-actions"):
                            save_button = gr.Button("Save answer to visit sheet", size="md", elem_id="pqa-save",
                                                    min_width=160)
                            clear_button = gr.Button("Clear conversation", size="md", elem_id="pqa-clear",
                                                     min_width=160)
                        status = gr.Markdown("", elem_id="pqa-status")
                        with gr.Row(visible=False, elem_id="pqa-comment-row") as comment_box:
                            comment = gr.Textbox(label="Comment (optional): what was helpful or missing?",
                                                 lines=2, max_lines=6, scale=4, min_width=200,
                                                 elem_id="pqa-comment")
                            comment_button = gr.Button("Send comment", scale=1, min_width=120,
                                                       elem_id="pqa-comment-send")
                    with gr.Column(scale=2, min_width=300, elem_id="pqa-sources-column"):
                        # the panel scrolls inside its own focusable region (chat.css), so a keyboard reaches it
                        sources = gr.HTML(SOURCES_PLACEHOLDER, js_on_load=None, elem_id="pqa-sources")

            with gr.Tab("Visit sheet", id="sheet", elem_id="pqa-tab-sheet"):
                gr.Markdown(
                    "Prepare your next visit: answers you saved from the chat, your own questions and notes, "
                    "and questions suggested by the articles. Export it as a PDF to print (with space to write "
                    "the doctor's answers) or as Markdown to edit. It stays in this browser tab until you clear "
                    "it or close the page.",
                    elem_id="pqa-sheet-intro",
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        my_questions = gr.Textbox(label="My questions for the care team (one per line)", lines=4,
                                                  max_lines=20, elem_id="pqa-my-questions",
                                                  placeholder="When can he drive again?")
                        notes = gr.Textbox(label="Notes (symptoms, medicines, dates)", lines=4, max_lines=20,
                                           elem_id="pqa-notes")
                        suggested = gr.CheckboxGroup(
                            label="Suggested questions from the saved answers (untick the ones to leave out)",
                            choices=[], value=[], elem_id="pqa-suggested")
                    with gr.Column(scale=2, min_width=300):
                        gr.Markdown("**Saved answers**")
                        saved_view = gr.HTML(saved_answers_html(vs.VisitSheet()), js_on_load=None,
                                             elem_id="pqa-saved")
                        with gr.Row():
                            remove_choice = gr.Dropdown(label="Remove a saved answer", choices=[], value=None,
                                                        scale=3, min_width=180, elem_id="pqa-remove-choice")
                            remove_button = gr.Button("Remove", scale=1, min_width=90, elem_id="pqa-remove")
                with gr.Row():
                    export_button = gr.Button("Export PDF and Markdown", variant="primary", elem_id="pqa-export",
                                              min_width=200)
                    clear_sheet_button = gr.Button("Clear the visit sheet", variant="stop", elem_id="pqa-clear-sheet",
                                                   min_width=200)
                with gr.Row(visible=False, elem_id="pqa-confirm-clear") as confirm_row:
                    gr.Markdown("**Clear everything on the visit sheet?** Saved answers, questions and notes go.")
                    confirm_yes = gr.Button("Yes, clear it", variant="stop", elem_id="pqa-confirm-yes", min_width=120)
                    confirm_no = gr.Button("Keep it", elem_id="pqa-confirm-no", min_width=120)
                sheet_status = gr.Markdown("", elem_id="pqa-sheet-status")
                # shown once there is something to download (its empty state is an unlabelled icon to a reader)
                files = gr.File(label="Your visit sheet (download)", file_count="multiple", interactive=False,
                                elem_id="pqa-files", visible=False)

        # ---- chat events
        def respond(message, history, answer_list):
            for box, chat, new_answers, panel in answer_turn(assistant, message, history, answer_list,
                                                             slots=answer_slots):
                yield box, chat, new_answers, None, panel, gr.update(visible=False), "", crisis_html(new_answers)

        ask_outputs = [question, chatbot, answers, selected, sources, comment_box, status, crisis]
        ask_args = dict(fn=respond, inputs=[question, chatbot, answers], outputs=ask_outputs,
                        concurrency_limit=turns, concurrency_id="chat", show_progress="hidden")
        question.submit(api_name="chat", **ask_args)
        ask_button.click(api_visibility="private", **ask_args)

        def use_example(evt: gr.SelectData):
            value = evt.value
            return value.get("text", "") if isinstance(value, dict) else str(value)

        chatbot.example_select(use_example, None, question, api_visibility="private", queue=False).then(
            api_visibility="private", **ask_args)

        def on_select(answer_list, history, evt: gr.SelectData):
            return select_answer(answer_list, history, evt.index, articles_root(assistant))

        chatbot.select(on_select, [answers, chatbot], [selected, sources], api_visibility="private")

        clear_outputs = [chatbot, answers, selected, sources, feedback_rows, status, comment_box, crisis]
        clear_button.click(lambda: (*clear_conversation(), gr.update(visible=False), ""), None, clear_outputs,
                           api_visibility="private", queue=False)
        # the Chatbot's own trash icon clears the messages; the answers and sources go with them
        chatbot.clear(lambda: (*clear_conversation(), gr.update(visible=False), ""), None, clear_outputs,
                      api_visibility="private", queue=False)

        if feedback_store is not None:
            def on_like(answer_list, history, rows, evt: gr.LikeData):
                rows, row, message = record_feedback(feedback_store, answer_list, history, evt.index, evt.liked, rows)
                return rows, row, message, gr.update(visible=row is not None), ""

            chatbot.like(on_like, [answers, chatbot, feedback_rows],
                         [feedback_rows, comment_row, status, comment_box, comment], api_visibility="private")

            def on_comment(row, text):
                message = record_comment(feedback_store, row, text)
                return message or "Write a comment first.", gr.update(visible=not message), ""

            comment_button.click(on_comment, [comment_row, comment], [status, comment_box, comment],
                                 api_visibility="private")

        # ---- visit sheet events
        def sheet_outputs(new_sheet: vs.VisitSheet):
            return (new_sheet, saved_answers_html(new_sheet),
                    gr.update(choices=list(new_sheet.suggested), value=list(new_sheet.chosen)),
                    gr.update(choices=saved_choices(new_sheet), value=None))

        sheet_views = [sheet, saved_view, suggested, remove_choice]

        def on_save(current, answer_list, selected_index, chosen):
            new_sheet, message = save_to_sheet(current, answer_list, selected_index, chosen)
            return (*sheet_outputs(new_sheet), message)

        save_button.click(on_save, [sheet, answers, selected, suggested], [*sheet_views, status],
                          api_visibility="private")

        def on_remove(current, position, chosen):
            return sheet_outputs(remove_from_sheet(current, position, chosen))

        remove_button.click(on_remove, [sheet, remove_choice, suggested], sheet_views, api_visibility="private")

        def on_export(current, questions_text, notes_text, chosen, request: gr.Request):
            folder = exports.new()
            try:
                new_sheet, paths, message = export_sheet(current, questions_text, notes_text, chosen, folder,
                                                         settings.chat)
                # served from Gradio's cache (the copy keeps mode 0600); the private copy goes at once
                served = [files.move_resource_to_block_cache(p) for p in paths]
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            exports.track(request.session_hash or "", served)
            return new_sheet, gr.update(value=served or None, visible=bool(served)), message

        def on_unload(request: gr.Request):
            exports.end_session(request.session_hash or "")

        export_button.click(on_export, [sheet, my_questions, notes, suggested], [sheet, files, sheet_status],
                            api_visibility="private", concurrency_limit=slots)
        app.unload(on_unload)

        clear_sheet_button.click(lambda: gr.update(visible=True), None, confirm_row, api_visibility="private",
                                 queue=False)
        confirm_no.click(lambda: gr.update(visible=False), None, confirm_row, api_visibility="private", queue=False)

        def on_clear_sheet():
            return (*sheet_outputs(vs.clear_sheet()), "", "", gr.update(value=None, visible=False),
                    "The visit sheet was cleared.",
                    gr.update(visible=False))

        confirm_yes.click(on_clear_sheet, None, [*sheet_views, my_questions, notes, files, sheet_status, confirm_row],
                          api_visibility="private")

        # ---- the API: the same Answer object `patient-qa ask --json` prints
        def ask(question: str, history: list[str] | None = None) -> dict:
            """Answer one question with verbatim quotes from the articles (the JSON Answer contract)."""
            with answer_slots:
                return assistant.ask(question, history=list(history or [])).to_json()

        gr.api(ask, api_name="ask", concurrency_limit=slots, concurrency_id="answer")

    app.queue(default_concurrency_limit=slots, max_size=64)
    app.exports = exports  # launch() and tests reach the session exports through the app
    hide_input_values(app)
    return app


def launch(app, host: str = "127.0.0.1", port: int | None = 7860, auth: tuple[str, str] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False, max_request_bytes: int | None = None,
           chat_settings: ChatSettings | None = None):
    """Serve the app on `host:port` with the local theme; nothing is fetched from or sent to the internet.

    Request bodies over `max_request_bytes` (default: the setting's default) are refused unread, and failed
    sign-ins make the client wait longer each time (`chat_settings.login_*`, default: the settings' defaults).
    """
    from starlette.middleware import Middleware

    from knowledge.settings import LimitsSettings

    limit = max_request_bytes or LimitsSettings().max_request_bytes
    middleware = [Middleware(BodyLimitMiddleware, max_bytes=limit),
                  Middleware(LoginThrottleMiddleware, settings=chat_settings or ChatSettings())]
    return app.launch(
        app_kwargs={"middleware": middleware},
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="patient-qa: please sign in with the name and password you were given." if auth else None,
        share=False,
        inbrowser=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=False,
        theme=theme(),
        css=app_css(),
        head=PAGE_HEAD,
        footer_links=["api", "settings"],
        run_history=False,  # questions are personal: keep no history of runs in the browser
        enable_monitoring=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        max_file_size="5mb",
    )
