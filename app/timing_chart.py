"""Per-stage timing bars (QtCharts): one run, or every backend side by side with speedup factors.

The value axis is logarithmic (base 10) so that a 1000x gap between backends stays legible; times under
``FLOOR_MS`` are drawn at that floor. Numba's compile time is a bar of its own, in its own colour, in its own
category, and never part of a total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import cycle

from PySide6 import QtCharts
from PySide6.QtCore import QMargins, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

#: Smallest time drawn: a log axis cannot show 0, so shorter times are drawn at this floor.
FLOOR_MS = 1e-3
#: Baselines the speedup factors are computed against, when present.
BASELINES = ("naive", "vectorized")
COMPILE_COLOUR = "#ef6c00"
COLOURS = {"naive": "#c62828", "vectorized": "#1565c0", "numba": "#2e7d32", "run": "#1565c0"}
OTHER_COLOURS = ("#6a1b9a", "#00838f", "#5d4037", "#455a64")


def format_ms(ms: float) -> str:
    """``1234`` -> "1,234", ``15.23`` -> "15.2", ``0.01234`` -> "0.0123" (three significant digits below 100)."""
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def format_factor(factor: float) -> str:
    """``566.2`` -> "×566", ``3.41`` -> "×3.4"."""
    return f"×{factor:.0f}" if factor >= 10 else f"×{factor:.2g}"


def _drawn(ms: float) -> float:
    """The value drawn for ``ms``: at least the floor, rounded as ``format_ms`` rounds so bar labels stay short."""
    return float(format_ms(max(ms, FLOOR_MS)).replace(",", ""))


class TimingChart(QWidget):
    """``show_run`` for one run's stages; ``show_comparison`` for backends x stages with speedup factors."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.chart = QtCharts.QChart()
        self.chart.setAnimationOptions(QtCharts.QChart.AnimationOption.NoAnimation)
        self.chart.setMargins(QMargins(2, 2, 12, 2))
        self.chart.layout().setContentsMargins(0, 0, 0, 0)
        self.chart.setBackgroundRoundness(0)
        self.chart.setTitleFont(QFont(self.font().family(), 11, QFont.Weight.Bold))
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignTop)
        self.stage_axis = QtCharts.QBarCategoryAxis()
        self.ms_axis = QtCharts.QLogValueAxis()
        self.ms_axis.setBase(10)
        self.ms_axis.setLabelFormat("%g")
        self.ms_axis.setLabelsFont(QFont(self.font().family(), 8))  # ten decades fit a narrow panel
        self.ms_axis.setTitleText("milliseconds (log scale)")
        self.chart.addAxis(self.stage_axis, Qt.AlignmentFlag.AlignLeft)
        self.chart.addAxis(self.ms_axis, Qt.AlignmentFlag.AlignBottom)
        self.view = QtCharts.QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setMinimumSize(400, 320)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)
        self._values: dict[str, dict[str, float]] = {}
        self._speedups: dict[str, dict[str, float]] = {}
        self.clear()

    def sizeHint(self) -> QSize:
        return QSize(640, 620)

    def clear(self) -> None:
        """Show nothing: no series, no axes, a hint as the title."""
        self.chart.removeAllSeries()
        self.stage_axis.clear()
        for axis in (self.stage_axis, self.ms_axis):
            axis.setVisible(False)
        self.chart.setTitle("Stage timings: press Run or Compare all")
        self.caption.clear()
        self._values, self._speedups = {}, {}

    def values(self) -> dict[str, dict[str, float]]:
        """What is shown: bar set ("run" or a backend) -> category -> milliseconds, as given (before the floor)."""
        return {name: dict(times) for name, times in self._values.items()}

    def speedups(self) -> dict[str, dict[str, float]]:
        """Comparison only: category (stages and "total") -> "<backend> vs <baseline>" -> factor."""
        return {category: dict(factors) for category, factors in self._speedups.items()}

    def show_run(self, stage_ms: Mapping[str, float], compile_ms: float = 0.0, backend: str = "") -> None:
        """One run: a bar per stage in the given order, plus a "numba compile" bar when ``compile_ms > 0``."""
        self.clear()
        times = dict(stage_ms)
        total = sum(times.values())
        compiled = {"numba compile": compile_ms} if compile_ms > 0 else {}
        self._draw({"run": times}, {"run": compiled})
        self.chart.setTitle(f"Stage timings: total {format_ms(total)} ms" + (f" ({backend})" if backend else ""))
        notes = [f"Total of {len(times)} stages: {format_ms(total)} ms."]
        if compiled:
            notes.append(f"Orange: Numba compile {format_ms(compile_ms)} ms (first use), not part of the total.")
        self.caption.setText(" ".join([*notes, self._floor_note()]).strip())

    def show_comparison(self, per_backend: Mapping[str, Mapping[str, float]],
                        compile_ms: Mapping[str, float] | None = None) -> None:
        """Backends side by side: a category per stage plus "total", each backend a bar set; speedups below."""
        self.clear()
        sets = {name: {**times, "total": sum(times.values())} for name, times in per_backend.items()}
        compiled = {name: {f"{name} compile": ms} for name, ms in (compile_ms or {}).items() if ms > 0}
        categories = list(dict.fromkeys(category for times in sets.values() for category in times))
        for baseline in (b for b in BASELINES if b in sets):
            for name in (n for n in sets if n not in (baseline, "naive")):  # what should beat the baseline
                for category in categories:
                    mine, base = sets[name].get(category, 0.0), sets[baseline].get(category, 0.0)
                    if mine > 0 and base > 0:
                        self._speedups.setdefault(category, {})[f"{name} vs {baseline}"] = base / mine
        self._draw(sets, compiled)
        self.chart.setTitle("Stage timings, every backend")
        bars = ", ".join(f"{c} {format_ms(ms)} ms" for times in compiled.values() for c, ms in times.items())
        compile_note = f"Orange: {bars} (first use), never added to a total. " if bars else ""
        self.caption.setText(f"{self._speedup_table()}<p>{compile_note}{self._floor_note()}</p>")

    def _floor_note(self) -> str:
        if any(v < FLOOR_MS for times in self._values.values() for v in times.values()):
            return f"Times under {FLOOR_MS:g} ms are drawn at {FLOOR_MS:g} ms (log scale)."
        return ""

    def _speedup_table(self) -> str:
        pairs = list(dict.fromkeys(pair for factors in self._speedups.values() for pair in factors))
        if not pairs:
            return ""
        head = "".join(f"<th>&nbsp;{pair}&nbsp;</th>" for pair in pairs)
        rows = "".join(f"<tr><td>{category}</td>" + "".join(
            f"<td align='right'>{format_factor(factors[p]) if p in factors else ''}&nbsp;</td>" for p in pairs)
                       + "</tr>" for category, factors in self._speedups.items())
        return f"<b>Speedup</b><table cellspacing='0'><tr><th></th>{head}</tr>{rows}</table>"

    def _draw(self, sets: dict[str, dict[str, float]], compiled: dict[str, dict[str, float]]) -> None:
        """Grouped horizontal bars of ``sets``; ``compiled`` adds each set's compile bars in the compile colour."""
        names = dict.fromkeys([*sets, *compiled])
        self._values = {name: {**sets.get(name, {}), **compiled.get(name, {})} for name in names}
        categories = list(dict.fromkeys(c for times in self._values.values() for c in times))
        rows = categories[::-1]  # Qt draws the first category at the bottom
        series = QtCharts.QHorizontalBarSeries()
        series.setBarWidth(0.85)
        series.setLabelsVisible(True)
        series.setLabelsFormat("@value ms")
        series.setLabelsPrecision(7)  # the values are rounded by ``_drawn``
        series.setLabelsPosition(QtCharts.QHorizontalBarSeries.LabelsPosition.LabelsOutsideEnd)
        others = cycle(OTHER_COLOURS)
        for name, times in self._values.items():
            bar_set = QtCharts.QBarSet(name)
            bar_set.setColor(QColor(COLOURS.get(name) or next(others)))
            bar_set.setSelectedColor(QColor(COMPILE_COLOUR))
            bar_set.setLabelColor(QColor("#202020"))
            bar_set.setLabelFont(QFont(self.font().family(), 8))
            bar_set.append([_drawn(times[c]) if c in times else 0.0 for c in rows])  # 0: no bar, no label
            bar_set.selectBars([rows.index(c) for c in compiled.get(name, {})])
            series.append(bar_set)
        self.chart.addSeries(series)
        self.stage_axis.append(rows)
        drawn = [_drawn(v) for times in self._values.values() for v in times.values()] or [1.0]
        # the minimum a decade under the shortest bar so that it shows; room on the right for the value labels
        self.ms_axis.setRange(10.0 ** (math.ceil(math.log10(min(drawn))) - 1), max(drawn) * 10)
        for axis in (self.stage_axis, self.ms_axis):
            series.attachAxis(axis)
            axis.setVisible(True)
        self.chart.legend().setVisible(len(self._values) > 1)
