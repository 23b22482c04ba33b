"""The "How?" window of a comparison: one stage's source code in every backend side by side (naive loops, NumPy
expressions, Numba kernels), read from the installed modules, each under its measured time, so that a teacher can
walk through the optimization ladder on screen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from radbench.app.prediction_panel import subject
from radbench.inference.backends import get_backend, stage_source
from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking.compare import Comparison
from radbench.inference.model import NOT_FOR_CLINICAL_USE

#: The stage the window opens on: the one where the backends differ most in how they are written.
FIRST_STAGE = "equalize"
_CHOSEN_STYLE = "font-weight: bold; background: #e3f0ff; border: 1px solid #5b8fd6; border-radius: 3px; padding: 3px;"
_OTHER_STYLE = "font-weight: bold; padding: 4px;"


class CodeView(QDialog):
    """Every backend of ``comparison`` side by side for one stage (chosen in the list above them); ``backend``'s
    column is marked. Each column says the backend, what it is, and its median time for the stage over the
    comparison's repeats, with the p10-p90 spread."""

    def __init__(self, comparison: Comparison, backend: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.comparison, self.backend = comparison, backend
        self.setWindowTitle(f"How each backend computes a stage — {NOT_FOR_CLINICAL_USE}")
        self.stage = QComboBox()
        for stage in STAGES:
            self.stage.addItem(stage, stage)
        self.stage.setToolTip("The stage whose code is shown")
        self.heading = QLabel(wordWrap=True)
        self.heading.setStyleSheet("color: #555;")
        self.times: dict[str, QLabel] = {}
        self.sources: dict[str, QPlainTextEdit] = {}
        grid = QGridLayout()
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for column, name in enumerate(comparison.results):
            label = self.times[name] = QLabel(wordWrap=True)
            label.setStyleSheet(_CHOSEN_STYLE if name == backend else _OTHER_STYLE)
            source = self.sources[name] = QPlainTextEdit(readOnly=True,
                                                        lineWrapMode=QPlainTextEdit.LineWrapMode.NoWrap)
            source.setFont(font)
            source.setMinimumWidth(220)
            grid.addWidget(label, 0, column, alignment=Qt.AlignmentFlag.AlignTop)
            grid.addWidget(source, 1, column)
            grid.setColumnStretch(column, 1)
        grid.setRowStretch(1, 1)
        top = QHBoxLayout()
        top.addWidget(QLabel("Stage:"))
        top.addWidget(self.stage)
        top.addStretch(1)
        notice = QLabel(NOT_FOR_CLINICAL_USE)
        notice.setStyleSheet("color: #b00020; font-weight: bold;")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.heading)
        layout.addLayout(grid, 1)
        layout.addWidget(notice)
        self.stage.currentIndexChanged.connect(lambda: self.show_stage(self.stage.currentData()))
        self.stage.setCurrentIndex(STAGES.index(FIRST_STAGE))
        self.show_stage(FIRST_STAGE)

    def show_stage(self, stage: str) -> None:
        """Each backend's code for ``stage`` under its measured time."""
        c = self.comparison
        self.heading.setText(f"{stage}, as each backend writes it (the code RadBench runs, from its installed "
                             f"modules); times: {subject(c.path.name, c.frame, c.frame_count)}, median of each "
                             f"backend's timed runs (p10-p90 in brackets), from the last Compare all.")
        for name, result in c.results.items():
            spread = result.stages.get(stage)
            time = ("not run" if spread is None else
                    f"{spread.median_ms:.2f} ms  [{spread.p10_ms:.2f}-{spread.p90_ms:.2f}], {result.repeats} runs")
            self.times[name].setText(f"{name}: {time}\n{get_backend(name).description}")
            self.sources[name].setPlainText(stage_source(name, stage))
