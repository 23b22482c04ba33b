"""The main window: scan list, scan pane and prediction / timing / metadata tabs side by side in a splitter, the Run
toolbar, the status bar.

Widgets and wiring only: loading, preprocessing, inference, comparison and display math live in ``inference``.
The parts live in their own modules: :mod:`scan_pane` (viewer and its controls), :mod:`run_toolbar` (runs,
comparisons and profiles on a worker thread, one at a time), :mod:`scan_opener` (opening files on worker threads),
:mod:`window_menus` (menus and the dialogs behind them).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QListWidget, QMainWindow, QSplitter, QTabWidget, QWidget

from radbench.app import scan_files
from radbench.app.batch_dialog import BatchDialog
from radbench.app.inspector_panel import InspectorPanel
from radbench.app.metadata_panel import MetadataPanel
from radbench.app.prediction_panel import PredictionPanel, subject
from radbench.app.presentation import Presentation
from radbench.app.problem_box import ProblemBox
from radbench.app.race_view import RaceView
from radbench.app.run_toolbar import RunToolbar
from radbench.app.scan_opener import ScanOpener
from radbench.app.scan_pane import ScanPane
from radbench.app.timing_chart import TimingChart
from radbench.app.window_geometry import place_window
from radbench.app.window_menus import build_menus, show_profile
from radbench.inference.benchmarking.compare import Comparison
from radbench.inference.benchmarking.numba_compile import CompileTime, end_compile_processes
from radbench.inference.benchmarking.race import RaceResult
from radbench.inference.display import view_caption
from radbench.inference.errors import RadBenchError
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Prediction
from radbench.inference.scan import Scan
from radbench.inference.series import SeriesStack

#: What every result belongs to: a scan's path and a frame index (for a slice of a series: the slice's file, frame 0).
Key = tuple[Path, int]
#: The size the window asks for on a screen with room for it (it never opens larger than the screen's free area).
PREFERRED_SIZE = (1400, 900)
#: The splitter's share of the window for the scan list and the results (the image takes the rest), the widths
#: each starts within, and the smallest the list and the results keep (the image keeps what its controls need).
LIST_SHARE, RESULTS_SHARE = 0.16, 0.40
LIST_WIDTHS, RESULTS_WIDTHS = (120, 240), (320, 640)


class MainWindow(QMainWindow):
    """RadBench's desktop window. ``settings`` defaults to the user's QSettings ("RadBench").

    Results are kept per (scan, frame): the views always show those of the scan and frame on screen, or an empty
    state saying what to press. A result moves the user to its tab only the first time one of its kind arrives (the
    first run to Prediction, the first comparison to Timing); later ones leave the tab where the user put it.
    """

    def __init__(self, settings: QSettings | None = None, model_path: str | Path | None = None,
                 warm_numba: bool = True):
        super().__init__()
        self.settings = settings or QSettings("RadBench", "RadBench")
        self.setWindowTitle(f"RadBench — {NOT_FOR_CLINICAL_USE}")
        self.setAcceptDrops(True)
        self.scans: list[Scan | SeriesStack] = []  # the scan list's entries: a series is one, browsed by slice
        self.predictions: dict[Key, Prediction] = {}
        self.timings: dict[Key, Prediction | Comparison] = {}  # the last run or comparison timed on each frame
        self.races: dict[Key, RaceResult] = {}  # the last race of each frame
        self._revealed: set[str] = set()  # the kinds of result that have moved the user to their tab once
        self.model: Model | None = None
        self.problem_box = ProblemBox(self)
        self._build()
        self._connect()
        self._load_model(model_path)
        place_window(self, self.settings.value("geometry"), PREFERRED_SIZE)
        splitter = self.settings.value("splitter")
        if splitter is not None:
            self._splitter_placed = self.splitter.restoreState(splitter)
        if warm_numba:
            self.run_toolbar.warm_numba()

    # ----- layout -------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.scan_pane = ScanPane()
        self.viewer, self.overlay = self.scan_pane.viewer, self.scan_pane.overlay
        self.scan_list = QListWidget(textElideMode=Qt.TextElideMode.ElideMiddle,
                                     horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scan_list.setToolTip("The opened scans (full path in each one's tooltip): click one to show it. Open "
                                  "more with File › Open, or drop files and folders on the window.")
        self.prediction_panel = PredictionPanel()
        self.timing_chart = TimingChart()
        self.metadata_panel = MetadataPanel()
        self.inspector = InspectorPanel()
        self.race_view = RaceView(lambda: self.numba_compile)
        self.tabs = QTabWidget()
        for panel, name, tip in ((self.prediction_panel, "Prediction", "The verdict on the frame shown, or why "
                                  "there is none, with the probabilities and the decision rule"),
                                 (self.timing_chart, "Timing", "Milliseconds per stage of the last Run or Compare "
                                  "all on the frame shown"),
                                 (self.metadata_panel, "Metadata", "The scan's key fields and every DICOM element "
                                  "(patient-identifying values hidden)"),
                                 (self.race_view, "Race", "A race of the backends on the frame shown, stage by stage "
                                  "as measured, for a class to watch (Run › Race, Ctrl+D)"),
                                 (self.inspector, "Inspector", "Every stage's output of the last Run on the frame "
                                  "shown, its numbers, and what-if runs without a step")):
            self.tabs.addTab(panel, name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, tip)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, objectName="main_splitter", childrenCollapsible=False)
        for widget in (self.scan_list, self.scan_pane, self.tabs):
            self.splitter.addWidget(widget)
        self.scan_list.setMinimumWidth(LIST_WIDTHS[0])
        self.tabs.setMinimumWidth(RESULTS_WIDTHS[0])
        self.splitter.setStretchFactor(1, 1)  # the image takes what the window gains
        self._splitter_placed = False  # shared out on the first show, unless a saved state was restored
        self.setCentralWidget(self.splitter)

        status = self.statusBar()
        self.opener = ScanOpener(self.settings, status, self)
        self.run_toolbar = bar = RunToolbar(self.settings, status, self)
        self.addToolBar(bar)
        self.presentation = Presentation(self)
        self.backend, self.repeats, self.threads = bar.backend, bar.repeats, bar.threads
        self.badge = self.timing_chart.badge
        self.run_button, self.compare_button, self.cancel_button = bar.run_button, bar.compare_button, bar.cancel_button

        self.cursor_label = QLabel(toolTip="The value under the cursor: raw, and rescaled (HU for CT) when the file "
                                           "rescales it")
        self.window_label = QLabel(toolTip="The display window: center (level) and width")
        status.addWidget(self.cursor_label, 1)
        status.addPermanentWidget(self.window_label)
        status.addPermanentWidget(bar.progress)
        notice = QLabel(NOT_FOR_CLINICAL_USE, toolTip="RadBench is a teaching tool: its predictions are never a "
                                                       "diagnosis")
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        status.addPermanentWidget(notice)
        build_menus(self)

    def _connect(self) -> None:
        self.scan_list.currentRowChanged.connect(self._show_scan)
        self.scan_pane.frameChanged.connect(self._frame_changed)
        self.scan_pane.sliceFailed.connect(self._slice_failed)
        self.viewer.cursorValue.connect(self.cursor_label.setText)
        self.viewer.windowChanged.connect(lambda c, w: self.window_label.setText(f"C {c:.0f}  W {w:.0f}"))
        self.run_button.clicked.connect(self.run_current)
        self.compare_button.clicked.connect(self.compare_current)
        self.run_toolbar.race_button.clicked.connect(self.race_current)
        self.run_toolbar.race_events.connect(self.race_view.apply)
        self.run_toolbar.raced.connect(self._raced)
        self.run_toolbar.idle.connect(self.race_view.stopped)
        self.race_view.problems.connect(self.report_problems)
        self.run_toolbar.ran.connect(self._ran)
        self.run_toolbar.compared.connect(self._compared)
        self.run_toolbar.inspected.connect(self._inspected)
        self.inspector.whatIfRequested.connect(self._what_if)
        self.run_toolbar.profiled.connect(lambda out, text: show_profile(self, out, text))
        self.run_toolbar.problems.connect(self.report_problems)
        self.opener.opened.connect(self._opened)
        self.opener.problems.connect(self.report_problems)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitter_placed:
            self._splitter_placed = True
            self.share_out_splitter()

    def share_out_splitter(self) -> None:
        """Give the scan list and the results their share of the window's width (within their bounds), the image
        the rest."""
        width = self.splitter.width() - 2 * self.splitter.handleWidth()
        names = round(min(max(width * LIST_SHARE, LIST_WIDTHS[0]), LIST_WIDTHS[1]))
        results = round(min(max(width * RESULTS_SHARE, RESULTS_WIDTHS[0]), RESULTS_WIDTHS[1]))
        self.splitter.setSizes([names, max(0, width - names - results), results])

    def closeEvent(self, event) -> None:
        self.cancel()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)

    def shutdown(self, wait_s: float = 0.5) -> bool:
        """Stop background work for quitting (connected to ``aboutToQuit``): stop the batch, end every child process
        (the Batch window's workers, the loader processes of scans still opening, Numba's compile process), cancel
        the run or comparison and wait up to ``wait_s`` for it to stop. Numba's start-up warm-up in this process (a
        load from the on-disk cache, under a second) is not waited for. True if nothing is left running but that."""
        dialog = getattr(self, "batch_dialog", None)
        if dialog is not None:
            dialog.stop_now()
        for child in multiprocessing.active_children():
            child.kill()
        end_compile_processes()
        return self.run_toolbar.stop(wait_s)

    def _load_model(self, path: str | Path | None) -> None:
        try:
            self.model = Model(path)
        except RadBenchError as exc:
            self.model = None
            self.prediction_panel.clear("No model: runs are disabled.")
            self.timing_chart.clear("No model: runs are disabled.")
            self.report_problems("The model could not be loaded", [str(exc)])
        else:
            self.prediction_panel.show_model(self.model)
        self._update_buttons()

    # ----- opening and problems -------------------------------------------------------------------------------
    def open_files(self, paths: Sequence[str | Path]) -> None:
        """Load files (folders expanded) in the background; failures are reported together, once."""
        self.opener.open(paths)

    def _opened(self, scans: list[Scan]) -> None:
        first_new = len(self.scans)
        for entry in scans:
            self.scans.append(entry)
            if isinstance(entry, SeriesStack):
                self.scan_list.addItem(entry.series.title)
                tip = f"{entry.series.title}\n{entry.series.files[0].parent}"
            else:
                self.scan_list.addItem(entry.path.name)
                tip = str(entry.path)
            self.scan_list.item(self.scan_list.count() - 1).setToolTip(tip)
        self.scan_list.setCurrentRow(first_new)
        self.viewer.setFocus()  # the viewer's keys (frames, zoom) work at once

    @property
    def opening(self) -> bool:
        return self.opener.busy

    def report_problems(self, title: str, problems: list[str]) -> None:
        """One non-blocking message for a whole group of problems (never a storm of dialogs)."""
        self.problem_box.report(title, problems)

    @property
    def last_problems(self) -> str:
        return self.problem_box.last

    # ----- showing --------------------------------------------------------------------------------------------
    @property
    def current_scan(self) -> Scan | None:
        """The scan on screen: the selected entry, or the slice shown of a series (None while it cannot be read)."""
        row = self.scan_list.currentRow()
        entry = self.scans[row] if 0 <= row < len(self.scans) else None
        return self.viewer.scan if isinstance(entry, SeriesStack) else entry

    @property
    def current_key(self) -> Key | None:
        scan = self.current_scan
        return (scan.path, self.viewer.frame) if scan is not None else None

    def _show_scan(self, row: int) -> None:
        entry = self.scans[row] if 0 <= row < len(self.scans) else None
        if isinstance(entry, SeriesStack):
            self.scan_pane.show_series(entry)  # its middle slice, read now
            self._frame_changed(self.scan_pane.frame)
            return
        if entry is None:
            return
        self.scan_pane.show_scan(entry)
        self.metadata_panel.show_scan(entry)
        self._show_results_for_view()
        self._update_buttons()

    def _frame_changed(self, frame: int) -> None:
        """Another frame, or slice of a series: its results, and a slice's own metadata."""
        stack, scan = self.scan_pane.stack, self.current_scan
        if stack is not None and scan is not None:
            self.metadata_panel.show_scan(scan, stack.series, frame)
        self._show_results_for_view()
        self._update_buttons()

    def _slice_failed(self, problem: str) -> None:
        """A slice that cannot be read: the views say so (naming the file and the reason) and Run waits."""
        series, index = self.scan_pane.stack.series, self.scan_pane.frame
        where = series.describe_slice(index)
        self.prediction_panel.clear(f"This slice cannot be read: {problem}", heading=where)
        self.timing_chart.clear(f"{where}: cannot be read")
        self.metadata_panel.show_unreadable(series, index, problem)
        self.scan_pane.show_heatmap(None)
        self.statusBar().showMessage(problem, 15000)
        self._update_buttons()

    def _where(self, scan: Scan) -> str:
        """What the results on screen belong to: "chest.dcm, frame 1 of 1", or for a slice of a series
        "f61.dcm, slice 61 of 120, instance 61, at -12.5 mm"."""
        stack = self.scan_pane.stack
        if stack is None:
            return subject(scan.path.name, self.viewer.frame, scan.frame_count)
        return f"{scan.path.name}, {stack.series.describe_slice(self.scan_pane.frame)}"

    def _show_results_for_view(self) -> None:
        """The stored prediction and timings of the scan and frame on screen, or empty states naming them."""
        scan, key = self.current_scan, self.current_key
        if scan is None or self.model is None:
            return
        where = self._where(scan)
        prediction = self.predictions.get(key)
        if prediction is None:
            self.prediction_panel.clear("No prediction for this frame yet: press Run.", heading=where)
        else:
            self.prediction_panel.show_prediction(prediction, self.model, where)
        self.scan_pane.show_heatmap(prediction.heatmap if prediction is not None else None,
                                    prediction.label if prediction is not None and not prediction.withheld else "")
        timing = self.timings.get(key)
        if timing is None:
            self.timing_chart.clear(f"{where}: no timings yet. Press Run to time one backend, or Compare all to time "
                                    "every backend.")
        elif isinstance(timing, Comparison):
            self.timing_chart.show_comparison(timing, f"{where}: every backend", self.numba_compile)
        else:
            self.timing_chart.show_run(timing.timings.as_ms(), f"{where}: {timing.backend}", timing.backend,
                                       self.numba_compile if timing.backend == "numba" else None, timing.threads)
        self.inspector.show_for(key, where)
        self.race_view.show_for(key, where, self.races.get(key))

    def _update_buttons(self) -> None:
        self.run_toolbar.set_input_ready(self.current_scan is not None and self.model is not None)

    # ----- runs, comparisons, profiles (on the Run toolbar's worker), batch -----------------------------------
    @property
    def backend_name(self) -> str:
        return self.run_toolbar.backend_name

    @property
    def busy(self) -> bool:
        """True while a run, comparison or profile is going (opening files does not count)."""
        return self.run_toolbar.busy

    @property
    def numba_compile(self) -> CompileTime | None:
        """Every Numba warm-up of this session as one figure (time, and compiled or loaded from the on-disk cache)."""
        return self.run_toolbar.numba_compile

    def run_current(self) -> None:
        self.run_toolbar.run(self.current_scan, self.viewer.frame, self.model)

    def compare_current(self) -> None:
        self.run_toolbar.compare(self.current_scan, self.viewer.frame, self.model)

    def race_current(self) -> None:
        """Race the backends on the frame shown (the demo preset); the Race tab comes forward and fills as it goes."""
        scan = self.current_scan
        if self.run_toolbar.race(scan, self.viewer.frame, self.model):
            self.race_view.start(self.current_key, subject(scan.path.name, self.viewer.frame, scan.frame_count))
            self.tabs.setCurrentWidget(self.race_view)

    def profile_current(self, out: str | Path) -> None:
        """Profile a run of the current scan off the GUI thread; the top functions appear in a window."""
        self.run_toolbar.profile(self.current_scan, self.model, out)

    def cancel(self) -> None:
        self.run_toolbar.cancel()

    def _ran(self, prediction: Prediction) -> None:
        key = (prediction.path, prediction.frame)
        self.predictions[key] = self.timings[key] = prediction
        self._arrived(key, "run", self.prediction_panel)

    def _what_if(self, skip: tuple[str, ...], backend: str) -> None:
        """A what-if run of the frame shown, with the backend of its inspected Run; refused while a job runs."""
        if not self.run_toolbar.what_if(self.current_scan, self.viewer.frame, self.model, skip, backend):
            self.statusBar().showMessage("Wait for the job going on to finish, then tick again", 5000)
            self._show_results_for_view()  # the boxes show what was run again

    def _inspected(self, inspection, skip: tuple[str, ...]) -> None:
        key = self.inspector.add(inspection, skip)
        if key == self.current_key:
            self._show_results_for_view()

    def _compared(self, comparison: Comparison) -> None:
        key = (comparison.path, comparison.frame)
        self.timings[key] = comparison
        if self.backend_name in comparison.results:
            self.predictions[key] = comparison.results[self.backend_name].last
        self._arrived(key, "comparison", self.timing_chart)

    def _raced(self, result: RaceResult) -> None:
        self.races[(result.path, result.frame)] = result
        self.race_view.finish(result, subject(result.path.name, result.frame, result.frame_count))

    def _arrived(self, key: Key, kind: str, tab: QWidget) -> None:
        """Show a new result if it belongs to the view; the first of its kind also brings its tab forward."""
        if key != self.current_key:
            self.statusBar().showMessage(f"The {kind} of {key[0].name}, frame {key[1] + 1} is ready: select that "
                                         "scan to see it", 8000)
            return
        self._show_results_for_view()
        if kind not in self._revealed:
            self._revealed.add(kind)
            self.tabs.setCurrentWidget(tab)

    def open_batch(self) -> BatchDialog | None:
        """The non-modal Batch window (the same runner as ``radbench batch``)."""
        if self.model is None:
            return None
        dialog = getattr(self, "batch_dialog", None)
        if dialog is None:
            dialog = self.batch_dialog = BatchDialog(self.model.card.labels, str(self.model.path), self,
                                                     folder=scan_files.last_folder(self.settings),
                                                     backend=self.backend_name, threads=self.threads.value())
            dialog.openRequested.connect(lambda path: self.open_files([path]))
        dialog.show()
        dialog.raise_()
        return dialog

    # ----- export and drops -----------------------------------------------------------------------------------
    def export_view(self, path: str | Path) -> bool:
        """Save the view at full resolution; whenever a prediction is shown, a caption beneath the image gives the
        label and its probability (or "withheld" and why), what the heatmap shows and the notice. The status bar
        says where it went. False (and a message) if it cannot be written."""
        prediction = self.predictions.get(self.current_key)
        caption = None
        if prediction is not None:
            caption = "\n".join(view_caption(prediction, self.overlay.isEnabled() and self.overlay.isChecked()))
        try:
            self.viewer.export_png(path, caption)
        except (OSError, RuntimeError) as exc:
            self.report_problems("Export failed", [f"{path}: {exc}"])
            return False
        self.statusBar().showMessage(f"View saved to {path}", 10000)
        return True

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_files(paths)
            event.acceptProposedAction()
