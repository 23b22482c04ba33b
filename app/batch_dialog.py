"""The Batch window: a folder through the batch runner, with progress, ETA, Cancel, a live sortable table that can be
filtered by status, the selected row in full, CSV export and the time per stage summed over the batch (a collapsible
chart). The same ``inference.batch`` code as the CLI; its Threads box is ``radbench batch --threads``: each worker
process runs on that many threads.

The table shows what a reader needs: the file name (its full path in the tooltip), the status, the label, each class's
probability as a percentage, why a verdict is withheld, the warnings and the error; long texts are cut in the cell
and given in full in the tooltip and beneath the table. Failed rows are red; rows whose verdict is withheld (the scan
is outside the model's domain: no label) are amber. The CSV export writes every column of ``radbench batch``."""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from radbench.app.batch_command import per_dask_worker, worker_threads
from radbench.app.run_toolbar import threads_box
from radbench.app.timing_chart import TimingChart
from radbench.app.window_geometry import fitted_rect
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.batch import (
    ERROR,
    OK,
    SKIPPED,
    BatchConfig,
    columns,
    discover,
    run_batch,
    save_csv,
)
from radbench.inference.machine import usable_cpus
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.pipeline import PIPELINE_STAGES
from radbench.inference.wording import counted

FAILED, WITHHELD = QBrush(QColor("#ffd6d6")), QBrush(QColor("#fff1c1"))
#: A row's kind, for the status filter: a verdict, a withheld verdict, an error, a skipped file.
KINDS = (("All files", ""), ("Verdict given", "verdict"), ("Withheld", "withheld"), ("Errors", ERROR),
         ("Skipped", SKIPPED))
SORT_ROLE, KIND_ROLE = Qt.ItemDataRole.UserRole + 1, Qt.ItemDataRole.UserRole + 2
EMPTY_CHART = "Time per stage, summed over the batch: press Start."
#: The size the window asks for (cut to the screen's free area).
PREFERRED_SIZE = QSize(1100, 760)
#: The columns that share out the table's width (long texts, cut with "…", in full in tooltips and the details);
#: the file name starts at FILE_WIDTH, the others fit their longest possible text.
SHARING = ("Withheld (why)", "Warnings", "Error")
FILE_WIDTH = 180


def kind_of(row: dict) -> str:
    """The filter kind of a batch row (see :data:`KINDS`)."""
    if row.get("status") != OK:
        return row.get("status", ERROR)
    return "withheld" if row.get("withheld") else "verdict"


def percent(value) -> str:
    """A probability as a percentage with one decimal ("91.9%"); empty when there is none."""
    return "" if value in ("", None) else f"{float(value):.1%}"


class BatchDialog(QDialog):
    """Non-modal; ``openRequested(path)`` asks the main window to show a row's scan (double-click a row)."""

    openRequested = Signal(str)

    def __init__(self, labels: tuple[str, ...], model_path: str | None, parent=None, folder: str = "",
                 backend: str = "vectorized", threads: int = 0):
        super().__init__(parent)
        self.setWindowTitle(f"RadBench batch — {NOT_FOR_CLINICAL_USE}")
        self.labels, self.model_path = labels, model_path
        self.header = columns(labels)
        self.headers = ["File", "Status", "Label", *(f"P({label})" for label in labels), "Withheld (why)", "Warnings",
                        "Error"]
        self.rows: list[dict] = []
        self.total = 0
        self._worker = None
        self._scheduler: str | None = None  # of the run shown
        self._failure = ""  # why the run shown failed

        self.folder = QLineEdit(folder, placeholderText="Folder to process",
                                toolTip="The folder whose scans are classified (subfolders included)")
        browse = QPushButton("Browse…", toolTip="Choose the folder")
        self.scheduler = QLineEdit(placeholderText="none: local processes", clearButtonEnabled=True,
                                   toolTip="tcp://HOST:PORT of a Dask scheduler (radbench batch --scheduler): its "
                                           "workers classify the files, after a check that each runs the same "
                                           "RadBench and model. Empty: local worker processes")
        address_width = self.scheduler.fontMetrics().horizontalAdvance("tcp://192.168.100.200:8786")
        self.scheduler.setMinimumWidth(address_width + 40)  # and the clear button
        self.ship_files = QCheckBox("Ship files", enabled=False,
                                    toolTip="Send each file's bytes to the Dask workers with its task, for workers "
                                            "that cannot read this folder (radbench batch --ship-files)")
        self.backend = QComboBox(toolTip="Preprocessing backend of every worker")
        self.backend.addItems(BACKEND_NAMES)
        self.backend.setCurrentText(backend)
        self.workers = QSpinBox(minimum=1, maximum=usable_cpus(), value=usable_cpus(), prefix="workers ",
                                toolTip="Worker processes, each classifying one file at a time")
        self.threads = threads_box()
        self.threads.setValue(threads)
        self.threads.setToolTip(self.threads.toolTip().replace("Threads for the next runs and comparisons",
                                                               "Threads of each worker process"))
        self.fast_decode = QCheckBox("Fast decode", toolTip="JPEG 2000: decode at the coarsest resolution level that "
                                     "still covers the model input (faster; equalize then sees the reduced frame, so "
                                     "numbers change slightly). Other files decode as usual. The fast_decode column "
                                     "of the CSV says which rows used it.")
        self.start_button = QPushButton("Start", toolTip="Classify every scan in the folder")
        self.cancel_button = QPushButton("Cancel", enabled=False, toolTip="Stop after the files in progress; "
                                                                          "finished files keep their rows")
        self.export_button = QPushButton("Export CSV…", enabled=False,
                                         toolTip="Save every row with every column of radbench batch")
        self.filter = QComboBox(toolTip="Show only the rows of one kind")
        for text, kind in KINDS:
            self.filter.addItem(text, kind)
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Folder:"))
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        folder_row.addWidget(QLabel("Dask scheduler:"))
        folder_row.addWidget(self.scheduler)
        folder_row.addWidget(self.ship_files)
        run_row = QHBoxLayout()
        for widget in (self.backend, self.workers, self.threads, self.fast_decode, self.start_button,
                       self.cancel_button, self.export_button):
            run_row.addWidget(widget)
        run_row.addStretch(1)
        run_row.addWidget(QLabel("Show:"))
        run_row.addWidget(self.filter)
        self.progress = QProgressBar(toolTip="Files done")
        self.status = QLabel("Choose a folder and press Start.", wordWrap=True)

        self.model = QStandardItemModel(0, len(self.headers), self)
        self.model.setHorizontalHeaderLabels(self.headers)
        for column, tip in enumerate(self._header_tips()):
            self.model.horizontalHeaderItem(column).setToolTip(tip)
        # rows of one kind (column 0's KIND_ROLE) or all; sorted by SORT_ROLE, so numbers sort as numbers
        self.proxy = QSortFilterProxyModel(self, sortRole=SORT_ROLE, filterRole=KIND_ROLE, filterKeyColumn=0)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(sortingEnabled=True, wordWrap=False, alternatingRowColors=False,
                                selectionBehavior=QAbstractItemView.SelectionBehavior.SelectRows,
                                selectionMode=QAbstractItemView.SelectionMode.SingleSelection,
                                editTriggers=QAbstractItemView.EditTrigger.NoEditTriggers,
                                textElideMode=Qt.TextElideMode.ElideRight)
        self.table.setToolTip("One row per file; double-click a row to open its scan in the main window")
        self.table.setModel(self.proxy)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        metrics, bold = self.table.fontMetrics(), header.fontMetrics()
        longest = {"File": FILE_WIDTH, "Status": max(metrics.horizontalAdvance(s) for s in (OK, ERROR, SKIPPED)),
                   "Label": max(metrics.horizontalAdvance(label) for label in labels)}
        for column, name in enumerate(self.headers):
            if name in SHARING:
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
            else:  # room for the header, its sort arrow and the longest value
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
                self.table.setColumnWidth(column, max(longest.get(name, metrics.horizontalAdvance("100.0%")),
                                                      bold.horizontalAdvance(name) + 18) + 12)
        self.details = QLabel("Select a row to read it in full.", wordWrap=True,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setToolTip("The selected row in full")
        self.details.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

        self.chart = TimingChart()
        self.chart.clear(EMPTY_CHART)
        self.chart_toggle = QToolButton(checkable=True, checked=False, autoRaise=True,
                                        toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
                                        text="Time per stage, summed over the batch",
                                        toolTip="Show or hide the chart of the time per stage summed over the batch")
        self.chart_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.chart.hide()
        top = QWidget()
        top_column = QVBoxLayout(top)
        top_column.setContentsMargins(0, 0, 0, 0)
        top_column.addWidget(self.table, 1)
        top_column.addWidget(self.details)
        top_column.addWidget(self.chart_toggle)
        self.split = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=True)
        self.split.addWidget(top)
        self.split.addWidget(self.chart)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 1)
        self.split.setCollapsible(0, False)
        top.setMinimumHeight(160)

        layout = QVBoxLayout(self)
        layout.addLayout(folder_row)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.split, 1)
        notice = QLabel(NOT_FOR_CLINICAL_USE)
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        layout.addWidget(notice)
        browse.clicked.connect(self._browse)
        self.scheduler.textChanged.connect(self._scheduler_changed)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self._choose_export)
        self.filter.currentIndexChanged.connect(self._filter_rows)
        self.chart_toggle.toggled.connect(self.show_chart)
        self.table.selectionModel().currentRowChanged.connect(lambda current, _previous: self._show_details(current))
        self.table.doubleClicked.connect(lambda index: self.openRequested.emit(
            self.proxy.index(index.row(), 0).data(Qt.ItemDataRole.ToolTipRole)))
        screen = (parent.screen() if parent is not None else None) or QGuiApplication.primaryScreen()
        self.resize(fitted_rect(screen.availableGeometry(), PREFERRED_SIZE, self.minimumSizeHint()).size())

    def _header_tips(self) -> list[str]:
        return ["The file's name; its full path is in the cell's tooltip",
                "ok: classified; error: could not be read or run; skipped: not a scan",
                "The verdict; empty when withheld (outside the model's domain) or failed",
                *(f"The model's probability of {label}" for label in self.labels),
                "Why no verdict is given: the scan is outside the model's domain (modality or body part)",
                "What the loader worked around, what the decoders said, and whether the image looks unlike the "
                "training films",
                "Why the file failed or was skipped"]

    @property
    def running(self) -> bool:
        return self._worker is not None

    def show_chart(self, shown: bool) -> None:
        """Expand or collapse the chart of the time per stage."""
        self.chart_toggle.blockSignals(True)
        self.chart_toggle.setChecked(shown)
        self.chart_toggle.blockSignals(False)
        self.chart_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.chart.setVisible(shown)
        if shown:  # the table keeps most of the height
            total = sum(self.split.sizes())
            self.split.setSizes([total * 5 // 8, total - total * 5 // 8])

    def _scheduler_changed(self, text: str) -> None:
        """With a scheduler, its workers do the work: the local worker count does not apply, shipping does."""
        self.workers.setEnabled(not text.strip())
        self.ship_files.setEnabled(bool(text.strip()))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to process", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def start(self) -> None:
        if self.running:
            return
        self.rows.clear()
        self.model.removeRows(0, self.model.rowCount())
        self.details.setText("Select a row to read it in full.")
        self.chart.clear(EMPTY_CHART)
        folder = self.folder.text()
        config = BatchConfig(self.model_path, self.backend.currentText(), threads=self.threads.value() or None,
                             fast_decode=self.fast_decode.isChecked())
        self._backend, self._threads = config.backend, worker_threads(config)
        workers, self._started = self.workers.value(), time.perf_counter()
        self._scheduler = scheduler = self.scheduler.text().strip() or None
        ship_files = bool(scheduler) and self.ship_files.isChecked()

        def work():
            files = discover(folder)
            yield len(files)
            yield from run_batch(files, config, workers=max(1, min(workers, len(files))), scheduler=scheduler,
                                 ship_files=ship_files)

        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._received)
        self._failure = ""
        worker.errored.connect(lambda exc: setattr(self, "_failure", f"Batch failed: {exc}"))
        worker.finished.connect(self._finished)
        self._worker = worker
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Looking for files…")
        worker.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()  # stops at the next row; finished files keep their rows
            self.status.setText("Cancelling after the files in progress…")

    def stop_now(self) -> None:
        """For quitting: stop the batch at the next row (the main window then ends its worker processes, so the
        files in progress get no row)."""
        if self._worker is not None:
            self._worker.quit()

    def _received(self, item) -> None:
        if isinstance(item, int):
            self.progress.setRange(0, max(item, 1))
            self.progress.setValue(0)
            self.total = item
            return
        self.rows.append(item)
        self.model.appendRow(self._cells(item))
        done = len(self.rows)
        self.progress.setValue(done)
        elapsed = time.perf_counter() - self._started
        eta = elapsed / done * (self.total - done)
        self.status.setText(f"{done} of {counted(self.total, 'file')}, {done / elapsed:.1f} files/s, about {eta:.0f} s "
                            "left")
        self._update_filter_counts()

    def _cells(self, row: dict) -> list[QStandardItem]:
        """One table row: texts as shown, full texts in the tooltips, numbers sorting as numbers."""
        path = Path(row.get("path", ""))
        warnings = [w for w in (row.get("warning", ""), row.get("ood_warning", "")) if w]
        probabilities = [row.get(f"prob_{label}", "") for label in self.labels]
        shown = [(path.name, str(path), path.name.lower()),
                 (row.get("status", ""), "", row.get("status", "")),
                 (row.get("label", ""), "", row.get("label", "")),
                 *((percent(p), "", float(p) if p not in ("", None) else -1.0) for p in probabilities),
                 (row.get("withheld", ""), row.get("withheld", ""), row.get("withheld", "")),
                 ("; ".join(warnings), "\n".join(warnings), "; ".join(warnings)),
                 (row.get("error", ""), row.get("error", ""), row.get("error", ""))]
        cells = []
        for text, tip, key in shown:
            cell = QStandardItem(str(text))
            cell.setData(key, SORT_ROLE)
            if tip:
                cell.setToolTip(tip)
            cells.append(cell)
        for cell in cells[3:3 + len(self.labels)]:
            cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        cells[0].setData(kind_of(row), KIND_ROLE)
        colour = FAILED if row.get("status") == ERROR else WITHHELD if row.get("withheld") else None
        for cell in cells if colour is not None else ():
            cell.setBackground(colour)
        return cells

    def _show_details(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        source = self.proxy.mapToSource(index).row()
        def text(column: int) -> str:
            cell = self.model.item(source, column)
            return (cell.toolTip() or cell.text()).replace("\n", "; ")

        facts = [f"{name} {text(c)}" for c, name in enumerate(self.headers[2:3 + len(self.labels)], start=2)
                 if text(c)]
        lines = [f"<b>{html.escape(text(0))}</b>: " + html.escape(" · ".join([text(1), *facts]))]
        lines += [f"{html.escape(name)}: {html.escape(text(c))}" for c, name in enumerate(self.headers)
                  if name in SHARING and text(c)]
        self.details.setText("<br>".join(lines))

    def _filter_rows(self) -> None:
        kind = self.filter.currentData()
        self.proxy.setFilterRegularExpression(f"^{kind}$" if kind else "")

    def _update_filter_counts(self) -> None:
        counts = {kind: sum(kind_of(r) == kind for r in self.rows) for _text, kind in KINDS if kind}
        for i, (text, kind) in enumerate(KINDS):
            self.filter.setItemText(i, f"{text} ({counts[kind] if kind else len(self.rows)})")

    def _finished(self) -> None:
        self._worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(bool(self.rows))
        counts = {status: sum(r["status"] == status for r in self.rows) for status in (OK, ERROR)}
        withheld = sum(bool(r.get("withheld")) for r in self.rows)
        done = (f"{counted(len(self.rows), 'file')}: {counts[OK]} ok{f' ({withheld} withheld)' if withheld else ''}, "
                f"{counted(counts[ERROR], 'error')}, {len(self.rows) - counts[OK] - counts[ERROR]} skipped "
                f"in {time.perf_counter() - self._started:.1f} s{self._by_whom()}; each worker on "
                f"{self._threads.describe()}")
        # a failed run says why first, and what it finished before failing
        self.status.setText(f"{self._failure}. Before that: {done}" if self._failure and self.rows
                            else self._failure or done)
        summed = {stage: sum(float(r.get(f"{stage}_ms") or 0) for r in self.rows) for stage in PIPELINE_STAGES}
        self.chart.show_batch(summed, len(self.rows), self._backend, self._threads,
                              len(self.rows) / (time.perf_counter() - self._started),
                              sum(float(r.get("compile_ms") or 0) for r in self.rows))

    def _by_whom(self) -> str:
        """With a scheduler: " by 2 Dask workers (tcp://10.0.0.5:40331: 5 files; ...)"."""
        if not self._scheduler:
            return ""
        workers = per_dask_worker(self.rows)
        each = "; ".join(f"{address}: {counted(w['files'], 'file')}" for address, w in workers.items())
        return f" by {counted(len(workers), 'Dask worker')}" + (f" ({each})" if each else "")

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", str(Path(self.folder.text()) / "results.csv"),
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> None:
        save_csv(path, self.header, self.rows)
