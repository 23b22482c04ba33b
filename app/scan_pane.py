"""The centre of the main window: the scan viewer with its controls, window presets, invert and reset above it, and
beneath it a frame slider (multi-frame scans) and the heatmap toggle and opacity."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from radbench.app.viewer import ScanViewer
from radbench.inference.display import presets_for
from radbench.inference.scan import Scan


class ScanPane(QWidget):
    """The viewer and its controls. ``frameChanged`` says the user moved to another frame of the scan."""

    frameChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = ScanViewer()
        self.presets = QComboBox(minimumContentsLength=14)
        self.invert = QCheckBox("Invert")
        self.overlay = QCheckBox("Heatmap", enabled=False)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50, minimumWidth=80,
                               maximumWidth=120)
        self.reset_button = QPushButton("Reset view")
        controls = QHBoxLayout()
        for widget in (QLabel("Window:"), self.presets, self.invert, self.reset_button):
            controls.addWidget(widget)
        controls.addStretch(1)

        self.frame_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0)
        self.frame_label = QLabel()
        frames = QHBoxLayout()
        frames.setContentsMargins(0, 0, 0, 0)
        frames.addWidget(QLabel("Frame"))
        frames.addWidget(self.frame_slider, 1)
        frames.addWidget(self.frame_label)
        self.frame_row = QWidget()
        self.frame_row.setLayout(frames)
        self.frame_row.hide()
        below = QHBoxLayout()  # beneath the image: the frame slider (multi-frame scans), the heatmap controls
        below.addWidget(self.frame_row, 1)
        below.addStretch(0)
        for widget in (self.overlay, QLabel("Opacity"), self.opacity):
            below.addWidget(widget)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(controls)
        column.addWidget(self.viewer, 1)
        column.addLayout(below)

        self.presets.activated.connect(lambda i: self.viewer.apply_preset(self.presets.itemText(i)))
        self.invert.toggled.connect(self.viewer.set_inverted)
        self.reset_button.clicked.connect(self.reset_view)
        self.overlay.toggled.connect(self.viewer.set_overlay_visible)
        self.opacity.valueChanged.connect(lambda v: self.viewer.set_overlay_opacity(v / 100))
        self.frame_slider.valueChanged.connect(self._show_frame)

    def show_scan(self, scan: Scan) -> None:
        """Show ``scan`` at its default frame, with the window presets that suit it."""
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

    def show_heatmap(self, heatmap: np.ndarray | None) -> None:
        """Overlay the heatmap of the prediction on screen (as the toggle and opacity say); None: no heatmap."""
        self.viewer.set_heatmap(heatmap)
        if heatmap is not None:
            self.viewer.set_overlay_opacity(self.opacity.value() / 100)
            self.viewer.set_overlay_visible(self.overlay.isChecked())
        self.overlay.setEnabled(heatmap is not None)

    def reset_view(self) -> None:
        self.invert.setChecked(False)
        self.viewer.reset()

    def _show_frame(self, frame: int) -> None:
        scan = self.viewer.scan
        if scan is None:
            return
        self.viewer.set_frame(frame)
        self.frame_label.setText(f"{frame + 1} / {scan.frame_count}")
        self.frameChanged.emit(frame)
