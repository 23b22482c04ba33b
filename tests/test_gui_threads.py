"""The desktop app's Threads box: it exists with a tooltip, persists, and its value reaches runs, comparisons and the
batch workers; the Timing view names the threads its numbers ran on."""

from __future__ import annotations

from pathlib import Path

import numba
import pytest
from PySide6.QtCore import QSettings

from radbench.app.main_window import MainWindow
from radbench.inference.machine import usable_cpus
from radbench.inference.threads import DEFAULT_ONNX_THREADS, Threads, thread_limit

CT = Path(__file__).resolve().parent.parent / "sample_images" / "ct_small_128px.dcm"
MOST = min(usable_cpus(), thread_limit())


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "radbench.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings) -> MainWindow:
    win = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(win)
    win.show()
    win.open_files([CT])
    qtbot.waitUntil(lambda: not win.opening and win.current_scan is not None, timeout=30000)
    return win


def _run(qtbot, window, backend: str) -> None:
    window.backend.setCurrentIndex(window.backend.findData(backend))
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)


def test_the_threads_box_sits_in_the_run_toolbar_with_a_tooltip_and_the_default_first(window, settings):
    box = window.threads
    assert window.run_toolbar.widgetForAction(window.run_toolbar.actions()[2]) is box  # after the backend list
    assert (box.minimum(), box.maximum(), box.value()) == (0, MOST, 0)
    assert box.text() == "threads: default" and window.run_toolbar.thread_count is None
    tip = box.toolTip()
    assert "Numba's parallel kernels and ONNX Runtime's infer" in tip and f"1 to {MOST}" in tip
    assert f"Numba on every usable CPU ({thread_limit()}), ONNX Runtime on {DEFAULT_ONNX_THREADS}" in tip
    box.setValue(1)
    assert box.text() == "threads 1" and window.run_toolbar.thread_count == 1
    assert int(settings.value("threads")) == 1


def test_the_chosen_threads_persist_between_sessions(qtbot, settings):
    settings.setValue("threads", 1)
    win = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(win)
    assert win.threads.value() == 1
    settings.setValue("threads", 999)  # from a bigger machine: clamped to this one's
    again = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(again)
    assert again.threads.value() == MOST


def test_a_run_uses_the_threads_of_the_box_on_its_worker_thread_and_the_view_names_them(qtbot, window):
    window.threads.setValue(1)
    _run(qtbot, window, "numba")
    prediction = window.predictions[(CT, 0)]
    assert prediction.threads == Threads(1, 1)  # read on the worker thread, as the run started
    assert numba.get_num_threads() == thread_limit()  # the GUI thread is left alone
    legend, caption = window.timing_chart.legend.text(), window.timing_chart.caption.text()
    assert "numba&nbsp;(1&nbsp;thread)" in legend and "ONNX&nbsp;Runtime, 1&nbsp;thread" in legend
    assert "Threads: Numba's kernels on 1 thread, ONNX Runtime's infer on 1 thread." in caption

    window.threads.setValue(0)  # back to the defaults, for the next run
    _run(qtbot, window, "numba")
    assert window.predictions[(CT, 0)].threads == Threads(thread_limit(), DEFAULT_ONNX_THREADS)
    _run(qtbot, window, "vectorized")
    assert window.predictions[(CT, 0)].threads == Threads(None, DEFAULT_ONNX_THREADS)
    assert "no Numba kernels" in window.timing_chart.caption.text()


def test_compare_all_runs_every_backend_on_the_threads_of_the_box(qtbot, window):
    window.threads.setValue(1)
    window.repeats.setValue(1)
    window.compare_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    comparison = window.timings[(CT, 0)]
    assert {name: r.last.threads for name, r in comparison.results.items()} == {
        "naive": Threads(None, 1), "vectorized": Threads(None, 1), "numba": Threads(1, 1)}
    assert "Threads: Numba's kernels on 1 thread" in window.timing_chart.caption.text()
    assert "numba&nbsp;(1&nbsp;thread)" in window.timing_chart.legend.text()


def test_the_batch_window_takes_the_threads_of_the_toolbar_for_its_workers(window):
    window.threads.setValue(1)
    dialog = window.open_batch()
    assert dialog.threads.value() == 1 and dialog.threads.text() == "threads 1"
    assert dialog.threads.toolTip().startswith("Threads of each worker process")


@pytest.mark.slow
def test_the_batch_workers_run_on_the_threads_of_the_batch_window(qtbot, window, tmp_path):
    folder = tmp_path / "scans"  # not tmp_path itself: the settings file lives there
    folder.mkdir()
    (folder / CT.name).write_bytes(CT.read_bytes())
    dialog = window.open_batch()
    dialog.folder.setText(str(folder))
    dialog.backend.setCurrentText("numba")
    dialog.workers.setValue(1)
    dialog.threads.setValue(1)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120000)
    assert [(r["numba_threads"], r["onnxruntime_threads"]) for r in dialog.rows] == [(1, 1)]
    assert dialog.status.text().endswith("each worker on Numba 1 thread, ONNX Runtime 1 thread")
    assert "numba&nbsp;(1&nbsp;thread)" in dialog.chart.legend.text()
