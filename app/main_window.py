"""The main window: scan list, viewer, prediction / timing / metadata tabs, and background jobs.

Widgets and wiring only: loading, preprocessing, inference, comparison and display math live in ``inference``.
Long work (opening files, runs, comparisons, Numba's first compile) runs on worker threads (superqt), so the
window stays responsive; Cancel sets a flag that the pipeline checks between stages and between rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from radbench.app import scan_files
from radbench.sample_images import sample_files
from radbench.app.batch_dialog import BatchDialog
from radbench.app.metadata_panel import MetadataPanel
from radbench.app.prediction_panel import PredictionPanel
from radbench.app.timing_chart import TimingChart
from radbench.app.viewer import ScanViewer
from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.compare import Comparison, compare_backends
from radbench.inference.display import presets_for
from radbench.inference.errors import Cancelled, NotAScanError, RadBenchError
from radbench.inference.loading import load_scan_isolated
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.profiling import profile_run
from radbench.inference.scan import Scan

#: Input dtypes whose Numba kernels are compiled in the background at start-up.
WARM_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)
MAX_LISTED_PROBLEMS = 15


class _Relay(QObject):
    """Carries progress from a worker thread to the GUI thread (queued signal)."""

    progress = Signal(int, int, str)


class MainWindow(QMainWindow):
    """RadBench's desktop window. ``settings`` defaults to the user's QSettings ("RadBench")."""

    def __init__(self, settings: QSettings | None = None, model_path: str | Path | None = None,
                 warm_numba: bool = True):
        super().__init__()
        self.settings = settings or QSettings("RadBench", "RadBench")
        self.setWindowTitle(f"RadBench — {NOT_FOR_CLINICAL_USE}")
        self.setAcceptDrops(True)
        self.scans: list[Scan] = []
        self.predictions: dict[tuple[Path, int], Prediction] = {}
        self.last_problems = ""
        self.numba_compile_ms: float | None = None
        self._cancel = threading.Event()
        self._job = None
        self._open_workers: set = set()
        self._relay = _Relay()
        self._relay.progress.connect(self._show_progress)
        self.model: Model | None = None
        self._build()
        self._load_model(model_path)
        self._restore_settings()
        if warm_numba:
            self._warm_numba()

    # ----- layout -------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.viewer = ScanViewer()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0)
        self.frame_label = QLabel()
        self.presets = QComboBox(minimumContentsLength=14)
        self.invert = QCheckBox("Invert")
        self.overlay = QCheckBox("Heatmap", enabled=False)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50, maximumWidth=120)
        reset = QPushButton("Reset view")
        controls = QHBoxLayout()
        for widget in (QLabel("Window:"), self.presets, self.invert, reset, self.overlay, QLabel("Opacity"),
                       self.opacity):
            controls.addWidget(widget)
        controls.addStretch(1)
        frames = QHBoxLayout()
        frames.addWidget(QLabel("Frame"))
        frames.addWidget(self.frame_slider, 1)
        frames.addWidget(self.frame_label)
        self.frame_row = QWidget()
        self.frame_row.setLayout(frames)
        self.frame_row.hide()
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(controls)
        column.addWidget(self.viewer, 1)
        column.addWidget(self.frame_row)
        self.setCentralWidget(centre)

        self.scan_list = QListWidget(maximumWidth=260)
        self._dock("Scans", self.scan_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.prediction_panel = PredictionPanel()
        self.timing_chart = TimingChart()
        self.metadata_panel = MetadataPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.prediction_panel, "Prediction")
        self.tabs.addTab(self.timing_chart, "Timing")
        self.tabs.addTab(self.metadata_panel, "Metadata")
        self._dock("Results", self.tabs, Qt.DockWidgetArea.RightDockWidgetArea)

        self.backend = QComboBox()
        for name in BACKEND_NAMES:
            self.backend.addItem(name, name)
        self.repeats = QSpinBox(minimum=1, maximum=50, value=3, prefix="repeats ")
        self.run_button = QPushButton("Run")
        self.compare_button = QPushButton("Compare all")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.badge = QLabel()
        toolbar = QToolBar("Run", objectName="run_toolbar")
        for widget in (QLabel(" Backend "), self.backend, self.run_button, self.repeats, self.compare_button,
                       self.cancel_button, self.badge):
            toolbar.addWidget(widget)
        self.addToolBar(toolbar)

        self.cursor_label = QLabel()
        self.window_label = QLabel()
        self.progress = QProgressBar(maximumWidth=220, visible=False)
        status = self.statusBar()
        status.addWidget(self.cursor_label, 1)
        status.addPermanentWidget(self.window_label)
        status.addPermanentWidget(self.progress)
        notice = QLabel(NOT_FOR_CLINICAL_USE)
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        status.addPermanentWidget(notice)
        self._build_menus(reset)
        self._connect(reset)
        self.resize(1400, 900)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self, objectName=f"dock_{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(area, dock)

    def _build_menus(self, reset: QPushButton) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open…", self.choose_files, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &folder…", self.choose_folder)
        self.samples_menu = file_menu.addMenu("Open &sample")
        for path in sample_files():
            self._action(self.samples_menu, path.name, lambda p=path: self.open_files([p]))
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._action(file_menu, "&Batch folder…", self.open_batch, QKeySequence("Ctrl+B"))
        file_menu.addSeparator()
        self._action(file_menu, "&Export view as PNG…", self.choose_export, QKeySequence("Ctrl+E"))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu("&View")
        self._action(view, "&Fit to window", lambda: self.viewer.fit(), QKeySequence("F"))
        self._action(view, "&Reset view", reset.click, QKeySequence("R"))
        self._action(view, "&Invert", self.invert.toggle, QKeySequence("I"))
        run = self.menuBar().addMenu("&Run")
        self._action(run, "&Run", self.run_current, QKeySequence("Ctrl+R"))
        self._action(run, "&Compare all backends", self.compare_current, QKeySequence("Ctrl+Shift+R"))
        self._action(run, "C&ancel", self.cancel, QKeySequence("Esc"))
        self._action(run, "&Profile current run…", self.choose_profile)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About RadBench", self._about)

    def _action(self, menu, text: str, slot: Callable, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda checked=False: slot())
        if shortcut is not None:
            action.setShortcut(shortcut)
        return action

    def _connect(self, reset: QPushButton) -> None:
        self.scan_list.currentRowChanged.connect(self._show_scan)
        self.frame_slider.valueChanged.connect(self._show_frame)
        self.presets.activated.connect(lambda i: self.viewer.apply_preset(self.presets.itemText(i)))
        self.invert.toggled.connect(self.viewer.set_inverted)
        reset.clicked.connect(self._reset_view)
        self.overlay.toggled.connect(self.viewer.set_overlay_visible)
        self.opacity.valueChanged.connect(lambda v: self.viewer.set_overlay_opacity(v / 100))
        self.viewer.cursorValue.connect(self.cursor_label.setText)
        self.viewer.windowChanged.connect(lambda c, w: self.window_label.setText(f"C {c:.0f}  W {w:.0f}"))
        self.run_button.clicked.connect(self.run_current)
        self.compare_button.clicked.connect(self.compare_current)
        self.cancel_button.clicked.connect(self.cancel)
        self.backend.currentIndexChanged.connect(lambda: self.settings.setValue("backend", self.backend_name))
        self.repeats.valueChanged.connect(lambda v: self.settings.setValue("repeats", v))

    # ----- settings and model -------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        backend = self.settings.value("backend", "vectorized")
        self.backend.setCurrentIndex(max(0, self.backend.findData(backend)))
        self.repeats.setValue(int(self.settings.value("repeats", 3)))

    def closeEvent(self, event) -> None:
        self.cancel()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)

    def _load_model(self, path: str | Path | None) -> None:
        try:
            self.model = Model(path)
        except RadBenchError as exc:
            self.model = None
            self.prediction_panel.clear("No model: runs are disabled.")
            self.report_problems("The model could not be loaded", [str(exc)])
        else:
            self.prediction_panel.show_model(self.model)
        self._update_buttons()

    @property
    def backend_name(self) -> str:
        return self.backend.currentData()

    def _warm_numba(self) -> None:
        """Compile Numba's kernels in the background at start-up; the combo box shows the state and the time."""
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
            self.report_problems("Numba cannot compile its kernels", [str(exc)])

        worker = create_worker(warm, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.start()
        self._warm_worker = worker

    # ----- opening --------------------------------------------------------------------------------------------
    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open scans", self._last_folder(), scan_files.OPEN_FILTER)
        if files:
            self.open_files(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of scans", self._last_folder())
        if folder:
            self.open_files([folder])

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in scan_files.recent_files(self.settings):
            self._action(self.recent_menu, path, lambda p=path: self.open_files([p]))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def open_files(self, paths: Sequence[str | Path]) -> None:
        """Load files (folders expanded) in the background; failures are reported together, once."""
        files = scan_files.expand(paths)
        if not files:
            return
        self.settings.setValue("last_folder", str(Path(paths[0]).parent if Path(paths[0]).is_file() else paths[0]))

        def load_all() -> tuple[list[Scan], list[str], int]:
            scans, problems, skipped = [], [], 0
            for path in files:
                try:
                    scans.append(load_scan_isolated(path))
                except NotAScanError:
                    skipped += 1
                except RadBenchError as exc:
                    problems.append(str(exc))
                except Exception as exc:  # noqa: BLE001 - one odd file must not take the window down
                    problems.append(f"{path}: unexpected {type(exc).__name__}: {exc}")
            return scans, problems, skipped

        # apart from runs: opening never waits for one
        worker = create_worker(load_all, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._opened)
        worker.errored.connect(lambda exc: self.report_problems("Opening failed", [f"unexpected: {exc}"]))
        worker.finished.connect(lambda: self._open_workers.discard(worker))
        self._open_workers.add(worker)
        self.statusBar().showMessage(f"Opening {len(files)} file(s)…")
        worker.start()

    def _opened(self, result: tuple[list[Scan], list[str], int]) -> None:
        scans, problems, skipped = result
        first_new = len(self.scans)
        for scan in scans:
            self.scans.append(scan)
            self.scan_list.addItem(scan.path.name)
            self.scan_list.item(self.scan_list.count() - 1).setToolTip(str(scan.path))
        if scans:
            scan_files.remember(self.settings, [s.path for s in scans])
            self.scan_list.setCurrentRow(first_new)
        if skipped:
            problems.append(f"{skipped} file(s) skipped: not DICOM or image files")
        if problems:
            self.report_problems(f"{len(problems)} problem(s) while opening {len(scans) + len(problems)} file(s)",
                                 problems)
        self.statusBar().showMessage(f"Opened {len(scans)} scan(s)", 5000)

    def report_problems(self, title: str, problems: list[str]) -> None:
        """One non-blocking message for a whole group of problems (never a storm of dialogs)."""
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        text = "\n".join(shown) + (f"\n… and {more} more" if more else "")
        self.last_problems = f"{title}\n{text}"
        box = getattr(self, "_problem_box", None)
        if box is None:
            box = self._problem_box = QMessageBox(QMessageBox.Icon.Warning, "RadBench", "", parent=self)
        box.setText(title)
        box.setInformativeText(text)
        box.open()

    # ----- showing --------------------------------------------------------------------------------------------
    @property
    def current_scan(self) -> Scan | None:
        row = self.scan_list.currentRow()
        return self.scans[row] if 0 <= row < len(self.scans) else None

    def _show_scan(self, row: int) -> None:
        scan = self.current_scan
        if scan is None:
            return
        self.viewer.set_scan(scan)
        self.presets.clear()
        self.presets.addItems([p.name for p in presets_for(scan)])
        self.frame_slider.blockSignals(True)
        self.frame_slider.setMaximum(scan.frame_count - 1)
        self.frame_slider.setValue(scan.default_frame)
        self.frame_slider.blockSignals(False)
        self.frame_row.setVisible(scan.frame_count > 1)
        self.viewer.set_frame(scan.default_frame)
        self.frame_label.setText(f"{scan.default_frame + 1} / {scan.frame_count}")
        self.metadata_panel.show_scan(scan)
        self._show_prediction_for_view()
        self._update_buttons()

    def _show_frame(self, frame: int) -> None:
        scan = self.current_scan
        if scan is None:
            return
        self.viewer.set_frame(frame)
        self.frame_label.setText(f"{frame + 1} / {scan.frame_count}")
        self._show_prediction_for_view()

    def _reset_view(self) -> None:
        self.invert.setChecked(False)
        self.viewer.reset()

    def _show_prediction_for_view(self) -> None:
        """The stored prediction for the scan and frame on screen, or an empty panel."""
        scan = self.current_scan
        prediction = self.predictions.get((scan.path, self.viewer.frame)) if scan else None
        if prediction is None:
            self.prediction_panel.clear()
            self.viewer.set_heatmap(None)
            self.overlay.setEnabled(False)
            return
        self.prediction_panel.show_prediction(prediction, self.model)
        self.viewer.set_heatmap(prediction.heatmap)
        self.viewer.set_overlay_opacity(self.opacity.value() / 100)
        self.viewer.set_overlay_visible(self.overlay.isChecked())
        self.overlay.setEnabled(prediction.heatmap is not None)

    # ----- runs -----------------------------------------------------------------------------------------------
    def run_current(self) -> None:
        scan, model = self.current_scan, self.model
        if scan is None or model is None or self._job is not None:
            return
        pipeline, frame = Pipeline(model, get_backend(self.backend_name)), self.viewer.frame
        self._start(f"Running {self.backend_name}", lambda: pipeline.run(scan.path, frame=frame,
                                                                            cancel=self._cancel.is_set), self._ran)

    def _ran(self, prediction: Prediction) -> None:
        self.predictions[(prediction.path, prediction.frame)] = prediction
        self._show_prediction_for_view()
        self.timing_chart.show_run(prediction.timings.as_ms(), prediction.compile_ms, prediction.backend)
        self.badge.clear()
        self.tabs.setCurrentWidget(self.prediction_panel)

    def compare_current(self) -> None:
        scan, model = self.current_scan, self.model
        if scan is None or model is None or self._job is not None:
            return
        frame, repeats = self.viewer.frame, self.repeats.value()
        self._start("Comparing backends", lambda: compare_backends(
            model, scan, frame=frame, repeats=repeats, cancel=self._cancel.is_set,
            progress=self._relay.progress.emit), self._compared)

    def _compared(self, comparison: Comparison) -> None:
        self.comparison = comparison
        compile_ms = {name: r.compile_ms for name, r in comparison.results.items()}
        if self.numba_compile_ms and "numba" in compile_ms and not compile_ms["numba"]:
            compile_ms["numba"] = self.numba_compile_ms  # compiled at start-up: show that figure
        self.timing_chart.show_comparison({n: r.median_ms for n, r in comparison.results.items()}, compile_ms)
        ok = comparison.equivalent
        self.badge.setText(f"  {'✔ equivalent' if ok else '✘ DIFFER'}: max |Δ| {comparison.max_abs_diff:.1e}, "
                           f"labels {'agree' if comparison.labels_agree else 'DISAGREE'}  ")
        self.badge.setStyleSheet(f"color: white; background: {'#2e7d32' if ok else '#c62828'}; border-radius: 4px;")
        last = comparison.results[self.backend_name].last if self.backend_name in comparison.results else None
        if last is not None:
            self.predictions[(last.path, last.frame)] = last
            self._show_prediction_for_view()
        self.tabs.setCurrentWidget(self.timing_chart)
        notes = [r.note for r in comparison.results.values() if r.note]
        if notes:
            self.statusBar().showMessage("; ".join(notes), 15000)

    def cancel(self) -> None:
        if self._job is not None:
            self._cancel.set()
            self.statusBar().showMessage("Cancelling…")

    # ----- jobs -----------------------------------------------------------------------------------------------
    def _start(self, what: str, work: Callable, done: Callable) -> None:
        """Run ``work`` on a worker thread; ``done(result)`` back on the GUI thread. One job at a time."""
        self._cancel.clear()
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(done)
        worker.errored.connect(lambda exc: self._failed(what, exc))
        worker.finished.connect(self._finished)
        self._job = worker
        self.statusBar().showMessage(f"{what}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._update_buttons()
        worker.start()

    def _show_progress(self, done: int, total: int, backend: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        if backend:
            self.statusBar().showMessage(f"Comparing backends: run {done + 1} of {total} ({backend})…")

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, Cancelled):
            self.statusBar().showMessage(f"{what}: cancelled", 5000)
        else:
            self.report_problems(f"{what} failed", [str(exc) if isinstance(exc, RadBenchError)
                                                    else f"unexpected {type(exc).__name__}: {exc}"])

    def _finished(self) -> None:
        self._job = None
        self.progress.hide()
        if self.statusBar().currentMessage().endswith("…"):
            self.statusBar().clearMessage()
        self._update_buttons()

    @property
    def busy(self) -> bool:
        """True while a run or comparison is going (opening files does not count)."""
        return self._job is not None

    @property
    def opening(self) -> bool:
        return bool(self._open_workers)

    def _update_buttons(self) -> None:
        can_run = self.current_scan is not None and self.model is not None and not self.busy
        self.run_button.setEnabled(can_run)
        self.compare_button.setEnabled(can_run)
        self.cancel_button.setEnabled(self.busy)

    # ----- batch and profile -----------------------------------------------------------------------------------
    def open_batch(self) -> BatchDialog | None:
        """The non-modal Batch window (the same runner as ``radbench batch``)."""
        if self.model is None:
            return None
        dialog = getattr(self, "batch_dialog", None)
        if dialog is None:
            dialog = self.batch_dialog = BatchDialog(self.model.card.labels, str(self.model.path), self,
                                                     folder=self._last_folder(), backend=self.backend_name)
            dialog.openRequested.connect(lambda path: self.open_files([path]))
        dialog.show()
        dialog.raise_()
        return dialog

    def choose_profile(self) -> None:
        path = self._ask_save_path("Save the profile", f"_{self.backend_name}.prof", "cProfile output (*.prof)")
        if path:
            self.profile_current(path)

    def profile_current(self, out: str | Path) -> None:
        """Profile a run of the current scan off the GUI thread; the top functions appear in a window."""
        scan, model, backend = self.current_scan, self.model, self.backend_name
        if scan is None or model is None or self._job is not None:
            return
        self._start(f"Profiling {backend}", lambda: profile_run(scan.path, model, backend, out),
                    lambda result: self._show_profile(out, result[1]))

    def _show_profile(self, out: str | Path, text: str) -> None:
        self.last_profile = text
        box = QMessageBox(QMessageBox.Icon.Information, "Profile", f"Profile written to {out} (open it with "
                          "snakeviz). The top functions by cumulative time are in the details.", parent=self)
        box.setDetailedText(text)
        box.open()

    # ----- export, drops, about -------------------------------------------------------------------------------
    def choose_export(self) -> None:
        path = self._ask_save_path("Export view as PNG", "_view.png", "PNG image (*.png)")
        if path:
            self.export_view(path)

    def _ask_save_path(self, title: str, suffix: str, file_filter: str) -> str:
        """A save dialog for the current scan, proposing ``<scan stem><suffix>`` in the last folder; "" if none."""
        scan = self.current_scan
        if scan is None:
            return ""
        default = str(Path(self._last_folder()) / f"{scan.path.stem}{suffix}")
        return QFileDialog.getSaveFileName(self, title, default, file_filter)[0]

    def export_view(self, path: str | Path) -> None:
        """Save the view; the notice is burnt in whenever a prediction is shown."""
        shown = self.current_scan is not None and (self.current_scan.path, self.viewer.frame) in self.predictions
        try:
            self.viewer.export_png(path, NOT_FOR_CLINICAL_USE if shown else None)
        except OSError as exc:
            self.report_problems("Export failed", [f"{path}: {exc}"])

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_files(paths)
            event.acceptProposedAction()

    def _about(self) -> None:
        QMessageBox.about(self, "About RadBench",
                          "RadBench: open scans, preprocess them with naive, NumPy and Numba backends, classify "
                          f"with ONNX Runtime, and time every stage.\n\n{NOT_FOR_CLINICAL_USE}")
