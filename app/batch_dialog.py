"""The Batch window: a folder through the batch runner, with progress, ETA, Cancel, a live sortable table,
CSV export and the time per stage summed over the batch. The same ``inference.batch`` code as the CLI; its Threads
box is ``radbench batch --threads``: each worker process runs on that many threads.

Failed rows are red; rows whose verdict is withheld (the scan is outside the model's domain: no label, the reason in
the "withheld" column) are amber."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
)
from superqt.utils import create_worker

from radbench.app.batch_command import worker_threads
from radbench.app.run_toolbar import threads_box
from radbench.app.timing_chart import TimingChart
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.batch import (
    ERROR,
    OK,
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

SHOWN = ("path", "status", "error", "label", "withheld")  # then one probability column per label, "ood_warning"
FAILED, WITHHELD = QBrush(QColor("#ffd6d6")), QBrush(QColor("#fff1c1"))


class BatchDialog(QDialog):
    """Non-modal; ``openRequested(path)`` asks the main window to show a row's scan."""

    openRequested = Signal(str)

    def __init__(self, labels: tuple[str, ...], model_path: str | None, parent=None, folder: str = "",
                 backend: str = "vectorized", threads: int = 0):
        super().__init__(parent)
        self.setWindowTitle(f"RadBench batch — {NOT_FOR_CLINICAL_USE}")
        self.labels, self.model_path = labels, model_path
        self.header = columns(labels)
        self.shown = [*SHOWN, *(f"prob_{label}" for label in labels), "ood_warning"]
        self.rows: list[dict] = []
        self.total = 0
        self._worker = None
        self.folder = QLineEdit(folder, placeholderText="Folder to process")
        browse = QPushButton("Browse…")
        self.backend = QComboBox()
        self.backend.addItems(BACKEND_NAMES)
        self.backend.setCurrentText(backend)
        self.workers = QSpinBox(minimum=1, maximum=usable_cpus(), value=usable_cpus(), prefix="workers ")
        self.threads = threads_box()
        self.threads.setValue(threads)
        self.threads.setToolTip(self.threads.toolTip().replace("Threads for the next runs and comparisons",
                                                               "Threads of each worker process"))
        self.start_button, self.cancel_button = QPushButton("Start"), QPushButton("Cancel", enabled=False)
        self.export_button = QPushButton("Export CSV…", enabled=False)
        top = QHBoxLayout()
        for widget in (self.folder, browse, self.backend, self.workers, self.threads, self.start_button,
                       self.cancel_button, self.export_button):
            top.addWidget(widget)
        self.progress = QProgressBar()
        self.status = QLabel("Choose a folder and press Start.")
        self.model = QStandardItemModel(0, len(self.shown), self)
        self.model.setHorizontalHeaderLabels(self.shown)
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.model)
        self.table = QTableView(sortingEnabled=True)
        self.table.setModel(proxy)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.chart = TimingChart()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.chart)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        notice = QLabel(NOT_FOR_CLINICAL_USE)
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        layout.addWidget(notice)
        browse.clicked.connect(self._browse)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self._choose_export)
        self.table.doubleClicked.connect(lambda index: self.openRequested.emit(
            proxy.index(index.row(), 0).data()))
        self.resize(1100, 750)

    @property
    def running(self) -> bool:
        return self._worker is not None

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to process", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def start(self) -> None:
        if self.running:
            return
        self.rows.clear()
        self.model.removeRows(0, self.model.rowCount())
        self.chart.clear()
        folder = self.folder.text()
        config = BatchConfig(self.model_path, self.backend.currentText(), threads=self.threads.value() or None)
        self._backend, self._threads = config.backend, worker_threads(config)
        workers, self._started = self.workers.value(), time.perf_counter()

        def work():
            files = discover(folder)
            yield len(files)
            yield from run_batch(files, config, workers=max(1, min(workers, len(files))))

        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._received)
        worker.errored.connect(lambda exc: self.status.setText(f"Batch failed: {exc}"))
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

    def _received(self, item) -> None:
        if isinstance(item, int):
            self.progress.setRange(0, max(item, 1))
            self.progress.setValue(0)
            self.total = item
            return
        self.rows.append(item)
        cells = [QStandardItem(str(item.get(column, ""))) for column in self.shown]
        colour = FAILED if item["status"] == ERROR else WITHHELD if item.get("withheld") else None
        for cell in cells if colour is not None else ():
            cell.setBackground(colour)
        self.model.appendRow(cells)
        done = len(self.rows)
        self.progress.setValue(done)
        elapsed = time.perf_counter() - self._started
        eta = elapsed / done * (self.total - done)
        self.status.setText(f"{done} of {counted(self.total, 'file')}, {done / elapsed:.1f} files/s, about {eta:.0f} s "
                            "left")

    def _finished(self) -> None:
        self._worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(bool(self.rows))
        counts = {status: sum(r["status"] == status for r in self.rows) for status in (OK, ERROR)}
        withheld = sum(bool(r.get("withheld")) for r in self.rows)
        self.status.setText(f"{counted(len(self.rows), 'file')}: {counts[OK]} ok"
                            f"{f' ({withheld} withheld)' if withheld else ''}, "
                            f"{counted(counts[ERROR], 'error')}, {len(self.rows) - counts[OK] - counts[ERROR]} skipped "
                            f"in {time.perf_counter() - self._started:.1f} s; each worker on "
                            f"{self._threads.describe()}")
        summed = {stage: sum(float(r.get(f"{stage}_ms") or 0) for r in self.rows) for stage in PIPELINE_STAGES}
        if any(summed.values()):
            self.chart.show_run({s: ms for s, ms in summed.items() if ms}, f"Time per stage summed over "
                                f"{counted(len(self.rows), 'file')} ({self._backend})", self._backend,
                                threads=self._threads)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", str(Path(self.folder.text()) / "results.csv"),
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> None:
        save_csv(path, self.header, self.rows)
