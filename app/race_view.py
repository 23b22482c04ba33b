"""The Race tab: one lane per backend, filled stage by stage as the race's results arrive, the speedups in large type
at the finish, and its export as a PNG for slides and as a CSV.

The race itself (what runs, in which order, its events and what each lane shows) is headless:
:mod:`inference.benchmarking.race`. This module paints a :class:`~inference.benchmarking.race.RaceBoard` and keeps
the race of the scan on screen: the live one if it races this frame, else this frame's last finished race, else an
empty board (the preset's lanes, waiting) naming the frame.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from radbench.app.timing_chart import COLOURS, format_ms
from radbench.inference.benchmarking.numba_compile import CompileTime, describe
from radbench.inference.benchmarking.race import (
    DEMO,
    DONE,
    RUNNING,
    WAITING,
    WARMING_UP,
    LaneState,
    RaceBoard,
    RaceEvent,
    RacePlan,
    RaceResult,
    runs_text,
    save_race_csv,
)
from radbench.inference.model import NOT_FOR_CLINICAL_USE

#: The exported PNG: its size and its fonts' scale (a slide is seen from afar).
EXPORT_SIZE, EXPORT_SCALE = QSize(1600, 900), 2.0
#: The finish's type size relative to the view's font.
FINISH_TYPE = 1.9
OTHER_COLOUR, GOING_COLOUR, WAITING_COLOUR = "#455a64", "#fff3c4", "#eeeeee"
ONE_AT_A_TIME = ("Backends run one after another, never at the same time, so every time is taken with the machine "
                 "to itself.")


def ms_text(ms: float | None) -> str:
    return "" if ms is None else f"{format_ms(ms)} ms"


class RaceTrack(QLabel):
    """The lanes as one rich-text table: per lane a line with the backend, its total and its status, then its stage
    cells (a cell fills with the backend's colour when its stage is timed; a naive stage going on shows its rows and
    rows per second). Drawn by the label from one ``setText`` per update, and scaled with the label's font."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.board: RaceBoard | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_board(self, board: RaceBoard | None) -> None:
        self.board = board
        self.refresh()

    def refresh(self) -> None:
        self.setText(lanes_html(self.board) if self.board is not None else "")


def lanes_html(board: RaceBoard) -> str:
    """The board's lanes as a table (see :class:`RaceTrack`)."""
    columns = len(board.stages)
    rows = []
    for lane in board.lanes.values():
        colour = COLOURS.get(lane.backend, OTHER_COLOUR)
        total = _unbroken(_total(lane))
        rows.append(f"<tr><td colspan='{columns}' style='padding-top: 8px'><big><b style='color: {colour}'>"
                    f"{_unbroken(lane.name)}</b>&nbsp;&nbsp;<b>{total}</b></big>&nbsp;&nbsp;"
                    f"{html.escape(lane_status(lane))}</td></tr>")
        rows.append("<tr>" + "".join(_cell(lane, stage, colour, 100 // columns) for stage in board.stages) + "</tr>")
    return f"<table width='100%' cellspacing='3' cellpadding='4'>{''.join(rows)}</table>"


def _unbroken(text: str) -> str:
    """``text`` for HTML, never broken across lines: no-break spaces, and word joiners around slashes (Qt's rich
    text honours neither ``nowrap`` nor ``<nobr>`` in a table cell)."""
    return html.escape(text).replace(" ", "&nbsp;").replace("/", "\u2060/\u2060")


def _total(lane: LaneState) -> str:
    if lane.total_ms is not None:
        return ms_text(lane.total_ms)
    return f"{ms_text(lane.so_far_ms)} so far" if lane.timed else ""


def _cell(lane: LaneState, stage: str, colour: str, width: int) -> str:
    ms, going = lane.stage_ms(stage), lane.stage == stage
    if ms is not None:
        background, text, value = colour, "white", f"<b>{ms_text(ms)}</b>"  # the unit may wrap in a narrow cell
    elif going:
        background, text = GOING_COLOUR, "#202020"
        value = (f"{lane.rows:,} rows<br>{lane.rows_per_s:,.0f} {_unbroken('rows/s')}" if lane.rows
                 else "warm-up…" if lane.status == WARMING_UP else "running…")
    else:
        background, text, value = WAITING_COLOUR, "#808080", "&nbsp;"
    return (f"<td width='{width}%' align='center' bgcolor='{background}' style='color: {text}'>"
            f"{html.escape(stage)}<br>{value}</td>")


def lane_status(lane: LaneState) -> str:
    """What a lane is doing, in words, with the runs it gets: "run 3 of 9", "median of 9 timed runs after 1
    warm-up; p10–p90 36.9–74.4 ms"."""
    schedule = lane.schedule
    if lane.status == DONE and lane.result is not None:
        total, repeats = lane.result.total, lane.result.repeats
        after = f" after {schedule.warmup} warm-up" if schedule.warmup else ""
        if repeats == 1:
            return f"1 timed run{after}"
        return (f"median of {repeats} timed runs{after}; p10–p90 {format_ms(total.p10_ms)}–"
                f"{format_ms(total.p90_ms)} ms")
    if lane.status == WARMING_UP:
        return f"warm-up run (not timed), then {schedule.repeats} timed"
    if lane.status == RUNNING:
        return f"run {max(lane.run, 1)} of {schedule.repeats}"
    return f"waiting: {runs_text(schedule)}"


class RacePanel(QWidget):
    """What the race shows, without buttons (what the PNG export holds): the heading, the preset, the lanes, the
    finish, Numba's warm-up apart, the machine's load and the notice."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self.title = QLabel(wordWrap=True)
        self.plan = QLabel(wordWrap=True)
        self.track = RaceTrack()
        self.finish = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.compile = QLabel(wordWrap=True)
        self.machine = QLabel(wordWrap=True)
        self.notice = QLabel(NOT_FOR_CLINICAL_USE)
        self.notice.setStyleSheet("color: #b00020;")
        layout = QVBoxLayout(self)
        for widget in (self.title, self.plan, self.track, self.finish, self.compile, self.machine):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.notice)
        self._fit_fonts()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_fonts()

    def _fit_fonts(self) -> None:
        """The title bold, the finish in large type: sizes relative to this panel's font (presentation scales it)."""
        title, finish = QFont(self.font()), QFont(self.font())
        title.setBold(True)
        self.notice.setFont(title)  # bold, and as large as the rest (a projector too)
        finish.setPointSizeF(self.font().pointSizeF() * FINISH_TYPE)
        finish.setBold(True)
        self.title.setFont(title)
        self.finish.setFont(finish)

    def show_board(self, heading: str, board: RaceBoard, state: str, compile_text: str, machine: str) -> None:
        self.title.setText(f"{heading}: {state}")
        self.plan.setText(f"{board.plan.name.capitalize()} preset, the five preprocessing stages: "
                          f"{board.plan.describe()}. {ONE_AT_A_TIME} A stage shows its median over the timed runs "
                          "so far.")
        self.track.set_board(board)
        self.finish.setText("\n".join(board.result.finish_lines()) if board.result is not None else "")
        self.finish.setVisible(board.result is not None)
        self.compile.setText(compile_text)
        self.compile.setVisible(bool(compile_text))
        self.machine.setText(machine)
        self.machine.setVisible(bool(machine))


class RaceView(QWidget):
    """The Race tab: a :class:`RacePanel` and its export buttons; the race on screen is the frame's (see module).
    ``compile_figure()`` gives the session's Numba warm-up (the Run toolbar's), shown apart from the race times."""

    problems = Signal(str, list)  # title, problem lines

    def __init__(self, compile_figure: Callable[[], CompileTime | None] = lambda: None, plan: RacePlan = DEMO,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.plan, self._compile_figure = plan, compile_figure
        self.panel = RacePanel()
        self.save_png = QPushButton("Save PNG…", enabled=False, toolTip="The finished race as a picture for slides")
        self.save_csv = QPushButton("Save CSV…", enabled=False, toolTip="The finished race's milliseconds: per "
                                    "backend and stage, the median, p10, p90 and every timed run")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.save_png)
        buttons.addWidget(self.save_csv)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # room for large type
        self.scroll.setWidget(self.panel)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(buttons)
        self.save_png.clicked.connect(lambda: self._ask_and_save("PNG image (*.png)", "png", self.export_png))
        self.save_csv.clicked.connect(lambda: self._ask_and_save("CSV (*.csv)", "csv", self.export_csv))
        self.live_key = None  # what the race going on belongs to, while one goes on
        self._live: RaceBoard | None = None
        self._shown: RaceBoard | None = None
        self._heading = ""
        self.clear("No scan")

    @property
    def board(self) -> RaceBoard | None:
        """The board on screen."""
        return self._shown

    @property
    def result(self) -> RaceResult | None:
        return self._shown.result if self._shown is not None else None

    # ----- what is shown ------------------------------------------------------------------------------------------
    def clear(self, heading: str) -> None:
        """The preset's lanes, waiting, under ``heading`` (what the empty state belongs to)."""
        self._show(heading, RaceBoard(self.plan), "no race yet. Press Race (Ctrl+D) to race every backend on it.")

    def show_for(self, key, heading: str, result: RaceResult | None) -> None:
        """The race of ``key`` (a scan's path and frame): the live one, else ``result``, else an empty board."""
        if self._live is not None and key == self.live_key:
            self._show(heading, self._live, "racing, one backend after another…")
        elif result is not None:
            self._show(heading, RaceBoard.from_result(result), "race of the preprocessing backends")
        else:
            self.clear(heading)

    def start(self, key, heading: str) -> None:
        """A race of ``key`` has started: its lanes fill from :meth:`apply`."""
        self.live_key, self._live = key, RaceBoard(self.plan)
        self.show_for(key, heading, None)

    def apply(self, events: list[RaceEvent]) -> None:
        """Events of the live race, in order (ignored when none is going on: late ones after a cancel); the lanes
        are redrawn once."""
        if self._live is None:
            return
        for event in events:
            self._live.apply(event)
        if self._shown is self._live:
            self.panel.track.refresh()
            compile_text = self._compile_text()
            if compile_text != self.panel.compile.text():
                self.panel.compile.setText(compile_text)
                self.panel.compile.setVisible(bool(compile_text))

    def finish(self, result: RaceResult, heading: str) -> None:
        """The live race ended with ``result``: shown if it is the one on screen."""
        showing = self._shown is self._live
        self._live, self.live_key = None, None
        if showing:
            self._show(heading, RaceBoard.from_result(result), "race of the preprocessing backends")
            self.show_finish()

    def show_finish(self) -> None:
        """Scroll the finish into view (large type may not leave room for all), once the panel is laid out."""
        if self.result is not None:
            QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.panel.finish))

    def stopped(self) -> None:
        """The live race ended without a result (cancelled or failed): its lanes stay as far as they got."""
        if self._live is None:
            return
        showing = self._shown is self._live
        board, self._live, self.live_key = self._live, None, None
        if showing:
            self._show(self._heading, board, "race stopped (cancelled or failed); press Race to run it again.")

    def _show(self, heading: str, board: RaceBoard, state: str) -> None:
        self._heading, self._shown = heading, board
        self.panel.show_board(heading, board, state, self._compile_text(), _machine_text(board.result))
        self.save_png.setEnabled(board.result is not None)
        self.save_csv.setEnabled(board.result is not None)

    def _compile_text(self) -> str:
        """Numba's warm-up, apart from the race times: this race's, else the session's."""
        lane = self._shown.lanes.get("numba") if self._shown is not None else None
        if lane is None or lane.status == WAITING:
            return ""
        own = lane.compile
        figure = own if own is not None and own.ms else self._compile_figure()
        what = describe(figure.ms, figure.source) if figure is not None else "not done yet"
        return f"Numba's compile, before its lane and never in a race time: {what}."

    # ----- export ------------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path) -> None:
        """The finished race at :data:`EXPORT_SIZE`, type scaled for a slide; ``OSError`` if it cannot be written."""
        if self.result is None:
            raise RuntimeError("no finished race to export")
        panel = RacePanel()
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * EXPORT_SCALE)
        panel.setFont(font)
        panel.show_board(self._heading, self._shown, "race of the preprocessing backends", self._compile_text(),
                         _machine_text(self.result))
        panel.resize(EXPORT_SIZE)
        panel.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
        panel.show()
        picture = panel.grab()
        panel.close()
        panel.deleteLater()
        if not picture.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")

    def export_csv(self, path: str | Path) -> None:
        if self.result is None:
            raise RuntimeError("no finished race to export")
        save_race_csv(self.result, path)

    def _ask_and_save(self, file_filter: str, suffix: str, save) -> None:
        default = f"{self.result.path.stem}_race.{suffix}" if self.result is not None else f"race.{suffix}"
        path = QFileDialog.getSaveFileName(self, "Save the race", default, file_filter)[0]
        if not path:
            return
        try:
            save(path)
        except (OSError, RuntimeError) as exc:
            self.problems.emit("Saving the race failed", [f"{path}: {exc}"])


def _machine_text(result: RaceResult | None) -> str:
    if result is None:
        return ""
    return (f"The race took {result.wall_s:.1f} s in all (warm-ups and compile included). Load average "
            f"{result.load_average:.1f} over the last minute on {result.usable_cpus} usable cores, this race counting "
            "for 1: other busy processes slow every lane.")
