"""The centre of the main window: the scan viewer with its controls, window presets, invert and reset above it, and
beneath it a frame slider (multi-frame scans; the slices of a series, each read when shown) and the heatmap toggle,
its colour legend and its opacity.

The pane's keys act while the image or one of its controls has the focus (click the image): frames with PageUp /
PageDown, Up / Down, Home / End; zoom with + / -, 1:1 with 1. :data:`PANE_KEYS` lists them for Help › Keyboard
shortcuts.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QLinearGradient, QPainter, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from radbench.app.viewer import ZOOM_STEP, ScanViewer
from radbench.inference.display import CUSTOM
from radbench.inference.errors import ScanError
from radbench.inference.heatmap import colorize
from radbench.inference.scan import Scan
from radbench.inference.series import SeriesStack

#: The pane's keys: (keys, what they do, the ScanPane method they call and its arguments).
PANE_KEYS = (
    (("PgUp", "Up"), "Previous frame", "step_frame", (-1,)),
    (("PgDown", "Down"), "Next frame", "step_frame", (1,)),
    (("Home",), "First frame", "go_to_frame", (0,)),
    (("End",), "Last frame", "go_to_frame", (-1,)),
    (("+", "="), "Zoom in", "zoom", (ZOOM_STEP,)),
    (("-",), "Zoom out", "zoom", (1 / ZOOM_STEP,)),
    (("1",), "Actual size (1:1: one image pixel per screen pixel)", "actual_size", ()),
    (("Left", "Right"), "Pan left / right (the image never leaves the screen)", "", ()),
)


class HeatLegend(QWidget):
    """What the heatmap's colours mean, on one line: "low", the colour ramp, "high" (red: the strongest evidence for the
    label). Hidden, it keeps its place, so the image does not move when the heatmap is toggled."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._label = ""
        stops = colorize(np.linspace(0.0, 1.0, 11, dtype=np.float32))
        self._gradient = [(i / 10, QColor(*(int(c) for c in rgb))) for i, rgb in enumerate(stops)]
        policy = QSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        policy.setRetainSizeWhenHidden(True)
        self.setSizePolicy(policy)
        self.set_label("")

    def set_label(self, label: str) -> None:
        self._label = label
        self.setToolTip(f"Heatmap colours: where the model found evidence for {label or 'its label'}, from little "
                        "(transparent, then blue) to the strongest (red). It shows where the model looked, not a "
                        "finding.")
        self.update()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance("low") + metrics.horizontalAdvance("high") + 64, metrics.height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        metrics = self.fontMetrics()
        low, high = metrics.horizontalAdvance("low") + 4, metrics.horizontalAdvance("high") + 4
        bar = QRectF(low, 2, self.width() - low - high, self.height() - 4)
        gradient = QLinearGradient(QPointF(bar.left(), 0), QPointF(bar.right(), 0))
        for at, colour in self._gradient:
            gradient.setColorAt(at, colour)
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(QRectF(0, 0, low, self.height()), Qt.AlignmentFlag.AlignVCenter, "low")
        painter.drawText(QRectF(bar.right() + 4, 0, high, self.height()), Qt.AlignmentFlag.AlignVCenter, "high")
        painter.end()


class ScanPane(QWidget):
    """The viewer and its controls. ``frameChanged`` says the user moved to another frame of the scan (or slice of
    the series: :attr:`stack` is the series shown, ``None`` for a scan); ``sliceFailed`` gives the file and the reason
    of a slice that cannot be read (the viewer is then empty)."""

    frameChanged = Signal(int)
    sliceFailed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = ScanViewer()
        self.viewer.setToolTip("Left-drag: window/level (right: wider, down: higher level). Right- or middle-drag: "
                               "pan. Wheel: zoom about the cursor. Double-click: fit. Keys: Help › Keyboard "
                               "shortcuts.")
        self.viewer.setMinimumSize(240, 200)
        self.presets = QComboBox(minimumContentsLength=10, maximumWidth=260,
                                 sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.presets.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.presets.setToolTip("Display window (width / level). From file: the windows the DICOM file names; Full "
                                "range: the frame's lowest to highest value; Auto: its 1st to 99th percentile; CT: "
                                "lung, mediastinum, bone, brain. Dragging with the left button makes it Custom. "
                                "Display only: the model always sees the same input.")
        self.invert = QCheckBox("Invert", toolTip="Show the image in negative (display only; MONOCHROME1 scans are "
                                                  "already shown the right way round). Key: I")
        self.reset_button = QPushButton("Reset view", toolTip="The default window, no inversion, fitted. Key: R")
        window_label = QLabel("Window:")
        window_label.setBuddy(self.presets)
        controls = QHBoxLayout()
        for widget, stretch in ((window_label, 0), (self.presets, 2), (self.invert, 0), (self.reset_button, 0)):
            controls.addWidget(widget, stretch)
        controls.addStretch(1)

        self.frame_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0, pageStep=1)
        self.frame_label = QLabel()
        self.frame_name = QLabel("Frame")
        frames = QHBoxLayout()
        frames.setContentsMargins(0, 0, 0, 0)
        frames.addWidget(self.frame_name)
        frames.addWidget(self.frame_slider, 1)
        frames.addWidget(self.frame_label)
        self.frame_row = QWidget()
        self.frame_row.setLayout(frames)
        self.stack: SeriesStack | None = None
        self._set_frames("Frame", 1, 0)  # hidden until a scan has several frames

        self.overlay = QCheckBox("Heatmap", enabled=False)
        self.overlay.setToolTip("Lay the model's class activation map over the image: where the evidence for its "
                                "label lies (red strongest). Available after Run.")
        self.legend = HeatLegend()
        self.legend.hide()
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=50, minimumWidth=80,
                               maximumWidth=240, enabled=False)
        self.opacity.setToolTip("Heatmap opacity at its strongest (0% hides it, 100% covers the image there)")
        self.opacity_label = QLabel(toolTip="Heatmap opacity at its strongest")
        self.opacity_label.setMinimumWidth(self.opacity_label.fontMetrics().horizontalAdvance("Opacity 100%") + 2)
        heat = QHBoxLayout()
        heat.setContentsMargins(0, 0, 0, 0)
        heat.addWidget(self.overlay)
        heat.addWidget(self.legend)
        heat.addStretch(1)
        heat.addWidget(self.opacity_label)
        heat.addWidget(self.opacity, 3)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(controls)
        column.addWidget(self.viewer, 1)
        column.addWidget(self.frame_row)
        column.addLayout(heat)

        self.presets.activated.connect(self._preset_chosen)
        self.viewer.presetChanged.connect(self._show_preset)
        self.invert.toggled.connect(self.viewer.set_inverted)
        self.reset_button.clicked.connect(self.reset_view)
        self.overlay.toggled.connect(self._overlay_toggled)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self._opacity_changed(self.opacity.value())
        self.frame_slider.valueChanged.connect(self._show_frame)
        self.shortcuts: list[QShortcut] = []
        for keys, _text, method, args in PANE_KEYS:
            for key in keys if method else ():
                shortcut = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(lambda m=method, a=args: getattr(self, m)(*a))
                self.shortcuts.append(shortcut)

    def show_scan(self, scan: Scan) -> None:
        """Show ``scan`` at its default frame, with the window presets that suit it (never an empty list)."""
        self.stack = None
        self.viewer.set_scan(scan)
        self._set_frames("Frame", scan.frame_count, scan.default_frame)
        self.viewer.set_frame(scan.default_frame)
        self._fill_presets()

    def show_series(self, stack: SeriesStack) -> None:
        """Show the series' middle slice, fitted, in its default window; the slider and the frame keys step through
        the slices in anatomical order, each read when shown, in the same window, zoom and pan."""
        self.stack = stack
        self.viewer.clear()
        self.presets.clear()  # filled from the first slice that can be read
        index = stack.series.default_slice
        self._set_frames("Slice", stack.frame_count, index)
        self._show_slice(index)
        if self.viewer.scan is not None:
            self._fill_presets()

    @property
    def frame(self) -> int:
        """The frame of the scan, or the slice of the series, on screen (0-based)."""
        return self.frame_slider.value()

    def _set_frames(self, name: str, count: int, index: int) -> None:
        self.frame_name.setText(name)
        kind, order = ("series", " (in anatomical order)") if self.stack else ("scan", "")
        self.frame_label.setToolTip(f"{name} shown / {name.lower()}s in the {kind}")
        self.frame_slider.setToolTip(f"The {name.lower()} shown and classified{order}. Keys: PageUp / PageDown or Up "
                                     f"/ Down step, Home / End go to the first / last {name.lower()}.")
        self.frame_slider.blockSignals(True)
        self.frame_slider.setMaximum(count - 1)
        self.frame_slider.setValue(index)
        self.frame_slider.blockSignals(False)
        self.frame_row.setVisible(count > 1)
        self.frame_label.setText(f"{index + 1} / {count}")

    def _show_slice(self, index: int) -> None:
        """Read (or take from the stack's cache) slice ``index`` and show it; an unreadable one empties the viewer
        and is reported by ``sliceFailed``."""
        try:
            scan = self.stack.slice(index)
        except ScanError as exc:
            self.viewer.clear()
            self.frame_label.setText(f"{index + 1} / {self.stack.frame_count}: unreadable")
            self.sliceFailed.emit(str(exc))
            return
        self.viewer.set_slice(scan, index, self.stack.frame_count)

    def _fill_presets(self) -> None:
        self.presets.blockSignals(True)
        self.presets.clear()
        for preset in self.viewer.presets():
            self.presets.addItem(preset.name)
            self.presets.setItemData(self.presets.count() - 1, f"C {preset.center:g} / W {preset.width:g}",
                                     Qt.ItemDataRole.ToolTipRole)
        self.presets.blockSignals(False)
        self._show_preset(self.viewer.preset)

    def _preset_chosen(self, index: int) -> None:
        name = self.presets.itemText(index)
        if name != CUSTOM:
            self.viewer.apply_preset(name)

    def _show_preset(self, name: str) -> None:
        """Select ``name`` in the box; "Custom" is listed only while the window is set by hand."""
        custom = self.presets.findText(CUSTOM)
        if name == CUSTOM and custom < 0:
            self.presets.addItem(CUSTOM)
            self.presets.setItemData(self.presets.count() - 1, "The window set by dragging",
                                     Qt.ItemDataRole.ToolTipRole)
        elif name != CUSTOM and custom >= 0:
            self.presets.removeItem(custom)
        self.presets.setCurrentIndex(self.presets.findText(name))

    def show_heatmap(self, heatmap: np.ndarray | None, label: str = "") -> None:
        """Overlay the heatmap of the prediction on screen (as the toggle and opacity say), the legend naming
        ``label``; None: no heatmap."""
        self.viewer.set_heatmap(heatmap)
        if heatmap is not None:
            self.viewer.set_overlay_opacity(self.opacity.value() / 100)
            self.viewer.set_overlay_visible(self.overlay.isChecked())
        self.legend.set_label(label)
        self.overlay.setEnabled(heatmap is not None)
        self._update_heat_controls()

    def _overlay_toggled(self, shown: bool) -> None:
        self.viewer.set_overlay_visible(shown)
        self._update_heat_controls()

    def _opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"Opacity {value}%")
        self.viewer.set_overlay_opacity(value / 100)

    def _update_heat_controls(self) -> None:
        active = self.overlay.isEnabled() and self.overlay.isChecked()
        self.legend.setVisible(active)
        for widget in (self.opacity, self.opacity_label):
            widget.setEnabled(active)

    def reset_view(self) -> None:
        self.invert.setChecked(False)
        self.viewer.reset()

    # ----- keys -------------------------------------------------------------------------------------------------
    def step_frame(self, step: int) -> None:
        """Show the frame ``step`` frames on (negative: back), within the scan."""
        self.frame_slider.setValue(self.frame_slider.value() + step)

    def go_to_frame(self, frame: int) -> None:
        """Show frame ``frame`` (0-based; -1: the last)."""
        self.frame_slider.setValue(frame % (self.frame_slider.maximum() + 1))

    def zoom(self, factor: float) -> None:
        self.viewer.zoom(factor)

    def actual_size(self) -> None:
        self.viewer.actual_size()

    def _show_frame(self, frame: int) -> None:
        if self.stack is not None:
            self.frame_label.setText(f"{frame + 1} / {self.stack.frame_count}")
            self._show_slice(frame)
            if self.presets.count() == 0 and self.viewer.scan is not None:  # the series' first readable slice
                self._fill_presets()
            self.frameChanged.emit(frame)
            return
        scan = self.viewer.scan
        if scan is None:
            return
        self.viewer.set_frame(frame)
        self.frame_label.setText(f"{frame + 1} / {scan.frame_count}")
        self.frameChanged.emit(frame)
