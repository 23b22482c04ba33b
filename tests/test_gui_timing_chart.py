"""The timing chart offscreen: one run, a comparison of backends on a log axis with whiskers, shared stages drawn
once, speedups only where the spreads allow, Numba's warm-up apart, clearing, rendering."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCharts import QLogValueAxis
from PySide6.QtGui import QColor, QImage

from radbench.app.timing_chart import (
    COLOURS,
    COMPILE,
    COMPILE_COLOUR,
    FLOOR_MS,
    ROW_PX,
    SHARED,
    SHARED_COLOUR,
    SLOT_PX,
    TimingChart,
)
from radbench.inference.benchmarking.compare import (
    END_TO_END_TOTAL,
    PREPROCESSING_TOTAL,
    BackendResult,
    Comparison,
    Spread,
)
from radbench.inference.benchmarking.numba_compile import CompileTime
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline
from radbench.inference.threads import Threads

RUN = {"decode": 2.0, "rescale": 1.5, "window": 1.6, "equalize": 6.0, "resize": 0.8, "normalize": 0.3,
       "infer": 2.5, "postprocess": 0.2, "heatmap": 0.3}  # 15.2 ms in all, 10.2 ms of preprocessing
COLD = CompileTime("uint16", 850.0, "compiled")


@pytest.fixture(scope="module")
def prediction():
    return Pipeline(Model(), "vectorized").run(get_testdata_file("CT_small.dcm"))


@pytest.fixture
def chart(qtbot) -> TimingChart:
    widget = TimingChart()
    qtbot.addWidget(widget)
    widget.resize(520, 900)
    widget.show()
    return widget


def _backend(name, prediction, **stages):
    """A backend's result whose stages (and totals) took the given repeats, in ms."""
    spreads = {stage: Spread(tuple(samples)) for stage, samples in stages.items()}
    pre = tuple(map(sum, zip(*stages.values())))
    spreads.update({PREPROCESSING_TOTAL: Spread(pre), END_TO_END_TOTAL: Spread(tuple(t + 3.0 for t in pre))})
    return BackendResult(name, MappingProxyType(spreads), prediction)


def _comparison(prediction, naive, vectorized, numba, load=0.4, repeats=3) -> Comparison:
    results = {"naive": _backend("naive", prediction, **naive),
               "vectorized": _backend("vectorized", prediction, **vectorized),
               "numba": _backend("numba", prediction, **numba)}
    shared = {"decode": Spread((2.0, 2.1, 2.4)), "infer": Spread((0.9, 1.0, 1.2)), "postprocess": Spread((0.1,) * 3)}
    return Comparison(MappingProxyType(results), MappingProxyType(shared), repeats=repeats, warmups=1, max_abs_diff=0.0,
                      labels_agree=True, load_average=load, usable_cpus=2)


NAIVE = {"rescale": (190.0, 200.0, 230.0), "equalize": (900.0, 1000.0, 3000.0)}
VECTORIZED = {"rescale": (1.9, 2.0, 2.2), "equalize": (3.8, 4.0, 4.4)}
NUMBA = {"rescale": (1.8, 2.1, 2.3), "equalize": (0.9, 1.0, 1.1)}  # rescale: about the same as vectorized


def _pixels(chart: TimingChart, colour: str) -> np.ndarray:
    """(y, x) of the pixels inside the plot area that have exactly ``colour``."""
    image = chart.view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    argb = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.bytesPerLine() // 4)
    area = chart.chart.plotArea().toRect()
    plot = argb[area.top():area.bottom() + 1, area.left():area.right() + 1]
    ys, xs = np.nonzero(plot == QColor(colour).rgb())
    return np.stack([ys + area.top(), xs + area.left()], axis=1)


def _dark(chart: TimingChart) -> int:
    image = chart.view.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    grey = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    area = chart.chart.plotArea().toRect()
    return int((grey[area.top():area.bottom() + 1, area.left():area.right() + 1] < 80).sum())


def test_a_run_shows_its_stages_the_two_totals_shared_stages_in_grey_and_the_warm_up_apart(qtbot, chart):
    chart.show_run(RUN, "chest.dcm, frame 1 of 1: numba", "numba", COLD)
    shown = chart.values()
    assert shown["numba"] == {"rescale": 1.5, "window": 1.6, "equalize": 6.0, "resize": 0.8, "normalize": 0.3,
                              "heatmap": 0.3, PREPROCESSING_TOTAL: pytest.approx(10.2),
                              END_TO_END_TOTAL: pytest.approx(15.2)}  # decode is in the end-to-end total only
    assert shown[SHARED] == {"decode": 2.0, "infer": 2.5, "postprocess": 0.2}
    assert shown[COMPILE] == {"numba cold compile": 850.0}  # never in a total
    assert chart.stage_axis.categories()[::-1] == [
        "decode (shared)", "rescale", "window", "equalize", "resize", "normalize", PREPROCESSING_TOTAL,
        "infer (shared)", "postprocess (shared)", "heatmap", END_TO_END_TOTAL, "Numba warm-up"]
    assert "Numba&nbsp;warm-up&nbsp;(cold&nbsp;compile)" in chart.legend.text()
    assert chart.title.text() == "chest.dcm, frame 1 of 1: numba" and not chart.badge.isVisible()
    assert "cold compile, 0.85 s" in chart.caption.text() and "never added to a total" in chart.caption.text()
    assert chart.speedups() == {} and chart.spreads() == {}
    qtbot.wait(10)
    for colour in (COLOURS["numba"], SHARED_COLOUR, COMPILE_COLOUR):
        assert len(_pixels(chart, colour)) > 200


def test_one_run_says_it_has_no_spread_and_a_comparison_of_too_few_repeats_gives_no_speedups(chart, prediction):
    chart.show_run(RUN, "chest.dcm, frame 1 of 1: numba", "numba", COLD)
    assert chart.caption.text().startswith("One run: no spread (Compare all times every backend several times")
    one = {name: {s: v[:1] for s, v in stages.items()} for name, stages in (("n", NAIVE), ("v", VECTORIZED),
                                                                            ("u", NUMBA))}
    chart.show_comparison(_comparison(prediction, one["n"], one["v"], one["u"], repeats=1), "one repeat", COLD)
    assert chart.speedups() == {} and "×" not in chart.caption.text()
    assert ("<b>No speedups</b>: with 1 repeat per backend there is no p10–p90 band to tell a gain from run-to-run "
            "noise; set repeats to 3 or more.") in chart.caption.text()
    chart.show_batch(RUN, 4, "numba", Threads(2, 1))
    assert "One run" not in chart.caption.text()


def test_a_run_without_warm_up_time_has_no_compile_bar(chart):
    chart.show_run(RUN, "ct.dcm, frame 1 of 1: numba", "numba", CompileTime("uint8", 0.0, "already in memory"))
    assert COMPILE not in chart.values() and "compile" not in chart.caption.text()


def test_a_comparison_has_whiskers_shared_stages_once_and_speedups_only_where_the_spreads_allow(
        qtbot, chart, prediction):
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, NUMBA), "ct.dcm, frame 1 of 1: every backend",
                          COLD)
    shown = chart.values()
    assert list(shown) == ["naive", "vectorized", "numba", SHARED, COMPILE]
    assert shown["naive"]["equalize"] == 1000.0 and shown[SHARED] == {"decode": 2.1, "infer": 1.0, "postprocess": 0.1}
    assert not any(stage in shown[name] for stage in ("decode", "infer", "postprocess")
                   for name in ("naive", "vectorized", "numba"))
    spreads = chart.spreads()
    assert spreads["naive"]["equalize"] == (pytest.approx(920.0), pytest.approx(2600.0))  # p10, p90 of 3 repeats
    assert spreads[SHARED]["decode"] == (pytest.approx(2.02), pytest.approx(2.34))
    speedups = chart.speedups()
    assert speedups["equalize"]["numba vs vectorized"] == pytest.approx(4.0)
    assert speedups["rescale"]["numba vs vectorized"] is None  # the bands overlap: "~same", not ×0.95
    assert speedups["rescale"]["vectorized vs naive"] == pytest.approx(100.0)
    assert set(speedups) == {"rescale", "equalize", PREPROCESSING_TOTAL, END_TO_END_TOTAL}  # no shared stage
    caption = chart.caption.text()
    assert "Median of 3 repeats after 1 warm-up, interleaved" in caption and "p10–p90" in caption
    assert "~same" in caption and "×4" in caption and "slower" not in caption
    assert chart.badge.isVisible() and "✔ equivalent" in chart.badge.text() and "labels agree" in chart.badge.text()
    assert isinstance(chart.ms_axis, QLogValueAxis) and chart.ms_axis.max() >= 2600.0  # every whisker fits
    qtbot.wait(10)
    with_spread = _dark(chart)
    flat = {name: {s: (np.median(v),) * 3 for s, v in stages.items()}
            for name, stages in (("n", NAIVE), ("v", VECTORIZED), ("u", NUMBA))}
    chart.show_comparison(_comparison(prediction, flat["n"], flat["v"], flat["u"]), "flat", COLD)
    qtbot.wait(10)
    assert with_spread > _dark(chart) + 100  # the whiskers add their lines


@pytest.mark.parametrize("load, cause", [(3.4, "other processes kept about 2.4 cores busy"),
                                          (0.6, "none detected: no other process was busy")])
def test_numba_slower_than_vectorized_is_said_plainly_with_the_likely_cause(chart, prediction, load, cause):
    slow = {"rescale": (9.0, 9.5, 10.0), "equalize": NUMBA["equalize"]}
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, slow, load), "ct.dcm: every backend")
    caption = chart.caption.text()
    assert "Numba was slower than vectorized</b> on rescale" in caption and cause in caption
    assert chart.speedups()["rescale"]["numba vs vectorized"] == pytest.approx(2.0 / 9.5)


def test_clear_shows_the_empty_state_and_the_chart_can_be_filled_again(chart, prediction):
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, NUMBA), "x", COLD)
    chart.clear("ct.dcm, frame 1 of 1: no timings yet. Press Run.")
    assert chart.values() == {} and chart.speedups() == {} and chart.spreads() == {}
    assert chart.chart.series() == [] and chart.stage_axis.categories() == []
    assert chart.caption.text() == "" and not chart.ms_axis.isVisible() and not chart.badge.isVisible()
    assert chart.title.text() == "ct.dcm, frame 1 of 1: no timings yet. Press Run."
    chart.show_run(RUN, "again")
    assert list(chart.values()) == ["run", SHARED]


def test_a_thousandfold_range_renders_every_bar_in_log_order(qtbot, chart, prediction):
    one = {"equalize": (1.0, 1.0, 1.0)}
    chart.show_comparison(_comparison(prediction, {"equalize": (1000.0,) * 3}, {"equalize": (10.0,) * 3}, one),
                          "range", CompileTime("uint16", 500.0, "loaded from on-disk cache"))
    qtbot.wait(10)
    xs = {name: _pixels(chart, COLOURS[name])[:, 1] for name in ("naive", "vectorized", "numba")}
    compile_xs = _pixels(chart, COMPILE_COLOUR)[:, 1]
    assert all(x.size > 100 for x in xs.values()) and compile_xs.size > 100
    assert xs["naive"].max() > compile_xs.max() > xs["vectorized"].max() > xs["numba"].max()  # log order
    assert xs["numba"].max() - xs["numba"].min() > 20  # the shortest bar is still clearly visible
    assert "Numba warm-up" in chart.stage_axis.categories() and "(on-disk&nbsp;cache&nbsp;load)" in chart.legend.text()


def test_times_under_the_floor_are_drawn_at_it_and_said_so(chart):
    chart.show_run({**RUN, "resize": 0.0002}, "tiny")
    assert chart.values()["run"]["resize"] == 0.0002
    assert f"under {FLOOR_MS:g} ms are drawn at" in chart.caption.text()
    assert chart.ms_axis.min() <= FLOOR_MS / 10 + 1e-12


def test_a_real_run_of_the_pipeline(qtbot, chart, prediction):
    stage_ms = prediction.timings.as_ms()
    chart.show_run(stage_ms, "CT_small.dcm, frame 1 of 1: vectorized", prediction.backend)
    shown = chart.values()
    assert {**shown["vectorized"], **shown[SHARED]}.keys() == {*stage_ms, PREPROCESSING_TOTAL, END_TO_END_TOTAL}
    assert shown["vectorized"][END_TO_END_TOTAL] == pytest.approx(prediction.timings.total_ms)
    qtbot.wait(10)
    assert len(_pixels(chart, COLOURS["vectorized"])) > 500


def test_bars_in_a_row_run_top_to_bottom_in_the_legends_order(qtbot, chart, prediction):
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, NUMBA), "order", COLD)
    qtbot.wait(10)
    legend = chart.legend.text()
    assert legend.index("naive") < legend.index("vectorized") < legend.index("numba")
    tops = {name: _pixels(chart, COLOURS[name])[:, 0].min() for name in ("naive", "vectorized", "numba")}
    assert tops["naive"] < tops["vectorized"] < tops["numba"]  # the top row (rescale): naive's bar highest


@pytest.mark.parametrize("width", [300, 420, 640])
def test_at_any_width_axis_labels_never_collide_and_bars_start_at_the_labelled_left_end(qtbot, prediction, width):
    from PySide6.QtGui import QFontMetrics

    chart = TimingChart()
    qtbot.addWidget(chart)
    chart.resize(width, 900)
    chart.show()
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, NUMBA), "narrow", COLD)
    qtbot.wait(50)
    axis, metrics = chart.ms_axis, QFontMetrics(chart.ms_axis.labelsFont())
    assert axis.base() in (10, 100, 1000)
    low = round(np.log10(axis.min()))
    assert axis.min() == pytest.approx(10.0 ** low) and low % round(np.log10(axis.base())) == 0  # a labelled power
    labels = [f"{v:g}" for v in axis.base() ** np.arange(low / np.log10(axis.base()), 40) if v <= axis.max()]
    assert sum(metrics.horizontalAdvance(t) + 12 for t in labels) <= chart.chart.plotArea().width()
    assert "every bar starts at the axis's left end" in chart.caption.text()
    assert chart.dropped_labels == [] or width < 400
    assert chart.view.width() <= chart.width()  # no sideways scrolling: the legend and tables wrap


def test_a_value_label_that_does_not_fit_goes_inside_its_bar_or_is_left_out(qtbot, chart):
    chart.resize(300, 900)
    chart.show_run({**RUN, "equalize": 6000.0}, "tight")
    qtbot.wait(50)
    chart.view.grab()  # paints
    texts = [text for _rect, text in chart._bars]
    assert any(text.startswith("equalize, run: 6,000 ms") for text in texts)  # hovering says it either way


def test_a_larger_type_scales_the_axes_the_labels_and_the_rows_and_the_total_is_said_above_the_fold(chart,
                                                                                                     prediction):
    """Presentation mode sets a larger font on the window: the chart follows it (axes, painted labels, row height),
    and the preprocessing total's speedups stand in one line under the heading."""
    chart.show_comparison(_comparison(prediction, NAIVE, VECTORIZED, NUMBA), "ct.dcm: every backend", COLD)
    small_axis, small_height = chart.stage_axis.labelsFont().pointSizeF(), chart.view.minimumHeight()
    assert small_height == 90 + len(chart.stage_axis.categories()) * max(ROW_PX, 3 * SLOT_PX)  # 3 backends a row
    assert chart.headline.isVisible() and chart.headline.text().startswith("<b>Preprocessing total</b>: ")
    assert "numba vs vectorized ×" in chart.headline.text() and "vectorized vs naive ×" in chart.headline.text()
    font = chart.font()
    font.setPointSizeF(font.pointSizeF() * 1.6)
    chart.setFont(font)
    assert chart.stage_axis.labelsFont().pointSizeF() >= 1.5 * small_axis
    assert chart.view.minimumHeight() >= 1.5 * small_height
    assert chart.title.font().pointSizeF() > font.pointSizeF() and chart.badge.font().pointSizeF() == font.pointSizeF()
    chart.clear()
    assert not chart.headline.isVisible()
