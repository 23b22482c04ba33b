"""The Inspector tab: the last Run's stages as a strip of thumbnails; the chosen stage in a viewer of its own (zoom,
pan, window/level, the value under the cursor), with its numbers and histogram; what-if toggles that re-run the
pipeline without a step and show how the probability and the heatmap move.

Widgets only: the stage outputs, their pictures and numbers come from :mod:`inference.inspection`. Results are kept
per (scan, frame), like every other result, for the last :data:`KEPT_FRAMES` frames run (each holds its stages'
full-size images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from radbench.app.viewer import ScanViewer
from radbench.app.what_if import NOT_INTENDED, comparison
from radbench.inference.inspection import MAPPINGS, WHAT_IF_EXPLANATIONS, Inspection, StageOutput
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.preprocessing import SKIPPABLE
from radbench.inference.scan import Scan

Key = tuple[Path, int]
#: The frames whose inspections are kept (the oldest is dropped first).
KEPT_FRAMES = 3
THUMBNAIL = 56
FIXED_MAPPING = "The stage's fixed mapping (0-255)"


class Histogram(QWidget):
    """A stage's value histogram as bars, its lowest and highest value beneath."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFixedHeight(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.counts: np.ndarray | None = None
        self.low = self.high = 0.0

    def sizeHint(self) -> QSize:
        return QSize(240, 80)

    def set_histogram(self, counts: np.ndarray | None, low: float = 0.0, high: float = 0.0) -> None:
        self.counts, self.low, self.high = counts, low, high
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(250, 250, 250))
        if self.counts is None or not self.counts.any():
            return
        text_height = self.fontMetrics().height()
        height, width = self.height() - text_height - 2, self.width()
        peak = float(self.counts.max())
        bar = width / len(self.counts)
        for i, count in enumerate(self.counts):
            h = round(height * count / peak)
            painter.fillRect(round(i * bar), height - h, max(1, round(bar) - 1), h, QColor(60, 110, 170))
        painter.setPen(QColor(60, 60, 60))
        painter.drawText(2, self.height() - 3, f"{self.low:.4g}")
        right = f"{self.high:.4g}"
        painter.drawText(width - self.fontMetrics().horizontalAdvance(right) - 2, self.height() - 3, right)
        painter.end()


class InspectorPanel(QWidget):
    """Shows the stages of the inspection of the scan and frame on screen, or an empty state naming them.

    ``whatIfRequested(skip, backend)`` asks the window to re-run the frame without the checked steps, with the
    backend of its Run (with no step checked, the full run is shown again without a run).
    """

    whatIfRequested = Signal(tuple, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._kept: dict[Key, tuple[Inspection, Inspection | None, tuple[str, ...]]] = {}  # full, what-if, skip
        self._key: Key | None = None
        self._where = ""  # what the results on screen belong to, as the window names it
        self._chosen = "decode"
        self._stages: list[StageOutput] = []  # the strip's stages, in order
        self._decode: StageOutput | None = None  # the frame the heatmap thumbnails are shown over
        self.heading = QLabel(wordWrap=True)
        self.heading.setStyleSheet("color: #555;")
        self.message = QLabel("No inspection yet: press Run.", wordWrap=True)
        self.message.setStyleSheet("font-weight: bold;")
        self.strip = QListWidget(viewMode=QListView.ViewMode.IconMode, flow=QListView.Flow.LeftToRight,
                                 wrapping=False, movement=QListView.Movement.Static,
                                 iconSize=QSize(THUMBNAIL, THUMBNAIL),
                                 horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAsNeeded,
                                 verticalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setFixedHeight(THUMBNAIL + 2 * self.fontMetrics().height() + 22)
        self.strip.setToolTip("Each stage's output, in pipeline order: click one to see it below with its numbers")
        self.viewer = _StageViewer()
        self.viewer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.viewer.setToolTip("The chosen stage's output in picture levels: its fixed mapping (below) puts 0 at black "
                               "and 255 at white; the stage's own values are below. Left-drag: window/level; "
                               "right-drag: pan; wheel: zoom; double-click: fit.")
        self.stage_info = QLabel(wordWrap=True)
        self.stage_info.setTextFormat(Qt.TextFormat.PlainText)
        self.histogram = Histogram()
        self.histogram.setToolTip("How many pixels have each value: 64 bins from the stage's lowest to its highest")
        self.toggles: dict[str, QCheckBox] = {}
        what_if = QGroupBox("What if a step were left out?")
        toggles = QVBoxLayout(what_if)
        toggles.setSpacing(2)
        for step in SKIPPABLE:
            box = self.toggles[step] = QCheckBox(f"Skip {step}", enabled=False)
            box.setToolTip(f"Re-run this frame without the {step} step ({NOT_INTENDED})")
            box.toggled.connect(self._toggled)
            explanation = QLabel(WHAT_IF_EXPLANATIONS[step], wordWrap=True)
            explanation.setStyleSheet("color: #444; margin-left: 22px; font-size: 11px;")
            toggles.addWidget(box)
            toggles.addWidget(explanation)
        self.what_if_result = QLabel(wordWrap=True)
        self.what_if_result.setStyleSheet("font-weight: bold; color: #7a4a00;")
        toggles.addWidget(self.what_if_result)
        notice = QLabel(NOT_FOR_CLINICAL_USE)
        notice.setStyleSheet("color: #b00020; font-weight: bold;")

        content = QWidget()
        column = QVBoxLayout(content)
        for widget in (self.heading, self.message, self.strip):
            column.addWidget(widget)
        column.addWidget(self.viewer, 1)
        for widget in (self.stage_info, self.histogram, what_if, notice):
            column.addWidget(widget)
        self._scroll = scroll = _WrappingScrollArea()
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.strip.currentRowChanged.connect(self._stage_chosen)
        self._set_stages_visible(False)

    # ----- results ------------------------------------------------------------------------------------------
    def add(self, inspection: Inspection, skip: tuple[str, ...] = ()) -> Key:
        """Keep a run's inspection for its scan and frame: a full run (``skip`` empty) replaces that frame's results,
        a what-if run sits beside its full run. Returns the key."""
        p = inspection.prediction
        key = (p.path, p.frame)
        full = self._kept.pop(key, None)
        if skip and full is not None:
            self._kept[key] = (full[0], inspection, tuple(skip))
        elif not skip:
            self._kept[key] = (inspection, None, ())
        while len(self._kept) > KEPT_FRAMES:
            del self._kept[next(iter(self._kept))]
        return key

    def inspection(self, key: Key) -> Inspection | None:
        """What the strip shows for ``key``: its what-if run when one is on, else its full run; None if not kept."""
        kept = self._kept.get(key)
        return None if kept is None else kept[1] or kept[0]

    def show_for(self, key: Key, where: str) -> None:
        """The kept inspection of ``key`` (``where`` names it), or an empty state naming it."""
        self._key, self._where = key, where
        kept = self._kept.get(key)
        self.heading.setText(where)
        for step, box in self.toggles.items():
            box.blockSignals(True)
            box.setChecked(kept is not None and step in kept[2])
            box.setEnabled(kept is not None)
            box.blockSignals(False)
        if kept is None:
            self.message.setText(f"{where}: no inspection yet. Press Run to see every stage's output (the Inspector "
                                 f"keeps the last {KEPT_FRAMES} frames run).")
            self.what_if_result.clear()
            self._stages, self._decode = [], None  # another frame's images are let go
            self.strip.clear()
            self._set_stages_visible(False)
            self._scroll.fit_height()
            return
        full, changed, skip = kept
        p = (changed or full).prediction
        self.heading.setText(f"{where} · backend {p.backend}")
        if changed is None:
            self.message.setText("How the model's input was made, stage by stage: click a thumbnail to see it below.")
            self.what_if_result.clear()
        else:
            self.message.setText(f"WHAT-IF run without {', '.join(skip)}: {NOT_INTENDED}.")
            self.what_if_result.setText(comparison(full.prediction, changed.prediction, skip))
        self._fill_strip(changed or full, full if changed is not None else None)
        self._scroll.fit_height()

    # ----- the strip and the chosen stage --------------------------------------------------------------------
    def _fill_strip(self, shown: Inspection, full: Inspection | None) -> None:
        self._stages = list(shown.stages)
        self._decode = shown.stage("decode")
        if full is not None and any(s.name == "heatmap" for s in full.stages):
            self._stages.append(StageOutput("full heatmap", full.stage("heatmap").values, None, (0.0, 1.0)))
        self.strip.blockSignals(True)
        self.strip.clear()
        for stage in self._stages:
            item = QListWidgetItem(_icon(stage), stage.name if stage.ms is None else f"{stage.name}\n{stage.ms:.2f} ms")
            item.setToolTip(f"{stage.name}: shape {stage.values.shape} {stage.values.dtype}"
                            + (": the full pipeline's heatmap, beside the what-if run's" if stage.name == "full heatmap"
                               else ""))
            self.strip.addItem(item)
        self.strip.blockSignals(False)
        names = [s.name for s in self._stages]
        self._set_stages_visible(True)
        self.strip.setCurrentRow(names.index(self._chosen) if self._chosen in names else 0)
        self._stage_chosen(self.strip.currentRow())

    def _stage_chosen(self, row: int) -> None:
        if not 0 <= row < len(self._stages):
            return
        stage = self._stages[row]
        self._chosen = stage.name
        heat = stage.name in ("heatmap", "full heatmap")
        shown = self._decode if heat else stage
        self.viewer.set_scan(_stage_scan(shown, self._decode_path))
        self.viewer.set_window(127.5, 255.0, FIXED_MAPPING)
        if heat:
            self.viewer.set_heatmap(stage.values)
        counts, low, high = stage.histogram()
        self.histogram.set_histogram(counts, low, high)
        mean = float(stage.values.mean(dtype=np.float64))
        time = "not timed" if stage.ms is None else f"{stage.ms:.2f} ms"
        mapping = MAPPINGS["heatmap" if heat else stage.name]
        self.stage_info.setText(f"{stage.name}: shape {stage.values.shape} {stage.values.dtype}, "
                                f"min {low:.4g}, max {high:.4g}, mean {mean:.4g}, {time}\nPicture: {mapping}"
                                + (" (over the decoded frame)" if heat else ""))

    @property
    def _decode_path(self) -> Path:
        return self._key[0] if self._key is not None else Path("stage")

    def _set_stages_visible(self, visible: bool) -> None:
        for widget in (self.strip, self.viewer, self.stage_info, self.histogram):
            widget.setVisible(visible)

    def _toggled(self) -> None:
        skip = tuple(step for step in SKIPPABLE if self.toggles[step].isChecked())
        if self._key is None or self._key not in self._kept:
            return
        full = self._kept[self._key][0]
        if skip:
            self.whatIfRequested.emit(skip, full.prediction.backend)
        else:  # back to the full pipeline: its results are kept
            self._kept[self._key] = (full, None, ())
            self.show_for(self._key, self._where)

    @property
    def stage_names(self) -> list[str]:
        """The thumbnails' stage names, in order."""
        return [s.name for s in self._stages]


class _StageViewer(ScanViewer):
    """The viewer, asking for little room: the panel's text comes first, the viewer takes what is left."""

    def sizeHint(self) -> QSize:
        return QSize(200, 180)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class _WrappingScrollArea(QScrollArea):
    """A vertical scroll area whose content is as tall as its wrapped text needs at the width it has (a plain
    QScrollArea gives it only its minimum height, and the wrapped lines then overlap)."""

    def __init__(self):
        super().__init__(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame,
                         horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def fit_height(self) -> None:
        content = self.widget()
        content.setMinimumHeight(content.layout().heightForWidth(self.viewport().width()))

    def resizeEvent(self, event) -> None:
        self.fit_height()
        super().resizeEvent(event)


def _icon(stage: StageOutput) -> QIcon:
    """A thumbnail of the stage's picture, drawn from every n-th pixel only (a full-size film takes 0.1 s per stage)."""
    every = max(1, max(stage.values.shape[-2:]) // (4 * THUMBNAIL))
    named = stage if stage.name != "full heatmap" else StageOutput("heatmap", stage.values, None, (0.0, 1.0))
    picture = np.ascontiguousarray(named.picture(every))
    h, w = picture.shape[:2]
    if picture.ndim == 2:
        image = QImage(picture.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        image = QImage(picture.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    pixmap = QPixmap.fromImage(image).scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
    return QIcon(pixmap)


def _stage_scan(stage: StageOutput, path: Path) -> Scan:
    """A stage's output (normalize: its first channel) as a one-frame scan for the viewer, in picture levels: its
    fixed mapping's black to white is 0 to 255 (unrounded), so the viewer's window/level works on every stage alike
    (a window is at least 1 level wide)."""
    plane = stage.values if stage.values.ndim == 2 else stage.values[0, 0]
    low, high = stage.display_range
    levels = (plane.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low if high > low else 1.0))
    return Scan(path=path, pixels=levels[None], photometric="MONOCHROME2", source_format=f"{stage.name} stage",
                decoder="")
