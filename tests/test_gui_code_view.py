"""The "How?" window of a comparison: one stage's code in every backend side by side, read from the installed
modules, each under its measured time; and ``stage_source``, which gathers that code."""

from __future__ import annotations

import inspect

import pytest
from pydicom.data import get_testdata_file

from radbench.app.timing_chart import TimingChart
from radbench.inference.backends import BACKEND_NAMES, get_backend, stage_source
from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking.compare import compare_backends
from radbench.inference.loading import load_scan
from radbench.inference.model import Model


@pytest.fixture(scope="module")
def comparison():
    return compare_backends(Model(), load_scan(get_testdata_file("CT_small.dcm")), repeats=1)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("stage", STAGES)
def test_stage_source_starts_with_the_installed_stage_function_and_adds_its_own_helpers(backend, stage):
    source = stage_source(backend, stage)
    function = getattr(get_backend(backend), stage)
    assert source.startswith(inspect.getsource(function).rstrip())
    assert source.count(f"def {stage}(") == 1


def test_each_backend_shows_how_it_is_written():
    naive, vectorized, numba = (stage_source(b, "equalize") for b in ("naive", "vectorized", "numba"))
    assert "for j in range(width):" in naive and "def _min_max(" in naive  # its private helper comes along
    assert "np.cumsum" in vectorized and "for j in range" not in vectorized
    assert "@njit(cache=True, nogil=True)" in numba and "in_bands(_histogram" in numba and "def _histogram(" in numba
    assert "def bin_index(" in numba  # a scalar kernel the Numba loops inline
    with pytest.raises(KeyError, match="no stage named 'infer'"):
        stage_source("naive", "infer")


def test_how_opens_the_stage_code_side_by_side_under_the_measured_times(qtbot, comparison):
    chart = TimingChart()
    qtbot.addWidget(chart)
    assert not chart.how.isVisibleTo(chart)
    chart.show_comparison(comparison, "CT_small.dcm, frame 1 of 1: every backend")
    assert chart.how.isVisibleTo(chart)
    assert all(f'<a href="{name}">{name}</a>' in chart.how.text() for name in BACKEND_NAMES)
    chart.how.linkActivated.emit("numba")
    view = chart.code_view
    assert view.stage.currentData() == "equalize" and "CT_small.dcm, frame 1 of 1" in view.heading.text()
    for name in BACKEND_NAMES:
        median = comparison.results[name].stages["equalize"].median_ms
        assert view.times[name].text().startswith(f"{name}: {median:.2f} ms")
        assert view.sources[name].toPlainText() == stage_source(name, "equalize")
    assert "background" in view.times["numba"].styleSheet() and "background" not in view.times["naive"].styleSheet()
    view.stage.setCurrentIndex(STAGES.index("resize"))
    assert all(view.sources[name].toPlainText() == stage_source(name, "resize") for name in BACKEND_NAMES)
    median = comparison.results["vectorized"].stages["resize"].median_ms
    assert view.times["vectorized"].text().startswith(f"vectorized: {median:.2f} ms")
    chart.clear()
    assert not chart.how.isVisibleTo(chart)
