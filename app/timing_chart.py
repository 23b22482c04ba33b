"""Per-stage timing bars (QtCharts): one run, or every backend side by side with speedup factors.

The value axis is logarithmic so that a 1000x gap between backends stays legible. Numba's compile time is a
category of its own and never part of a total.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCharts import QBarCategoryAxis, QBarSet, QChart, QChartView, QHorizontalBarSeries, QLogValueAxis
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

#: Smallest value drawn: a log axis cannot show 0, so shorter times are drawn at this floor.
FLOOR_MS = 1e-3
COMPILE = "numba compile"
COLOURS = {"naive": "#c62828", "vectorized": "#1565c0", "numba": "#2e7d32", "reference": "#6a1b9a",
           "run": "#1565c0", COMPILE: "#ef6c00"}


class TimingChart(QWidget):
    """``show_run`` for one prediction's stages; ``show_comparison`` for backends x stages with speedups."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.chart = QChart()
        self.chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setMinimumSize(420, 360)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)
        self._values: dict[str, dict[str, float]] = {}
        self._speedups: dict[str, dict[str, float]] = {}
        self.clear()

    def clear(self) -> None:
        self.chart.removeAllSeries()
        for axis in self.chart.axes():
            self.chart.removeAxis(axis)
        self.chart.setTitle("Stage timings: press Run or Compare all")
        self.caption.clear()
        self._values, self._speedups = {}, {}

    def values(self) -> dict[str, dict[str, float]]:
        """What is shown: bar set (backend, or "run") -> category -> milliseconds (before the log floor)."""
        return {name: dict(v) for name, v in self._values.items()}

    def speedups(self) -> dict[str, dict[str, float]]:
        """Comparison only: "<backend> vs <baseline>" -> category -> factor."""
        return {name: dict(v) for name, v in self._speedups.items()}

    def show_run(self, stage_ms: Mapping[str, float], compile_ms: float = 0.0, backend: str = "") -> None:
        self.clear()
        categories = list(stage_ms)
        sets = {"run": dict(stage_ms)}
        if compile_ms > 0:
            categories.append(COMPILE)
            sets[COMPILE] = {COMPILE: compile_ms}
        total = sum(stage_ms.values())
        self._draw(categories, sets, f"{backend or 'run'}: total {total:.1f} ms")
        self.caption.setText(f"Total {total:.2f} ms over {len(stage_ms)} stages"
                             + (f"; Numba compile {compile_ms:.0f} ms (first use, not in the total)"
                                if compile_ms > 0 else ""))

    def show_comparison(self, per_backend: Mapping[str, Mapping[str, float]],
                        compile_ms: Mapping[str, float] | None = None) -> None:
        self.clear()
        stages = list(dict.fromkeys(s for times in per_backend.values() for s in times))
        sets = {name: {**times, "total": sum(times.values())} for name, times in per_backend.items()}
        categories = [*stages, "total"]
        compiled = {name: ms for name, ms in (compile_ms or {}).items() if ms > 0}
        if compiled:
            categories.append(COMPILE)
            for name, ms in compiled.items():
                sets.setdefault(name, {})[COMPILE] = ms
        for baseline in ("naive", "vectorized"):
            if baseline in sets:
                for name in sets:
                    if name not in (baseline, "naive"):  # only what should be faster than the baseline
                        self._speedups[f"{name} vs {baseline}"] = {
                            c: sets[baseline][c] / sets[name][c] for c in [*stages, "total"]
                            if sets[name].get(c, 0) > 0 and c in sets[baseline]}
        self._draw(categories, sets, "Median ms per stage, every backend")
        self.caption.setText(self._speedup_text())

    def _speedup_text(self) -> str:
        lines = []
        for pair, factors in self._speedups.items():
            parts = [f"{c} ×{f:,.0f}" if f >= 10 else f"{c} ×{f:.1f}" for c, f in factors.items()]
            lines.append(f"{pair}: " + ", ".join(parts))
        return "\n".join(lines) + f"\n{COMPILE} is shown apart and never added to a total."

    def _draw(self, categories: list[str], sets: dict[str, dict[str, float]], title: str) -> None:
        self._values = {name: {c: v for c, v in values.items()} for name, values in sets.items()}
        series = QHorizontalBarSeries()
        series.setLabelsVisible(True)
        series.setLabelsFormat("@value")
        series.setLabelsPrecision(3)
        series.setLabelsPosition(QHorizontalBarSeries.LabelsPosition.LabelsOutsideEnd)
        for name, values in sets.items():
            bar_set = QBarSet(name)
            bar_set.setColor(QColor(COLOURS.get(name, "#455a64")))
            bar_set.setLabelColor(QColor("#222222"))
            for category in reversed(categories):  # Qt draws the first category at the bottom
                bar_set.append(max(FLOOR_MS, values.get(category, 0.0)) if category in values else 0.0)
            series.append(bar_set)
        self.chart.addSeries(series)
        axis_y = QBarCategoryAxis()
        axis_y.append(list(reversed(categories)))
        axis_x = QLogValueAxis()
        axis_x.setBase(10)
        axis_x.setLabelFormat("%g")
        axis_x.setTitleText("milliseconds (log scale)")
        largest = max((v for values in sets.values() for v in values.values()), default=1.0)
        axis_x.setRange(FLOOR_MS, max(largest * 30, 1.0))  # room for the value labels past the longest bar
        self.chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        self.chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_y)
        series.attachAxis(axis_x)
        self.chart.setTitle(title)
        self.chart.legend().setVisible(len(sets) > 1)
