"""The main window's Run toolbar and its background jobs: backend choice, repeats, Run / Compare all / Cancel,
the equivalence badge, the job's progress bar, and Numba's compile at start-up.

One job (a run, a comparison or a profile) at a time on a superqt worker thread, so the window stays responsive;
Cancel sets a flag that the pipeline checks between stages and between rows. Results come back as signals on the
GUI thread; the window decides how to show them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QSpinBox, QStatusBar, QToolBar, QWidget
from superqt.utils import create_worker

from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.benchmarking.compare import Comparison, compare_backends
from radbench.inference.benchmarking.profiling import profile_run
from radbench.inference.errors import Cancelled, RadBenchError
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.scan import Scan

#: Input dtypes whose Numba kernels are compiled in the background at start-up.
WARM_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)


class RunToolbar(QToolBar):
    """Starts runs, comparisons and profiles of a scan and reports them. Messages go to ``status``; the window
    puts :attr:`progress` in its status bar and calls :meth:`set_input_ready` when the scan or model changes."""

    ran = Signal(object)  # Prediction
    compared = Signal(object, object)  # Comparison, compile ms per backend (Numba's start-up compile filled in)
    profiled = Signal(str, str)  # the .prof path, the top functions as text
    problems = Signal(str, list)  # title, problem lines
    _progress = Signal(int, int, str)  # emitted on the worker thread, received (queued) on the GUI thread

    def __init__(self, settings: QSettings, status: QStatusBar, parent: QWidget | None = None):
        super().__init__("Run", parent, objectName="run_toolbar")
        self._settings, self._status = settings, status
        self.backend = QComboBox()
        for name in BACKEND_NAMES:
            self.backend.addItem(name, name)
        self.repeats = QSpinBox(minimum=1, maximum=50, value=3, prefix="repeats ")
        self.run_button = QPushButton("Run")
        self.compare_button = QPushButton("Compare all")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.badge = QLabel()
        self.progress = QProgressBar(maximumWidth=220, visible=False)
        for widget in (QLabel(" Backend "), self.backend, self.run_button, self.repeats, self.compare_button,
                       self.cancel_button, self.badge):
            self.addWidget(widget)
        self.numba_compile_ms: float | None = None
        self._cancel = threading.Event()
        self._job = None
        self._input_ready = False

        self.backend.setCurrentIndex(max(0, self.backend.findData(settings.value("backend", "vectorized"))))
        self.repeats.setValue(int(settings.value("repeats", 3)))
        self.backend.currentIndexChanged.connect(lambda: settings.setValue("backend", self.backend_name))
        self.repeats.valueChanged.connect(lambda v: settings.setValue("repeats", v))
        self.cancel_button.clicked.connect(self.cancel)
        self._progress.connect(self._show_progress)

    @property
    def backend_name(self) -> str:
        return self.backend.currentData()

    @property
    def busy(self) -> bool:
        """True while a run, comparison or profile is going."""
        return self._job is not None

    def set_input_ready(self, ready: bool) -> None:
        """Whether there is a scan and a model to run on; Run and Compare all are enabled when also not busy."""
        self._input_ready = ready
        self._update_buttons()

    # ----- jobs -------------------------------------------------------------------------------------------------
    def run(self, scan: Scan | None, frame: int, model: Model | None) -> None:
        """Run the chosen backend on ``frame`` of ``scan``; ``ran`` follows."""
        if scan is None or model is None or self.busy:
            return
        pipeline = Pipeline(model, get_backend(self.backend_name))
        self._start(f"Running {self.backend_name}",
                    lambda: pipeline.run(scan.path, frame=frame, cancel=self._cancel.is_set), self._ran)

    def compare(self, scan: Scan | None, frame: int, model: Model | None) -> None:
        """Time every backend on ``frame`` of ``scan`` (``repeats`` runs each) and check they agree; ``compared``
        follows."""
        if scan is None or model is None or self.busy:
            return
        repeats = self.repeats.value()
        self._start("Comparing backends", lambda: compare_backends(
            model, scan, frame=frame, repeats=repeats, cancel=self._cancel.is_set, progress=self._progress.emit),
            self._compared)

    def profile(self, scan: Scan | None, model: Model | None, out: str | Path) -> None:
        """cProfile a run of ``scan`` with the chosen backend into ``out``; ``profiled`` follows."""
        backend = self.backend_name
        if scan is None or model is None or self.busy:
            return
        self._start(f"Profiling {backend}", lambda: profile_run(scan.path, model, backend, out),
                    lambda result: self.profiled.emit(str(out), result[1]))

    def cancel(self) -> None:
        if self.busy:
            self._cancel.set()
            self._status.showMessage("Cancelling…")

    def warm_numba(self) -> None:
        """Compile Numba's kernels in the background; the backend list shows the state and the time."""
        index = self.backend.findData("numba")
        self.backend.setItemText(index, "numba (compiling…)")

        def warm() -> float:
            backend = get_backend("numba")
            return sum(backend.warm_up(dtype) for dtype in WARM_DTYPES) * 1e3

        def done(ms: float) -> None:
            self.numba_compile_ms = ms
            self.backend.setItemText(index, f"numba (compiled, {ms / 1e3:.1f} s)")

        def failed(exc: Exception) -> None:
            self.backend.setItemText(index, "numba (unavailable)")
            self.problems.emit("Numba cannot compile its kernels", [str(exc)])

        worker = create_worker(warm, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.start()
        self._warm_worker = worker

    # ----- results ----------------------------------------------------------------------------------------------
    def _ran(self, prediction: Prediction) -> None:
        self.badge.clear()
        self.ran.emit(prediction)

    def _compared(self, comparison: Comparison) -> None:
        compile_ms = {name: r.compile_ms for name, r in comparison.results.items()}
        if self.numba_compile_ms and "numba" in compile_ms and not compile_ms["numba"]:
            compile_ms["numba"] = self.numba_compile_ms  # compiled at start-up: show that figure
        ok = comparison.equivalent
        self.badge.setText(f"  {'✔ equivalent' if ok else '✘ DIFFER'}: max |Δ| {comparison.max_abs_diff:.1e}, "
                           f"labels {'agree' if comparison.labels_agree else 'DISAGREE'}  ")
        self.badge.setStyleSheet(f"color: white; background: {'#2e7d32' if ok else '#c62828'}; border-radius: 4px;")
        self.compared.emit(comparison, compile_ms)
        notes = [r.note for r in comparison.results.values() if r.note]
        if notes:
            self._status.showMessage("; ".join(notes), 15000)

    # ----- one job at a time --------------------------------------------------------------------------------------
    def _start(self, what: str, work: Callable, done: Callable) -> None:
        """Run ``work`` on a worker thread; ``done(result)`` back on the GUI thread."""
        self._cancel.clear()
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(lambda exc: self._failed(what, exc))
        worker.finished.connect(self._finished)
        self._job = worker
        self._status.showMessage(f"{what}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._update_buttons()
        worker.start()

    def _show_progress(self, done: int, total: int, backend: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        if backend:
            self._status.showMessage(f"Comparing backends: run {done + 1} of {total} ({backend})…")

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, Cancelled):
            self._status.showMessage(f"{what}: cancelled", 5000)
        else:
            self.problems.emit(f"{what} failed", [str(exc) if isinstance(exc, RadBenchError)
                                                  else f"unexpected {type(exc).__name__}: {exc}"])

    def _finished(self) -> None:
        self._job = None
        self.progress.hide()
        if self._status.currentMessage().endswith("…"):
            self._status.clearMessage()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(self._input_ready and not self.busy)
        self.compare_button.setEnabled(self._input_ready and not self.busy)
        self.cancel_button.setEnabled(self.busy)
