"""Per-stage timing bars (QtCharts): one run, or every backend side by side with its spread and speedups.

Both views list the same categories, top to bottom: decode, the five preprocessing stages, "preprocessing total",
infer, postprocess, heatmap, "end-to-end total" (decode included), then Numba's warm-up. Decode, infer and
postprocess are the same code for every backend: they are drawn once, in grey, marked "(shared)", and never get a
speedup. Within a row the backends' bars run top to bottom in the legend's order.

The value axis is logarithmic (base 10): naive and Numba differ by up to 1000x, and on a linear axis (even a broken
one) every bar but naive's would be a sliver, while on a log axis equal distances are equal ratios, which is what a
speedup is. A bar on a log axis has no zero to start from, so every bar starts at one baseline: the axis's left
end, a labelled power of ten at or below a decade under the shortest time shown. Read a bar's end, not its length
(the caption says so). Times under ``FLOOR_MS`` are drawn at that floor. The axis labels every decade, or every
second or third (the baseline moving down to a labelled power) when the chart is too narrow for them all.

A comparison draws a whisker over each bar's p10-p90 band, and prints a speedup only where the bands do not overlap
("~same" where they do). Numba's warm-up is an orange bar of its own, never part of a total. The value labels and
whiskers are painted over the chart, right of each bar's end or whisker; a label that would run off the chart goes
inside its bar, or is left out when the bar is too short for it too (hover a bar for its value). The threads the
times ran on are named in the legend (a Numba backend's threads beside its name, ONNX Runtime's beside the shared
stages) and in the caption.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from itertools import cycle

from PySide6 import QtCharts
from PySide6.QtCore import QEvent, QMargins, QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea, QToolTip, QVBoxLayout, QWidget

from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking.compare import (
    END_TO_END_TOTAL,
    PREPROCESSING_TOTAL,
    SHARED_STAGES,
    Comparison,
    Spread,
    speedup,
)
from radbench.inference.benchmarking.numba_compile import CompileTime, describe, kind
from radbench.inference.threads import Threads
from radbench.inference.wording import counted

#: Smallest time drawn: a log axis cannot show 0, so shorter times are drawn at this floor.
FLOOR_MS = 1e-3
#: The fewest repeats per backend from which speedups are given (their p10-p90 bands say whether each is noise).
SPEEDUP_REPEATS = 3
#: Baselines the speedup factors are computed against, when present.
BASELINES = ("naive", "vectorized")
SHARED, COMPILE = "shared", "compile"  # the bars drawn once, centred in their row, not by a backend
COMPILE_COLOUR, SHARED_COLOUR = "#ef6c00", "#8a8a8a"
COLOURS = {"naive": "#c62828", "vectorized": "#1565c0", "numba": "#2e7d32", "numba-fused": "#9ccc65",
           "reference": "#00838f", "opencv": "#6a1b9a", "run": "#1565c0",
           SHARED: SHARED_COLOUR, COMPILE: COMPILE_COLOUR}
OTHER_COLOURS = ("#5d4037", "#455a64", "#ad1457", "#f9a825")
#: Every category in the order shown, top to bottom; categories not listed (a fused stage) come before the totals.
ORDER = ("decode", *STAGES, PREPROCESSING_TOTAL, "infer", "postprocess", "heatmap", END_TO_END_TOTAL)
SLOT_PX = 15  # height a bar and its label need
ROW_PX = 24  # height a row needs at least: less, and QtCharts cuts the stage names to "…"
BAR_WIDTH = 0.85  # of a row, shared by its bars
WHISKER_COLOUR = "#202020"
LEGEND = {SHARED: "shared&nbsp;stages", COMPILE: "Numba&nbsp;warm-up"}
WARM_UP_ROW = "Numba warm-up"  # the compile bar's row on the axis; what it was is in the legend
TITLE_SCALE = 1.3  # the heading's type, against the widget's
AXIS_LABEL_GAP = 12  # pixels between two value-axis labels


def format_ms(ms: float) -> str:
    """``1234`` -> "1,234", ``15.23`` -> "15.2", ``0.01234`` -> "0.0123" (three significant digits below 100)."""
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def format_factor(factor: float | None) -> str:
    """``566.2`` -> "×566", ``3.41`` -> "×3.4", None (the spreads overlap) -> "~same"."""
    if factor is None:
        return "~same"
    return f"×{factor:.0f}" if factor >= 10 else f"×{factor:.2g}"


def _threads(count: int, space: str = "&nbsp;") -> str:
    return f"{count}{space}thread{'s' * (count != 1)}"


def shown_name(category: str) -> str:
    """The category as the axis shows it: shared stages marked."""
    return f"{category} (shared)" if category in SHARED_STAGES else category


def _drawn(ms: float) -> float:
    """The value drawn for ``ms``: at least the floor, rounded as ``format_ms`` rounds so bar labels stay short."""
    return float(format_ms(max(ms, FLOOR_MS)).replace(",", ""))


def _power(exponent: int) -> float:
    """10 ** ``exponent`` as the axis's end, a hair below, so that QtCharts (which labels the powers from
    ``ceil(log10(min))``, where 0.1 gives -0.99999...) labels it."""
    return 10.0 ** exponent * (1 - 1e-9)


class _OverlaidView(QtCharts.QChartView):
    """The chart view, with the owner's whiskers, centred bars and value labels painted over it; hovering a bar
    shows its value; a resize lets the owner fit the axis labels to the new width."""

    def __init__(self, chart: QtCharts.QChart, paint_overlay, resized, value_at):
        super().__init__(chart)
        self._paint_overlay, self._resized, self._value_at = paint_overlay, resized, value_at
        self.setMouseTracking(True)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        self._paint_overlay(painter)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._resized()

    def mouseMoveEvent(self, event) -> None:
        text = self._value_at(event.position())
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)


class TimingChart(QWidget):
    """``show_run`` for one run's stages; ``show_comparison`` for backends x stages with spreads and speedups. The
    heading names what the numbers belong to; the badge (comparisons only) says whether the backends agree."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.chart = QtCharts.QChart()
        self.chart.setAnimationOptions(QtCharts.QChart.AnimationOption.NoAnimation)
        self.chart.setMargins(QMargins(2, 2, 12, 2))
        self.chart.layout().setContentsMargins(0, 0, 0, 0)
        self.chart.setBackgroundRoundness(0)
        self.chart.legend().hide()  # the bars are painted: the legend is a label above the chart
        self.stage_axis = QtCharts.QBarCategoryAxis()
        self.ms_axis = QtCharts.QLogValueAxis()
        self.ms_axis.setBase(10)
        self.ms_axis.setLabelFormat("%g")
        self.ms_axis.setTitleText("ms (log scale)")
        self.chart.addAxis(self.stage_axis, Qt.AlignmentFlag.AlignLeft)
        self.chart.addAxis(self.ms_axis, Qt.AlignmentFlag.AlignBottom)
        self.view = _OverlaidView(self.chart, self._paint_overlay, self._fit_axis_labels, self._value_at)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.title = QLabel(wordWrap=True)
        self.legend = QLabel(wordWrap=True, visible=False)
        self.badge = QLabel(wordWrap=True, visible=False)
        self.headline = QLabel(wordWrap=True, visible=False)  # the total's speedups, above the fold
        self.how = QLabel(visible=False, toolTip="Each backend's code for a stage, side by side, with these times")
        self.how.linkActivated.connect(self.show_code)
        self.caption = QLabel(wordWrap=True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        content = self._content = QWidget()
        column = QVBoxLayout(content)
        for widget, stretch in ((self.title, 0), (self.badge, 0), (self.headline, 0), (self.how, 0), (self.legend, 0),
                                (self.view, 1), (self.caption, 0)):
            column.addWidget(widget, stretch)
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._values: dict[str, dict[str, float]] = {}
        self._spreads: dict[str, dict[str, tuple[float, float]]] = {}
        self._speedups: dict[str, dict[str, float | None]] = {}
        self._sets: list[str] = []  # the backends, bottom slot first
        self._rows: list[str] = []  # the categories, bottom row first
        self._colours: dict[str, str] = {}
        self._names: dict[str, str] = {}  # category -> its name on the axis
        self._low_decade = 0  # the axis starts at 10 ** this: every bar's baseline
        self._slots = 0  # bars per row
        self._bars: list[tuple[QRectF, str]] = []  # each bar as painted, with what hovering it says
        self.dropped_labels: list[str] = []  # value labels left out in the last paint: no room, even inside the bar
        self.clear()
        self._fit_fonts()

    def sizeHint(self) -> QSize:
        return QSize(640, 620)

    def clear(self, message: str = "Stage timings: press Run or Compare all.") -> None:
        """Show nothing but ``message`` as the heading: no series, no axes, no badge."""
        self.chart.removeAllSeries()
        self.stage_axis.clear()
        for axis in (self.stage_axis, self.ms_axis):
            axis.setVisible(False)
        self.title.setText(message)
        self.badge.hide()
        self.headline.hide()
        self.how.hide()
        self._comparison: Comparison | None = None
        self.legend.hide()
        self.caption.clear()
        self._values, self._spreads, self._speedups, self._sets, self._rows = {}, {}, {}, [], []
        self._bars = []
        self.view.setMinimumSize(260, 120)

    def height_for(self, width: int) -> int:
        """The height that shows everything at ``width`` without scrolling (to render the chart to a file)."""
        return max(self._content.heightForWidth(width), self._content.minimumSizeHint().height())

    def values(self) -> dict[str, dict[str, float]]:
        """What is shown: bar set (a backend, "run", "shared" or "compile") -> category -> milliseconds, as given."""
        return {name: dict(times) for name, times in self._values.items()}

    def spreads(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Comparison only: bar set -> category -> the (p10, p90) milliseconds its whisker spans."""
        return {name: dict(bands) for name, bands in self._spreads.items()}

    def speedups(self) -> dict[str, dict[str, float | None]]:
        """Comparison only: category -> "<backend> vs <baseline>" -> factor, None where the spreads overlap."""
        return {category: dict(factors) for category, factors in self._speedups.items()}

    def show_run(self, stage_ms: Mapping[str, float], title: str, backend: str = "run",
                 compile_figure: CompileTime | None = None, threads: Threads | None = None,
                 one_run: bool = True) -> None:
        """One run: a bar per stage, the two totals, and Numba's warm-up when ``compile_figure`` took time;
        ``threads``: what the run ran on, named in the legend and the caption; ``one_run``: say it has no spread."""
        self.clear()
        own = {s: ms for s, ms in stage_ms.items() if s not in SHARED_STAGES}
        own[PREPROCESSING_TOTAL] = sum(ms for s, ms in stage_ms.items() if s in STAGES)
        own[END_TO_END_TOTAL] = sum(stage_ms.values())
        shared = {s: ms for s, ms in stage_ms.items() if s in SHARED_STAGES}
        compiled = self._compile_bar(compile_figure)
        self._draw({backend: own}, shared, compiled, self._thread_labels({backend: threads}, threads))
        self.title.setText(title)
        notes = ["One run: no spread (Compare all times every backend several times, with p10–p90 whiskers)."
                 if one_run else "", self._threads_note(threads),
                 f"{shown_name(PREPROCESSING_TOTAL).capitalize()} (the five stages): "
                 f"{format_ms(own[PREPROCESSING_TOTAL])} ms; {END_TO_END_TOTAL} (decode and every stage): "
                 f"{format_ms(own[END_TO_END_TOTAL])} ms."]
        if shared:
            notes.append("Grey: shared stages, the same code for every backend.")
        notes += [self._compile_note(compile_figure) if compiled else "", self._floor_note()]
        self.caption.setText(" ".join(n for n in notes if n))

    def show_batch(self, stage_ms: Mapping[str, float], files: int, backend: str, threads: Threads,
                   files_per_s: float | None = None, compile_ms: float = 0.0) -> None:
        """A batch's time per stage summed over its ``files`` (all workers together), its rate in the title and the
        workers' Numba warm-ups (``compile_ms`` summed) in the caption, never in a total: the Batch window's chart and
        ``radbench batch --plot``'s."""
        if not any(stage_ms.values()):
            self.clear("Time per stage: no file was classified.")
            return
        rate = f", {files_per_s:.2f} files/s" if files_per_s else ""
        title = f"Time per stage summed over {counted(files, 'file')} ({backend}{rate})"
        self.show_run({s: ms for s, ms in stage_ms.items() if ms}, title, backend, threads=threads, one_run=False)
        if compile_ms:
            self.caption.setText(f"{self.caption.text()} Numba's warm-ups in the workers (compile or cache load): "
                                 f"{compile_ms / 1e3:.3g} s summed, in no total.")

    def show_comparison(self, comparison: Comparison, title: str, compile_figure: CompileTime | None = None) -> None:
        """Backends side by side (medians, p10-p90 whiskers), shared stages once, speedups and findings below."""
        runs = {name: r.last.threads for name, r in comparison.results.items()}
        self.show_spreads({name: r.stages for name, r in comparison.results.items()}, comparison.shared, title, runs,
                          compile_figure, repeats=comparison.repeats,
                          notes=(self._method_note(comparison), self._slower_note(comparison), self._shared_note()))
        ok, agree = comparison.equivalent, comparison.labels_agree
        self.badge.setText(f"{'✔ equivalent' if ok else '✘ DIFFER'}: max |Δ| {comparison.max_abs_diff:.1e} "
                           f"between the backends' model inputs, labels {'agree' if agree else 'DISAGREE'}")
        self.badge.setStyleSheet(f"color: white; background: {'#2e7d32' if ok else '#c62828'}; border-radius: 4px; "
                                 "padding: 3px;")
        self.badge.show()
        self._comparison = comparison
        self.how.setText("How? " + " · ".join(f'<a href="{name}">{name}</a>' for name in comparison.results))
        self.how.show()

    def show_spreads(self, results: Mapping[str, Mapping[str, Spread]], shared: Mapping[str, Spread], title: str,
                     runs: Mapping[str, Threads | None], compile_figure: CompileTime | None = None,
                     baselines: Sequence[str] = BASELINES, notes: Sequence[str] = (),
                     repeats: int | None = None) -> None:
        """Backends side by side from their repeats: medians with p10-p90 whiskers, ``shared`` stages once, Numba's
        warm-up when a numba backend is shown, speedups over each of ``baselines`` where the bands do not overlap
        (none from fewer than :data:`SPEEDUP_REPEATS` ``repeats``: too few for a band).
        ``runs``: the threads each backend ran on (named in the legend); ``notes`` (HTML) head the caption. The
        Compare view draws with it, and so does ``radbench bench --plot``."""
        self.clear()
        sets = {name: {s: spread.median_ms for s, spread in stages.items()} for name, stages in results.items()}
        self._spreads = {name: {s: (x.p10_ms, x.p90_ms) for s, x in stages.items()} for name, stages in results.items()}
        self._spreads[SHARED] = {s: (x.p10_ms, x.p90_ms) for s, x in shared.items()}
        too_few = repeats is not None and repeats < SPEEDUP_REPEATS
        for baseline in (b for b in baselines if b in sets and not too_few):
            for name in (n for n in sets if n not in (baseline, "naive")):  # what should beat the baseline
                theirs, mine = results[baseline], results[name]
                for category in (c for c in mine if c in theirs):
                    factor = speedup(theirs[category], mine[category])
                    self._speedups.setdefault(category, {})[f"{name} vs {baseline}"] = factor
        uses_numba = any(name.startswith("numba") for name in sets)
        known = [t for t in runs.values() if t is not None]
        threads = Threads(next((t.numba for t in known if t.numba is not None), None), known[0].onnxruntime)
        self._draw(sets, {s: x.median_ms for s, x in shared.items()},
                   self._compile_bar(compile_figure) if uses_numba else {}, self._thread_labels(runs, threads))
        self.title.setText(title)
        self._show_headline()
        self.caption.setText("".join(f"<p>{part}</p>" for part in (
            *notes, self._threads_note(threads), self._speedup_table(repeats if too_few else None),
            self._compile_note(compile_figure) if uses_numba else "", self._floor_note()) if part))

    def show_code(self, backend: str) -> None:
        """The "How?" window: each backend's code for a stage side by side, ``backend``'s marked."""
        from radbench.app.code_view import CodeView
        from radbench.app.window_geometry import place_window

        self.code_view = CodeView(self._comparison, backend, self)
        place_window(self.code_view, None, (1400, 800))
        self.code_view.show()

    # ----- captions -----------------------------------------------------------------------------------------------
    @staticmethod
    def _method_note(comparison: Comparison) -> str:
        notes = [r.note for r in comparison.results.values() if r.note]
        return (f"<b>Median of {comparison.repeats} repeat{'s' * (comparison.repeats != 1)} after "
                f"{comparison.warmups} warm-up{'s' * (comparison.warmups != 1)}, interleaved</b>; whiskers span "
                "p10–p90 of the repeats." + "".join(f" Note: {html.escape(n)}." for n in notes))

    @staticmethod
    def _slower_note(comparison: Comparison) -> str:
        stages = comparison.slower("numba", "vectorized")
        if not stages:
            return ""
        return ("<span style='color:#b00020'><b>Numba was slower than vectorized</b> on "
                f"{', '.join(stages)} (its whole p10–p90 band above vectorized's).</span> Likely cause: "
                f"{html.escape(comparison.likely_cause())}")

    def _show_headline(self) -> None:
        """The preprocessing total's speedups in one line under the heading, where a small screen shows them without
        scrolling (the table below has every stage's)."""
        factors = self._speedups.get(PREPROCESSING_TOTAL, {})
        said = [f"{pair} {format_factor(factor)}" for pair, factor in factors.items()]
        self.headline.setText(f"<b>{shown_name(PREPROCESSING_TOTAL).capitalize()}</b>: {', '.join(said)} (medians; "
                              "~same where the p10–p90 bands overlap)" if said else "")
        self.headline.setVisible(bool(said))

    def _speedup_table(self, too_few: int | None = None) -> str:
        """Every stage's speedups; or, given ``too_few`` repeats, why there are none."""
        if too_few is not None:
            return (f"<b>No speedups</b>: with {counted(too_few, 'repeat')} per backend there is no p10–p90 band to "
                    f"tell a gain from run-to-run noise; set repeats to {SPEEDUP_REPEATS} or more.")
        pairs = list(dict.fromkeys(pair for factors in self._speedups.values() for pair in factors))
        if not pairs:
            return ""
        head = "".join(f"<th>&nbsp;{pair.replace(' vs ', '<br>&nbsp;vs ')}&nbsp;</th>" for pair in pairs)
        rows = "".join(f"<tr><td>{category}</td>" + "".join(
            f"<td align='right'>{format_factor(factors[p]) if p in factors else ''}&nbsp;</td>" for p in pairs)
                       + "</tr>" for category, factors in self._speedups.items())
        return (f"<b>Speedup</b> (median vs median; ~same where the p10–p90 bands overlap)"
                f"<table cellspacing='0'><tr><th></th>{head}</tr>{rows}</table>")

    @staticmethod
    def _thread_labels(runs: Mapping[str, Threads | None], threads: Threads | None) -> dict[str, str]:
        """Legend names with threads: "numba (2 threads)" for a backend on Numba's threads, ONNX Runtime's beside
        the shared stages (infer)."""
        labels = {name: f"{name}&nbsp;({_threads(t.numba)})" for name, t in runs.items()
                  if t is not None and t.numba is not None}
        if threads is not None:
            onnx = _threads(threads.onnxruntime)
            labels[SHARED] = f"{LEGEND[SHARED]} (infer: ONNX&nbsp;Runtime, {onnx})"  # may wrap at the spaces
        return labels

    @staticmethod
    def _threads_note(threads: Threads | None) -> str:
        if threads is None:
            return ""
        numba = (f"Numba's kernels on {'up to ' * (threads.numba > 1)}{_threads(threads.numba, ' ')}"
                 if threads.numba is not None else "no Numba kernels")
        return f"Threads: {numba}, ONNX Runtime's infer on {_threads(threads.onnxruntime, ' ')}."

    @staticmethod
    def _shared_note() -> str:
        return ("Grey: shared stages (decode, infer, postprocess), the same code for every backend, drawn once: every "
                f"run pooled, decode once per round; never a speedup. {PREPROCESSING_TOTAL.capitalize()}: the five "
                f"stages; {END_TO_END_TOTAL}: decode and every stage, heatmap included.")

    @staticmethod
    def _compile_note(figure: CompileTime | None) -> str:
        if figure is None or not figure.ms:
            return ""
        return (f"Orange: Numba's warm-up in this session ({describe(figure.ms, figure.source)}), never added to a "
                "total.")

    def _floor_note(self) -> str:
        note = ("Log scale: every bar starts at the axis's left end; compare where bars end (equal distances are "
                "equal ratios).")
        if any(v < FLOOR_MS for times in self._values.values() for v in times.values()):
            return f"{note} Times under {FLOOR_MS:g} ms are drawn at {FLOOR_MS:g} ms."
        return note

    @staticmethod
    def _compile_bar(figure: CompileTime | None) -> dict[str, float]:
        if figure is None or not figure.ms:
            return {}
        return {f"numba {kind(figure.source)}": figure.ms}

    # ----- drawing ------------------------------------------------------------------------------------------------
    def _draw(self, sets: dict[str, dict[str, float]], shared: dict[str, float], compiled: dict[str, float],
              labels: Mapping[str, str] | None = None) -> None:
        """Grouped horizontal bars of ``sets`` (a slot each per row); ``shared`` and ``compiled`` once, centred;
        ``labels``: legend names other than the bar sets' own."""
        labels = {**LEGEND, **(labels or {})}
        self._slots = len(sets)  # bars per row: shared and compiled ones are centred, alone in their rows
        for category in compiled:  # "numba cold compile" -> "Numba warm-up (cold compile)"
            labels[COMPILE] = f"{LEGEND[COMPILE]}&nbsp;({category.removeprefix('numba ').replace(' ', '&nbsp;')})"
        self._values = {**{name: dict(times) for name, times in sets.items()},
                        **({SHARED: dict(shared)} if shared else {}), **({COMPILE: dict(compiled)} if compiled else {})}
        given = list(dict.fromkeys(c for times in self._values.values() for c in times))
        known = [c for c in ORDER if c in given]
        extra = [c for c in given if c not in ORDER and c not in compiled]
        at = known.index(PREPROCESSING_TOTAL) if PREPROCESSING_TOTAL in known else len(known)
        self._rows = [*known[:at], *extra, *known[at:], *compiled][::-1]  # the first category is drawn at the bottom
        self._sets = list(sets)
        others = cycle(OTHER_COLOURS)
        self._colours = {name: COLOURS.get(name) or next(others) for name in self._values}
        ends = [_drawn(v) for times in self._values.values() for v in times.values()]
        ends += [_drawn(v) for bands in self._spreads.values() for band in bands.values() for v in band]  # whiskers
        low, high = math.ceil(math.log10(min(ends))) - 1, max(ends) * 30  # a decade under the shortest bar; labels
        self._low_decade = low
        self.ms_axis.setBase(10)
        self.ms_axis.setRange(_power(low), high)
        anchor = QtCharts.QLineSeries()  # invisible: it only ties the axes to the chart, the bars are painted
        anchor.setPen(QPen(Qt.PenStyle.NoPen))
        anchor.append([QPointF(high, 0), QPointF(high, len(self._rows) - 1)])
        self.chart.addSeries(anchor)
        self._names = {c: WARM_UP_ROW if c in compiled else shown_name(c) for c in self._rows}
        self.stage_axis.append([self._names[c] for c in self._rows])
        for axis in (self.stage_axis, self.ms_axis):
            anchor.attachAxis(axis)
            axis.setVisible(True)
        self.legend.setText("&nbsp; ".join(f"<span style='color:{self._colours[name]}'>■</span>&nbsp;"
                                           f"{labels.get(name, name)}" for name in self._values))  # wraps between
        self.legend.show()
        self._fit_height()
        self._fit_axis_labels()
        QTimer.singleShot(0, self._fit_axis_labels)  # again once the chart has laid out its plot area

    def _fit_height(self) -> None:
        """The chart's height: every row room for its bars and its name, in this widget's type size."""
        if self._rows:
            scale = self._scale()
            self.view.setMinimumHeight(round(90 * scale + len(self._rows) * max(ROW_PX, self._slots * SLOT_PX)
                                             * scale))

    def _scale(self) -> float:
        """This widget's type size against the application's (presentation mode makes it larger)."""
        base = QApplication.font().pointSizeF()
        return self.font().pointSizeF() / base if base > 0 and self.font().pointSizeF() > 0 else 1.0

    def _small_font(self) -> QFont:
        """The axes' and value labels' type: 8 points at the application's size, scaled with this widget's."""
        return QFont(self.font().family(), max(1, round(8 * self._scale())))

    def _fit_fonts(self) -> None:
        """Every part's type from this widget's font (View › Presentation scales it): axes, title, and the chart's
        height and painted labels with them."""
        small = self._small_font()
        for set_font in (self.ms_axis.setLabelsFont, self.ms_axis.setTitleFont, self.stage_axis.setLabelsFont):
            set_font(small)
        title = QFont(self.font())
        title.setPointSizeF(self.font().pointSizeF() * TITLE_SCALE)
        title.setBold(True)
        self.title.setFont(title)
        self.badge.setFont(self.font())  # its style sheet would otherwise keep the type it started with
        self._fit_height()
        self.view.viewport().update()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_fonts()

    def _fit_axis_labels(self) -> None:
        """Label every decade of the value axis if the labels fit the plot's width, else every second, third...
        decade (the axis base), so that labels never run into each other ("10000100000")."""
        if not self._rows:
            return
        high = self.ms_axis.max()
        top = math.floor(math.log10(high))  # the highest power of ten on the axis
        metrics = QFontMetrics(self.ms_axis.labelsFont())
        width = self.chart.plotArea().width() or self.view.width() * 0.6
        for step in (1, 2, 3):
            low = math.floor(self._low_decade / step) * step  # the baseline: a power the axis labels
            labels = [f"{10.0 ** k:g}" for k in range(low, top + 1, step)]
            if sum(metrics.horizontalAdvance(t) + AXIS_LABEL_GAP for t in labels) <= width:
                break
        if self.ms_axis.base() != 10.0 ** step or self.ms_axis.min() != _power(low):
            self.ms_axis.setBase(10.0 ** step)
            self.ms_axis.setRange(_power(low), high)

    def _slot(self, name: str, row: int) -> tuple[float, float]:
        """The centre (in category units) and thickness of ``name``'s bar in ``row``: its backend's slot (the first
        backend at the top, as the legend reads), or the middle of the row."""
        width = BAR_WIDTH / max(1, len(self._sets))
        if name not in self._sets:
            return float(row), width
        return row + ((len(self._sets) - 1) / 2 - self._sets.index(name)) * width, width

    def _value_at(self, position: QPointF) -> str:
        """What hovering ``position`` (view pixels) says: the value of the bar under it, or ""."""
        return next((text for rect, text in self._bars if rect.adjusted(0, -1, 0, 1).contains(position)), "")

    def _paint_overlay(self, painter: QPainter) -> None:
        """Every bar, its whisker (comparisons) and its value label, right of whichever ends further right."""
        if not self.chart.series():
            return
        anchor = self.chart.series()[0]
        font = self._small_font()
        painter.setFont(font)
        metrics = QFontMetrics(font)
        text_height, gap = metrics.height(), 4 * self._scale()
        left = self.chart.plotArea().left()
        right = self.view.viewport().width() - 2  # labels may use the chart's right margin, not run off it
        self._bars, self.dropped_labels = [], []
        for name, times in self._values.items():
            for category, ms in times.items():
                centre, width = self._slot(name, self._rows.index(category))
                at = self.chart.mapToPosition(QPointF(_drawn(ms), centre), anchor)
                half = abs(self.chart.mapToPosition(QPointF(_drawn(ms), centre + width / 2), anchor).y() - at.y())
                bar = QRectF(left, at.y() - half + 0.5, at.x() - left, 2 * half - 1)
                painter.fillRect(bar, QColor(self._colours[name]))
                end = at.x()
                band = self._spreads.get(name, {}).get(category)
                inside = bar.right()  # where a label inside the bar ends: before the whisker's left end
                if band is not None:
                    low, high = (self.chart.mapToPosition(QPointF(_drawn(v), centre), anchor).x() for v in band)
                    painter.setPen(QPen(QColor(WHISKER_COLOUR), 1.2))
                    cap = min(half * 0.7, 5)
                    painter.drawLine(QPointF(low, at.y()), QPointF(high, at.y()))
                    for x in (low, high):
                        painter.drawLine(QPointF(x, at.y() - cap), QPointF(x, at.y() + cap))
                    end, inside = max(end, high), min(inside, low)
                label = f"{format_ms(ms)} ms"
                where = f"{self._names.get(category, category)}, {name}: {label}"
                self._bars.append((bar, where + (f" (p10–p90 {format_ms(band[0])}–{format_ms(band[1])} ms)"
                                                 if band is not None else "")))
                wide = metrics.horizontalAdvance(label)
                if end + gap + wide <= right:  # beside the bar (or its whisker)
                    painter.setPen(QColor(WHISKER_COLOUR))
                    painter.drawText(QRectF(end + gap, at.y() - text_height / 2, wide + 2, text_height),
                                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
                elif inside - left >= wide + 8 and bar.height() >= text_height - 3:  # inside its end, in white
                    painter.setPen(QColor("white"))
                    painter.drawText(QRectF(inside - wide - 4, at.y() - text_height / 2, wide + 2, text_height),
                                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
                else:
                    self.dropped_labels.append(where)
