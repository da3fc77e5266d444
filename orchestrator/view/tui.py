"""The Textual viewer: renders the event stream and sends `Controls` commands; no domain logic.

The core runs in a thread worker. Its events land in an inbox that the app drains on its own
thread: at once for rare events, every `flush_interval` seconds for the per-test ones, so a fast
suite costs one repaint per interval instead of one per test.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, ProgressBar, RichLog, Static

from orchestrator.events import (
    AgentStep,
    AgentUpdate,
    Controls,
    Emit,
    Log,
    PhaseStarted,
    PlanReady,
    RunFinished,
    SuiteFinished,
    TestFinished,
    TestStarted,
    _Event,
)
from orchestrator.view import panels
from orchestrator.view.progress import (
    RunProgress,
    clock_time,
    fmt_counts,
    fmt_phase,
    fmt_status,
    summary_lines,
)

Work = Callable[[Emit, Controls], object]

ACTIVE = frozenset({"queued", "proposing", "verifying"})  # agent states a cancel can still reach
LEVEL_STYLE = {"info": "", "warning": "warning", "error": "error"}  # theme variable names

HELP = """\
orchestrate: keys

  q, ctrl+c  stop the run gracefully, then leave (again: leave now)
  enter, d   the selected plan item or agent: cause, fix, tests, failure, diff, verification
  l          show and focus the log (again: hide it)
  c          cancel the selected agent (its running verification is killed; never merged)
  tab        move between the plan and the agents
  ↑ ↓        select a row
  ctrl+p     every command, by name
  ?          this help (escape closes)
"""


class _Flush(Message):
    """Events are waiting in the inbox."""


class _WorkDone(Message):
    def __init__(self, result: object, error: BaseException | None) -> None:
        super().__init__()
        self.result = result
        self.error = error


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static {
        width: auto; height: auto; padding: 1 2;
        background: $panel; border: round $accent;
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(Content(HELP), id="help")

    def action_close(self) -> None:
        self.dismiss()


class OrchestrateApp(App[object]):
    """Watches one run. After it exits, `result` holds what `work` returned, `error` what it raised."""

    TITLE = "orchestrate"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Stop", show=False, priority=True),
        Binding("d", "diff", "Detail"),
        Binding("l", "toggle_log", "Log"),
        Binding("c", "cancel_agent", "Cancel agent"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]
    CSS = """
    #header { height: 1; padding: 0 1; background: $panel; color: $foreground; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    #suite { height: 2; padding: 0 1; display: none; }
    #suite.running { display: block; }
    #suite-row { height: 1; }
    #suite-label { width: auto; padding-right: 1; }
    #suite-bar { width: auto; padding-right: 1; }
    #suite-bar Bar { width: 24; }
    #suite-counts { width: 1fr; }
    #suite-now { height: 1; color: $text-muted; }
    #summary {
        height: auto; max-height: 8; padding: 0 1; display: none;
        border-top: solid $success; border-title-align: left;
    }
    #summary.shown { display: block; }
    DataTable, #bottom {
        height: 1fr; min-height: 3;
        border-top: solid $primary-muted; border-title-align: left;
    }
    #plan { min-height: 5; }
    #agents { height: auto; max-height: 12; min-height: 3; }
    DataTable:focus, #bottom:focus-within { border-top: solid $accent; }
    #bottom.hidden { display: none; }
    #log, #detail { height: 1fr; }
    Screen.detail-open #summary { display: none; }
    Screen.detail-open #plan, Screen.detail-open #agents { max-height: 7; }
    #detail-body { padding: 0 1; }
    """

    def __init__(
        self,
        work: Work | None = None,
        controls: Controls | None = None,
        *,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 0.1,
    ) -> None:
        super().__init__()
        self.controls = controls or Controls()
        self.result: object = None
        self.error: BaseException | None = None
        self._work = work
        self._clock = clock
        self._flush_interval = flush_interval
        self._inbox: list[_Event] = []
        self._inbox_lock = threading.Lock()
        self._working = False
        self._stopping = False
        self._progress = RunProgress()  # everything shown of the run; widgets render from it
        self._detail_key: str | None = None  # the plan item or agent the detail shows

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="status")
        with Vertical(id="suite"):
            with Horizontal(id="suite-row"):
                yield Static(id="suite-label")
                yield ProgressBar(id="suite-bar", show_eta=False)
                yield Static(id="suite-counts")
            yield Static(id="suite-now")
        yield Static(id="summary")
        yield DataTable(id="plan", cursor_type="row")
        yield DataTable(id="agents", cursor_type="row")
        with ContentSwitcher(id="bottom", initial="log"):
            yield RichLog(id="log", max_lines=2000, wrap=True)
            with VerticalScroll(id="detail"):
                yield Static(id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        plan = self.query_one("#plan", DataTable)
        plan.border_title = "Plan"
        plan.add_column("category", key="category")
        plan.add_column("tests", key="count")
        plan.add_column("priority", key="priority")
        plan.add_column("agent", key="agent")
        plan.add_column("title", key="title")
        agents = self.query_one("#agents", DataTable)
        agents.border_title = "Agents"
        for key in ("category", "status", "fixed", "attempt", "agent", "branch"):
            agents.add_column(key, key=key)
        self.query_one("#bottom").border_title = "Log"
        self.query_one("#summary").border_title = "Summary"
        agents.focus()
        self._refresh()
        self.set_interval(self._flush_interval, self._drain)
        self.set_interval(1.0, self._show_header)
        if self._work is not None:
            self._working = True
            self.run_worker(self._run_work, thread=True, name="orchestrate", exit_on_error=False)

    # --- events in ---------------------------------------------------------------------------

    def _run_work(self) -> None:
        assert self._work is not None
        result: object = None
        error: BaseException | None = None
        try:
            result = self._work(self.emit, self.controls)
        except Exception as exc:  # handed to the CLI through `error`
            error = exc
        self.post_message(_WorkDone(result, error))

    def emit(self, event: _Event) -> None:
        """The `Emit` the core calls, from any thread."""
        with self._inbox_lock:
            self._inbox.append(event)
        if not isinstance(event, TestStarted | TestFinished):
            self.post_message(_Flush())

    def feed(self, event: _Event) -> None:
        """Render one event now; call from the app's thread (tests, replays)."""
        self._apply(event)
        self._refresh()

    @on(_Flush)
    def _on_flush(self) -> None:
        self._drain()

    @on(_WorkDone)
    def _on_work_done(self, message: _WorkDone) -> None:
        self._drain()
        self._working = False
        self.result, self.error = message.result, message.error
        if message.error is not None:
            self._write_log(f"run failed: {message.error}", "error")
        if self._stopping:
            self.exit(self.result)
            return
        self._show_summary()
        self._refresh()
        if self.query_one("#agents", DataTable).row_count == 0:
            self.query_one("#plan").focus()  # no agent ran: what is left is the story

    def _widgets_gone(self) -> bool:
        """The app is taking its widgets down: timers that still fire have nothing to draw."""
        return not self.query("#header")

    def _drain(self) -> None:
        if self._widgets_gone():
            return
        if self.controls.stop_requested and not self._stopping:  # a signal (SIGTERM, SIGHUP)
            if not self._working:
                self.exit(self.result)  # nothing runs: a closed terminal means leave
                return
            self._stopping = True  # the same graceful stop as `q`
            self._write_log("stop requested: finishing the current step…", "warning")
        with self._inbox_lock:
            events, self._inbox = self._inbox, []
        if events:
            for event in events:
                self._apply(event)
            self._refresh()

    def _apply(self, event: _Event) -> None:
        """Fold the event in, then update what `_refresh` does not redraw: log, tables, summary."""
        news = self._progress.apply(event)
        match event:
            case PhaseStarted():
                self._write_log(fmt_phase(event), "accent", event.at)
            case SuiteFinished():
                suite = self._progress.finished_suites.get(event.label)
                against = f" ({suite.against.describe()})" if suite and suite.against else ""
                self._write_log(
                    f"suite {event.label}: {fmt_counts(event.counts)}{against}", at=event.at
                )
            case PlanReady():
                self._show_plan()
                self._write_log(f"plan: {len(event.categories)} categories", at=event.at)
            case AgentUpdate():
                self._show_agent(event.category)
                if news and event.status != "queued":
                    reason = f": {event.reason}" if event.reason else ""
                    style = "error" if event.status in ("rejected", "error") else ""
                    self._write_log(
                        f"{event.category}: {fmt_status(event.status)}{reason}", style, event.at
                    )
            case AgentStep():
                self._write_log(f"{event.category}: {event.text}", "text-muted", event.at)
                if self._detail_shown() and self._detail_key == event.category:
                    self._show_detail()
            case Log():
                self._write_log(event.message, LEVEL_STYLE[event.level], event.at)
            case RunFinished():
                self._show_summary()
                for key in self._progress.agents:
                    self._show_agent(key)

    # --- views -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._show_header()
        self._show_status()
        self._show_suite()

    def _show_plan(self) -> None:
        plan = self.query_one("#plan", DataTable)
        plan.clear()
        for c in self._progress.categories:
            plan.add_row(
                Text(c.key), c.count, c.priority, Text(c.agent or "-"), Text(c.title), key=c.key
            )
        for left in self._progress.left:
            c = left.category
            plan.add_row(
                Text(c.key),
                c.count,
                c.priority,
                self._styled("left", panels.STATUS_STYLE["left"]),
                Text(f"needs {left.needs}"),
                key=c.key,
            )

    def _show_agent(self, category: str) -> None:
        update = self._progress.agents[category].update
        session = self._progress.run.session if self._progress.run else None
        cells = {
            "category": Text(update.category),
            "status": self._styled(
                fmt_status(update.status), panels.STATUS_STYLE.get(update.status, "")
            ),
            "fixed": f"{update.fixed}/{update.target}" if update.target else "",
            "attempt": update.attempt or "",
            "agent": Text(update.agent),
            "branch": Text(panels.short_branch(update.branch, session)),
        }
        agents = self.query_one("#agents", DataTable)
        if category in agents.rows:
            for column, value in cells.items():
                agents.update_cell(category, column, value, update_width=True)
        else:
            agents.add_row(*cells.values(), key=category)
        if self._detail_shown() and self._detail_key == category:
            self._show_detail()

    def _styled(self, text: str, style: str) -> Text:
        """Rich text in a theme colour (`$success`, `bold $error`), for table cells."""
        variables = self.get_css_variables()
        words = [variables.get(w[1:], "") if w.startswith("$") else w for w in style.split()]
        return Text(text, style=" ".join(w for w in words if w))

    def _show_header(self) -> None:
        if self._widgets_gone():
            return
        content = panels.header(self._progress, self._clock(), self._stopping)
        self.query_one("#header", Static).update(content)

    def _show_status(self) -> None:
        self.query_one("#status", Static).update(panels.status(self._progress))

    def _show_suite(self) -> None:
        suites = self._progress.suites
        self.query_one("#suite").set_class(bool(suites), "running")
        if not suites:
            return
        suite = list(suites.values())[-1]
        more = f" (+{len(suites) - 1} more)" if len(suites) > 1 else ""
        self.query_one("#suite-label", Static).update(Content(f"{suite.label}{more}"))
        self.query_one("#suite-bar", ProgressBar).update(total=suite.total, progress=suite.done)
        self.query_one("#suite-counts", Static).update(panels.suite_counts(suite))
        self.query_one("#suite-now", Static).update(Content(f"now: {suite.current}"))

    def _show_summary(self) -> None:
        summary = self.query_one("#summary", Static)
        summary.update(panels.summary(self._progress, self.error, self._working))
        summary.add_class("shown")

    def _show_detail(self) -> None:
        key = self._detail_key
        body = self.query_one("#detail-body", Static)
        if key is None:
            body.update(Content("Nothing selected: choose a plan item or an agent."))
            return
        body.update(panels.detail(key, self._progress))
        self.query_one("#bottom").border_title = key

    def _write_log(self, message: str, style: str = "", at: float | None = None) -> None:
        stamp = clock_time(at if at is not None else self._clock())
        colour = self.get_css_variables().get(style, "") if style else ""
        line = Text(f"{stamp} ", style="dim")
        line.append(message, style=colour)
        self.query_one("#log", RichLog).write(line)

    def _selected(self, table: str = "#agents") -> str | None:
        rows = self.query_one(table, DataTable)
        if rows.row_count == 0:
            return None
        return rows.coordinate_to_cell_key(rows.cursor_coordinate).row_key.value

    def _detail_shown(self) -> bool:
        return self.query_one("#bottom", ContentSwitcher).current == "detail"

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        if self._detail_shown() and message.data_table.has_focus:
            self._detail_key = message.row_key.value
            self._show_detail()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self._open_detail(message.row_key.value)

    # --- commands out ------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Ask the core to stop and leave when it returns; a second press leaves at once."""
        if not self._working or self._stopping:
            self.exit(self.result)
            return
        self._stopping = True
        self.controls.request_stop()
        self._write_log("stop requested: finishing the current step…", "warning")
        self._refresh()

    def action_diff(self) -> None:
        """The detail of the focused table's row (the agents' when neither has focus)."""
        table = "#plan" if self.query_one("#plan").has_focus else "#agents"
        self._open_detail(self._selected(table))

    def _open_detail(self, key: str | None) -> None:
        self._detail_key = key
        self.screen.add_class("detail-open")  # the detail gets the room of the summary
        bottom = self.query_one("#bottom", ContentSwitcher)
        bottom.remove_class("hidden")
        bottom.current = "detail"
        self._show_detail()

    def action_toggle_log(self) -> None:
        bottom = self.query_one("#bottom", ContentSwitcher)
        log = self.query_one("#log", RichLog)
        if bottom.current == "log" and log.has_focus and not bottom.has_class("hidden"):
            bottom.add_class("hidden")
            self.query_one("#agents").focus()
            return
        bottom.remove_class("hidden")
        bottom.current = "log"
        bottom.border_title = "Log"
        self.screen.remove_class("detail-open")
        log.focus()

    def action_cancel_agent(self) -> None:
        category = self._selected()
        if category is None or self._progress.agents[category].update.status not in ACTIVE:
            self.notify("No running agent selected.", severity="warning")
            return
        self.controls.cancel(category)
        self._write_log(f"{category}: cancel requested", "warning")
        self.notify(f"Cancelling {category}.")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The app's own commands in the command palette (ctrl+p), then Textual's."""
        yield SystemCommand("Stop the run", "Stop gracefully: resumable", self.action_quit)
        yield SystemCommand("Cancel agent", "Cancel the selected agent", self.action_cancel_agent)
        yield SystemCommand("Detail", "Cause, fix, tests, failure, diff", self.action_diff)
        yield SystemCommand("Log", "Show or hide the log", self.action_toggle_log)
        yield SystemCommand("Keys", "What each key does", self.action_help)
        yield from super().get_system_commands(screen)

    def print_summary(self, stream: TextIO | None = None) -> None:
        """After the app closed: the run's outcome on the normal terminal, as pytest ends."""
        out = stream or sys.stdout
        if self._progress.finished is not None:
            for line in summary_lines(self._progress.finished):
                out.write(f"orchestrate: {line}\n")
        out.flush()
