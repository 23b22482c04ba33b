"""The main window's Run toolbar and its background jobs: backend choice, threads, repeats, Run / Compare all / Race /
Cancel, the job's progress bar, and Numba's warm-up.

The Threads box sets how many threads the next runs, comparisons and profiles use (Numba's parallel kernels and ONNX
Runtime's infer, through :func:`inference.threads.compute_threads` entered on the job's worker thread); its lowest
value, "default", keeps the defaults (Numba on every usable CPU, ONNX Runtime on one). A result names the threads it
ran on.

One job (a run, a comparison, a race or a profile) at a time on a superqt worker thread, so the window stays responsive;
Cancel sets a flag that the pipeline checks between stages and between rows. Results come back as signals on the
GUI thread; the window decides how to show them.

Numba's kernels are warmed up in the background at start-up, compiled in a separate process (on one CPU, without
holding this process's GIL: runs on other backends meanwhile keep their speed) that writes Numba's on-disk cache,
which this process then loads. A job that needs Numba first waits for that warm-up (or
compiles for its scan's input type), saying "Compiling Numba kernels (first use, about N s)…" with the busy bar when
a compile is expected. Every warm-up of the session adds to one figure, :attr:`RunToolbar.numba_compile`, which the
backend list and the timing chart show alike ("cold compile, 16.8 s" or "on-disk cache load, 0.61 s").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QSpinBox, QStatusBar, QToolBar, QWidget
from superqt.utils import create_worker

from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.backends.contract import stop_if
from radbench.inference.benchmarking.compare import compare_backends
from radbench.inference.benchmarking.numba_compile import (
    CompileEnded,
    CompileTime,
    combined,
    compile_estimate_s,
    describe,
    first_use_message,
    warm,
    warm_in_subprocess,
)
from radbench.inference.benchmarking.profiling import profile_run
from radbench.inference.benchmarking.race import DEMO, RacePlan, run_race
from radbench.inference.errors import Cancelled, RadBenchError
from radbench.inference.inspection import inspect_run
from radbench.inference.machine import usable_cpus
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline
from radbench.inference.scan import Scan
from radbench.inference.threads import DEFAULT_ONNX_THREADS, compute_threads, thread_limit

#: Input dtypes whose Numba kernels are compiled in the background at start-up.
WARM_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)
CACHE_LOAD_MESSAGE = "Loading Numba kernels from the on-disk cache…"
#: How often a race's events are passed on to the GUI thread (they queue up on the worker thread meanwhile): often
#: enough to watch, seldom enough to cost the GUI thread next to nothing.
RACE_POLL_MS = 50


class RunToolbar(QToolBar):
    """Starts runs, comparisons and profiles of a scan and reports them. Messages go to ``status``; the window
    puts :attr:`progress` in its status bar and calls :meth:`set_input_ready` when the scan or model changes."""

    ran = Signal(object)  # Prediction
    inspected = Signal(object, tuple)  # Inspection of a Run (after ``ran``) or of a what-if run, the steps skipped
    compared = Signal(object)  # Comparison
    profiled = Signal(str, str)  # the .prof path, the top functions as text
    raced = Signal(object)  # RaceResult
    race_events = Signal(list)  # the race's RaceEvents since the last poll, on the GUI thread, in order
    idle = Signal()  # a job ended (with a result, failed or cancelled)
    problems = Signal(str, list)  # title, problem lines
    # emitted on worker threads, received (queued) on the GUI thread:
    _progress = Signal(int, int, str)
    _say = Signal(str)
    _warmed = Signal(object)  # CompileTime

    def __init__(self, settings: QSettings, status: QStatusBar, parent: QWidget | None = None):
        super().__init__("Run", parent, objectName="run_toolbar")
        self._settings, self._status = settings, status
        self.backend = QComboBox(  # as wide as its longest entry: numba's state ("cold compile, 4.4 s") in full
            sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToContents)
        for name in BACKEND_NAMES:
            self.backend.addItem(name, name)
        self.threads = threads_box()
        self.backend.setToolTip("The preprocessing backend of the next Run and profile: naive (plain Python loops), "
                                "vectorized (NumPy) or numba (compiled kernels; its compile time is shown apart). "
                                "Every backend gives the model the same input.")
        self.repeats = QSpinBox(minimum=1, maximum=50, value=3, prefix="repeats ")
        self.repeats.setToolTip("Compare all: timed runs per backend after one warm-up each, interleaved; the chart "
                                "shows their median and p10–p90")
        self.run_button = QPushButton("Run", toolTip="Classify the frame shown with the chosen backend, timing every "
                                                     "stage (Ctrl+R)")
        self.compare_button = QPushButton("Compare all", toolTip="Time every backend on the frame shown and check "
                                                                 "that their model inputs agree (Ctrl+Shift+R)")
        self.race_button = QPushButton("Race", toolTip="Demo: race the backends on the frame shown, one after "
                                                       "another, stage by stage, with few repeats (Ctrl+D)")
        self.cancel_button = QPushButton("Cancel", enabled=False, toolTip="Stop the run or comparison going on "
                                                                          "(Esc)")
        self.progress = QProgressBar(maximumWidth=220, visible=False, toolTip="How far the job has got")
        backend_label = QLabel(" Backend ")
        backend_label.setBuddy(self.backend)
        for widget in (backend_label, self.backend, self.threads, self.run_button, self.repeats,
                       self.compare_button, self.race_button, self.cancel_button):
            self.addWidget(widget)
        self.numba_compile: CompileTime | None = None  # every Numba warm-up of this session, as one figure
        self._numba_ready = threading.Event()  # cleared while the start-up warm-up runs
        self._numba_ready.set()
        self._warming_message = ""
        self._cancel = threading.Event()
        self._job = None
        self._job_idle = threading.Event()  # set on the worker thread as soon as a job's work has returned
        self._job_idle.set()
        self._input_ready = False
        # A race's events queue up on the worker thread and reach the GUI thread in batches, one per poll: one
        # update of the view per poll, however many rows or stages were reported in between.
        self._race_events: queue.SimpleQueue = queue.SimpleQueue()
        self._race_poll = QTimer(self, interval=RACE_POLL_MS)
        self._race_poll.timeout.connect(self._pass_race_events)

        self.backend.setCurrentIndex(max(0, self.backend.findData(settings.value("backend", "vectorized"))))
        self.repeats.setValue(int(settings.value("repeats", 3)))
        self.threads.setValue(int(settings.value("threads", 0)))  # clamped to this machine's range
        self.backend.currentIndexChanged.connect(lambda: settings.setValue("backend", self.backend_name))
        self.repeats.valueChanged.connect(lambda v: settings.setValue("repeats", v))
        self.threads.valueChanged.connect(lambda v: settings.setValue("threads", v))
        self.cancel_button.clicked.connect(self.cancel)
        self._progress.connect(self._show_progress)
        self._say.connect(self._status.showMessage)
        self._warmed.connect(self._add_warm_up)

    @property
    def backend_name(self) -> str:
        return self.backend.currentData()

    @property
    def thread_count(self) -> int | None:
        """The Threads box: the count the next jobs run on, or None for the defaults."""
        return self.threads.value() or None

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
        backend, threads = self.backend_name, self.thread_count
        pipeline = Pipeline(model, get_backend(backend))

        def work():
            if backend == "numba":
                self._prepare_numba(scan, frame)
            self._say.emit(f"Running {backend} on {scan.path.name}, frame {frame + 1}…")
            return inspect_run(pipeline, scan.path, frame=frame, cancel=self._cancel.is_set)

        self._start(f"Running {backend}", work, self._ran, threads)

    def what_if(self, scan: Scan | None, frame: int, model: Model | None, skip: tuple[str, ...], backend: str) -> bool:
        """Run ``backend`` on ``frame`` of ``scan`` without the ``skip`` steps; ``inspected`` follows (never ``ran``:
        it is not the model's intended input). False (nothing started) while another job runs."""
        if scan is None or model is None or self.busy or not skip:
            return False
        pipeline = Pipeline(model, get_backend(backend))

        def work():
            if backend == "numba":
                self._prepare_numba(scan, frame)
            self._say.emit(f"Running {backend} on {scan.path.name}, frame {frame + 1}, without {', '.join(skip)}…")
            return inspect_run(pipeline, scan.path, frame=frame, skip=skip, cancel=self._cancel.is_set)

        self._start(f"What-if run of {backend}", work, lambda inspection: self.inspected.emit(inspection, skip),
                    self.thread_count)
        return True

    def compare(self, scan: Scan | None, frame: int, model: Model | None) -> None:
        """Time every backend on ``frame`` of ``scan`` (``repeats`` runs each) and check they agree; ``compared``
        follows."""
        if scan is None or model is None or self.busy:
            return
        repeats = self.repeats.value()

        def work():
            self._prepare_numba(scan, frame)
            return compare_backends(model, scan, frame=frame, repeats=repeats, cancel=self._cancel.is_set,
                                    progress=self._progress.emit)

        self._start("Comparing backends", work, self._compared, self.thread_count)

    def race(self, scan: Scan | None, frame: int, model: Model | None, plan: RacePlan = DEMO) -> bool:
        """Race ``plan``'s backends on ``frame`` of ``scan``: ``race_events`` as its stages are measured, then
        ``raced``. False if it could not start (no scan or model, or busy)."""
        if scan is None or model is None or self.busy:
            return False

        def work():
            if "numba" in plan.backends:
                self._prepare_numba(scan, frame)
            self._say.emit(f"Racing the backends on {scan.path.name}…")
            return run_race(model, scan, frame=frame, plan=plan, cancel=self._cancel.is_set,
                            report=self._race_events.put)

        def done(result) -> None:
            self._pass_race_events()
            self.raced.emit(result)

        self._start("Racing backends", work, done, self.thread_count)
        self._race_poll.start()
        return True

    def _pass_race_events(self) -> None:
        events = []
        while True:
            try:
                events.append(self._race_events.get_nowait())
            except queue.Empty:
                break
        if events:
            self.race_events.emit(events)

    def profile(self, scan: Scan | None, model: Model | None, out: str | Path) -> None:
        """cProfile a run of ``scan`` with the chosen backend into ``out``; ``profiled`` follows."""
        backend = self.backend_name
        if scan is None or model is None or self.busy:
            return

        def work():
            if backend == "numba":
                self._prepare_numba(scan, scan.default_frame)
            self._say.emit(f"Profiling {backend}…")
            return profile_run(scan.path, model, backend, out)

        self._start(f"Profiling {backend}", work, lambda result: self.profiled.emit(str(out), result[1]),
                    self.thread_count)

    def cancel(self) -> None:
        if self.busy:
            self._cancel.set()
            self._status.showMessage("Cancelling…")

    def stop(self, wait_s: float) -> bool:
        """For quitting: cancel the job and wait up to ``wait_s`` for its work to return (a naive stage checks
        between rows, so this is quick). Numba's start-up warm-up is not waited for. True if no job is left."""
        self._cancel.set()
        return self._job_idle.wait(wait_s)

    def warm_numba(self) -> None:
        """Warm Numba's kernels up in the background; the backend list shows the state, then the figure."""
        seconds = compile_estimate_s(len(WARM_DTYPES))
        self._warming_message = _capitalized(first_use_message(len(WARM_DTYPES)) or CACHE_LOAD_MESSAGE)
        self.backend.setItemText(self.backend.findData("numba"), f"numba (compiling, about {seconds:.0f} s…)"
                                 if seconds is not None else "numba (loading from the on-disk cache…)")
        self._numba_ready.clear()

        def work() -> None:
            try:
                self._warmed.emit(warm_in_subprocess(get_backend("numba"), WARM_DTYPES))
            finally:
                self._numba_ready.set()  # before the result reaches the GUI thread: a waiting job may go on

        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.errored.connect(self._numba_failed)
        worker.start()
        self._warm_worker = worker

    def _prepare_numba(self, scan: Scan, frame: int) -> None:
        """On a job's worker thread: wait for the start-up warm-up, then warm up for this frame's input type, saying
        what happens when it takes time (a compile or a cache load); Cancel stops the wait."""
        backend, dtype = get_backend("numba"), scan.grey_frame(frame).dtype
        if self._numba_ready.is_set() and backend.is_warm(dtype):
            return
        self._say.emit(self._warming_message if not self._numba_ready.is_set()
                       else _capitalized(first_use_message() or CACHE_LOAD_MESSAGE))
        while not self._numba_ready.wait(0.1):
            stop_if(self._cancel.is_set)
        self._warmed.emit(warm(backend, [dtype]))

    def _add_warm_up(self, figure: CompileTime) -> None:
        self.numba_compile = combined(self.numba_compile, figure)
        self.backend.setItemText(self.backend.findData("numba"),
                                 f"numba ({describe(self.numba_compile.ms, self.numba_compile.source)})")

    def _numba_failed(self, exc: Exception) -> None:
        if isinstance(exc, CompileEnded):  # the app is quitting: not a failure to report
            return
        self.backend.setItemText(self.backend.findData("numba"), "numba (unavailable)")
        self.problems.emit("Numba cannot compile its kernels", [str(exc)])

    # ----- results ----------------------------------------------------------------------------------------------
    def _ran(self, inspection) -> None:
        self.ran.emit(inspection.prediction)
        self.inspected.emit(inspection, ())

    def _compared(self, comparison) -> None:
        self.compared.emit(comparison)
        notes = [r.note for r in comparison.results.values() if r.note]
        if notes:
            self._status.showMessage("; ".join(notes), 15000)

    # ----- one job at a time --------------------------------------------------------------------------------------
    def _start(self, what: str, work: Callable, done: Callable, threads: int | None = None) -> None:
        """Run ``work`` on a worker thread, on ``threads`` threads (None: the defaults); ``done(result)`` back on the
        GUI thread."""
        self._cancel.clear()

        def on_threads():
            try:
                with compute_threads(threads):  # on the worker thread: Numba's setting is per thread
                    return work()
            finally:
                self._job_idle.set()

        worker = create_worker(on_threads, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(lambda exc: self._failed(what, exc))
        worker.finished.connect(self._finished)
        self._job = worker
        self._job_idle.clear()
        self._status.showMessage(f"{what}…")
        self.progress.setRange(0, 0)  # busy until the job says how far it is
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
        if self._race_poll.isActive():
            self._race_poll.stop()
            self._pass_race_events()
        self.idle.emit()
        if self._status.currentMessage().endswith("…"):
            self._status.clearMessage()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(self._input_ready and not self.busy)
        self.compare_button.setEnabled(self._input_ready and not self.busy)
        self.race_button.setEnabled(self._input_ready and not self.busy)
        self.cancel_button.setEnabled(self.busy)


def threads_box() -> QSpinBox:
    """A spin box of thread counts, 1 to what this process may use and Numba can run, its lowest value (0) shown as
    "default"; with a tooltip saying what it sets."""
    most = max(1, min(usable_cpus(), thread_limit()))
    box = QSpinBox(minimum=0, maximum=most, value=0, prefix="threads ", specialValueText="threads: default")
    box.setToolTip(f"Threads for the next runs and comparisons: Numba's parallel kernels and ONNX Runtime's infer "
                   f"each use this many (1 to {most}, the CPUs this process may use; a Numba kernel over a small "
                   f"image, or next to busy processes, uses fewer). \"default\": Numba on every usable CPU "
                   f"({thread_limit()}), ONNX Runtime on {DEFAULT_ONNX_THREADS}. Results name the threads they ran "
                   "on. The naive and vectorized backends do not use Numba's threads.")
    return box


def _capitalized(message: str) -> str:
    return message[:1].upper() + message[1:]
