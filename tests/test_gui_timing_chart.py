"""The timing chart offscreen: one run, a comparison of backends on a log axis, speedups, clearing, rendering."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCharts import QAbstractAxis, QLogValueAxis
from PySide6.QtGui import QColor, QImage

from radbench.app.timing_chart import COLOURS, COMPILE_COLOUR, FLOOR_MS, TimingChart, format_ms
from radbench.inference.model import Model
from radbench.inference.pipeline import PIPELINE_STAGES, Pipeline

RUN = {"decode": 2.0, "rescale": 1.5, "window": 1.6, "equalize": 6.0, "resize": 0.8, "normalize": 0.3,
       "infer": 2.5, "postprocess": 0.2, "heatmap": 0.3}  # 15.2 ms in all
NAIVE = {"rescale": 200.0, "window": 300.0, "equalize": 1000.0, "resize": 500.0}
VECTORIZED = {"rescale": 2.0, "window": 3.0, "equalize": 4.0, "resize": 5.0}
NUMBA = {"rescale": 0.5, "window": 1.5, "equalize": 1.0, "resize": 0.0002}


@pytest.fixture
def chart(qtbot) -> TimingChart:
    widget = TimingChart()
    qtbot.addWidget(widget)
    widget.resize(460, 720)
    widget.show()
    return widget


def _drawn(chart: TimingChart) -> dict[str, dict[str, float]]:
    """What the bar series holds, top to bottom: bar set -> category -> drawn value (bars of value 0 are absent)."""
    (series,) = chart.chart.series()
    rows = list(enumerate(chart.stage_axis.categories()))[::-1]  # Qt draws the first category at the bottom
    return {bar_set.label(): {c: bar_set.at(i) for i, c in rows if bar_set.at(i) > 0} for bar_set in series.barSets()}


def _pixels(chart: TimingChart, colour: str) -> np.ndarray:
    """x coordinates of the pixels inside the plot area (no legend) that have exactly ``colour``."""
    image = chart.view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    argb = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.bytesPerLine() // 4)
    area = chart.chart.plotArea().toRect()
    plot = argb[area.top():area.bottom() + 1, area.left():area.right() + 1]
    return area.left() + np.nonzero(plot == QColor(colour).rgb())[1]


def test_show_run_draws_one_bar_per_stage_in_order_and_a_separate_compile_bar(chart):
    chart.show_run(RUN, compile_ms=850.0, backend="vectorized")
    assert chart.values() == {"run": {**RUN, "numba compile": 850.0}}
    assert list(chart.values()["run"]) == [*RUN, "numba compile"]
    assert _drawn(chart) == {"run": {**RUN, "numba compile": 850.0}}
    assert chart.stage_axis.categories() == ["numba compile", *reversed(RUN)]  # the first stage on top
    (bar_set,) = chart.chart.series()[0].barSets()
    assert bar_set.selectedBars() == [0] and bar_set.selectedColor() == QColor(COMPILE_COLOUR) != bar_set.color()
    assert chart.chart.title() == "Stage timings: total 15.2 ms (vectorized)"  # the compile time is not in it
    assert "Numba compile 850 ms" in chart.caption.text() and "not part of the total" in chart.caption.text()
    assert chart.speedups() == {}


def test_show_run_without_compile_time_has_no_compile_bar(chart):
    chart.show_run(RUN)
    assert list(_drawn(chart)["run"]) == list(RUN)
    assert chart.chart.series()[0].barSets()[0].selectedBars() == []
    assert chart.chart.title() == "Stage timings: total 15.2 ms"
    assert "compile" not in chart.caption.text()


def test_comparison_groups_backends_by_stage_with_totals_on_a_log_axis(chart):
    chart.show_comparison({"naive": NAIVE, "vectorized": VECTORIZED, "numba": NUMBA}, {"numba": 900.0, "naive": 0.0})
    shown = chart.values()
    assert list(shown) == ["naive", "vectorized", "numba"]
    for name, stages in (("naive", NAIVE), ("vectorized", VECTORIZED), ("numba", NUMBA)):
        assert list(shown[name])[:5] == [*stages, "total"]
        assert shown[name]["total"] == pytest.approx(sum(stages.values()))  # compile time is never in a total
    assert shown["numba"]["numba compile"] == 900.0
    assert "numba compile" not in shown["naive"] and "numba compile" not in shown["vectorized"]
    assert sum(len(times) for times in shown.values()) == 3 * (4 + 1) + 1
    assert chart.stage_axis.categories() == ["numba compile", "total", *reversed(NAIVE)]
    drawn = _drawn(chart)
    assert drawn["naive"]["equalize"] == 1000.0 and drawn["numba"]["equalize"] == 1.0
    assert drawn["numba"]["resize"] == FLOOR_MS  # 0.0002 ms is drawn at the floor, and the caption says so
    assert f"under {FLOOR_MS:g} ms are drawn at" in chart.caption.text()
    assert "Orange: numba compile 900 ms (first use), never added to a total." in chart.caption.text()
    assert set(drawn["naive"]) == {*NAIVE, "total"}  # no bar at all where a backend has no compile time
    axis = chart.ms_axis
    assert isinstance(axis, QLogValueAxis) and axis.type() == QAbstractAxis.AxisType.AxisTypeLogValue
    assert axis.base() == 10 and axis in chart.chart.series()[0].attachedAxes()
    assert axis.titleText() == "milliseconds (log scale)"
    assert axis.min() <= FLOOR_MS / 10 + 1e-12 and axis.max() >= 1020.0  # every bar fits
    assert chart.chart.legend().isVisible()


def test_speedups_are_against_naive_and_vectorized(chart):
    chart.show_comparison({"naive": NAIVE, "vectorized": VECTORIZED, "numba": NUMBA})
    speedups = chart.speedups()
    assert list(speedups) == [*NAIVE, "total"]
    assert speedups["equalize"] == {"vectorized vs naive": 250.0, "numba vs naive": 1000.0, "numba vs vectorized": 4.0}
    assert speedups["rescale"]["numba vs naive"] == 400.0 and speedups["window"]["numba vs vectorized"] == 2.0
    assert speedups["total"]["numba vs naive"] == pytest.approx(2000.0 / 3.0002)
    assert all("naive vs" not in pair for factors in speedups.values() for pair in factors)
    assert "×1000" in chart.caption.text() and "×250" in chart.caption.text()


def test_comparison_without_baselines_has_no_speedups(chart):
    chart.show_comparison({"numba": NUMBA, "other": VECTORIZED})
    assert chart.speedups() == {} and "Speedup" not in chart.caption.text()
    assert set(chart.values()) == {"numba", "other"}


def test_clear_empties_the_chart(chart):
    chart.show_comparison({"naive": NAIVE, "numba": NUMBA}, {"numba": 900.0})
    chart.clear()
    assert chart.values() == {} and chart.speedups() == {}
    assert chart.chart.series() == [] and chart.stage_axis.categories() == []
    assert chart.caption.text() == "" and not chart.ms_axis.isVisible()
    chart.show_run(RUN)  # and it can be filled again
    assert list(chart.values()) == ["run"]


def test_a_thousandfold_range_renders_every_bar(qtbot, chart):
    chart.show_comparison({"naive": {"equalize": 1000.0}, "vectorized": {"equalize": 10.0},
                           "numba": {"equalize": 1.0}}, {"numba": 500.0})
    qtbot.wait(10)
    xs = {name: _pixels(chart, COLOURS[name]) for name in ("naive", "vectorized", "numba")}
    compile_xs = _pixels(chart, COMPILE_COLOUR)
    assert all(x.size > 200 for x in xs.values()) and compile_xs.size > 200
    assert xs["naive"].max() > compile_xs.max() > xs["vectorized"].max() > xs["numba"].max()  # log order
    assert xs["numba"].max() - xs["numba"].min() > 20  # the shortest bar is still clearly visible


def test_a_real_run_of_the_pipeline(qtbot, chart):
    prediction = Pipeline(Model(), "vectorized").run(get_testdata_file("CT_small.dcm"))
    stage_ms = prediction.timings.as_ms()
    chart.show_run(stage_ms, prediction.compile_ms, prediction.backend)
    assert list(stage_ms) == [s for s in PIPELINE_STAGES if s in stage_ms] and len(stage_ms) >= 8
    assert list(chart.values()["run"]) == list(stage_ms)  # vectorized compiles nothing: no compile bar
    assert chart.values()["run"] == stage_ms
    assert f"total {format_ms(prediction.timings.total_ms)} ms (vectorized)" in chart.chart.title()
    assert _pixels(chart, COLOURS["run"]).size > 500
