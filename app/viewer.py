"""The scan viewer: fit, zoom, pan, window/level by mouse drag, presets, invert, frames, heatmap overlay, export.

Display only: the numbers come from :mod:`inference.display` and :mod:`inference.heatmap`. The heatmap is a
second pixmap item with the image's scene geometry, so it stays aligned in every zoom and pan state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from inference import display
from inference.heatmap import colorize
from inference.scan import Scan

ZOOM_STEP = 1.25


class ScanViewer(QGraphicsView):
    """One scan at a time. Left-drag: window/level; right- or middle-drag: pan; wheel: zoom; double-click: fit."""

    windowChanged = Signal(float, float)  # noqa: N815 - Qt signal naming
    cursorValue = Signal(str)  # noqa: N815

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.image_item = QGraphicsPixmapItem()
        self.overlay_item = QGraphicsPixmapItem()
        for item in (self.image_item, self.overlay_item):
            item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self.scene().addItem(item)
        self.setBackgroundBrush(QColor(24, 24, 28))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.scan: Scan | None = None
        self.frame = 0
        self._rescaled: np.ndarray | None = None
        self._center = self._width = 1.0
        self._user_invert = False
        self._heat: np.ndarray | None = None
        self._opacity = 0.5
        self._drag: tuple[Qt.MouseButton, QPointF] | None = None
        self._buffers: list[np.ndarray] = []  # keep the arrays behind the QImages alive

    # ----- content --------------------------------------------------------------------------------------------
    def set_scan(self, scan: Scan, frame: int | None = None) -> None:
        self.scan = scan
        self._user_invert = False
        self._load_frame(scan.frame_index(frame))
        self.fit()

    def set_frame(self, frame: int) -> None:
        if self.scan is not None and frame != self.frame:
            self._load_frame(self.scan.frame_index(frame))

    def _load_frame(self, frame: int) -> None:
        self.frame = frame
        self._rescaled = display.rescaled_frame(self.scan, frame)
        self._center, self._width = display.default_window(self.scan, self._rescaled)
        self._heat = None
        self.overlay_item.setPixmap(QPixmap())
        self._render()
        h, w = self._rescaled.shape
        self.setSceneRect(QRectF(-2 * w, -2 * h, 5 * w, 5 * h))  # room to pan the image anywhere

    def window(self) -> tuple[float, float]:
        return self._center, self._width

    def set_window(self, center: float, width: float) -> None:
        self._center, self._width = float(center), max(1.0, float(width))
        self._render()

    def apply_preset(self, name: str) -> None:
        for preset in display.presets_for(self.scan) if self.scan else ():
            if preset.name == name:
                self.set_window(preset.center, preset.width)

    def set_inverted(self, inverted: bool) -> None:
        self._user_invert = bool(inverted)
        self._render()

    def reset(self) -> None:
        """Default window, no user inversion, fitted to the window."""
        if self.scan is None:
            return
        self._user_invert = False
        self._center, self._width = display.default_window(self.scan, self._rescaled)
        self._render()
        self.fit()

    def fit(self) -> None:
        if not self.image_item.pixmap().isNull():
            self.fitInView(self.image_item, Qt.AspectRatioMode.KeepAspectRatio)

    def _render(self) -> None:
        if self._rescaled is None:
            return
        grey = display.render(self._rescaled, self._center, self._width, self.scan.inverted != self._user_invert)
        self.image_item.setPixmap(QPixmap.fromImage(self._qimage(grey)))
        self.windowChanged.emit(self._center, self._width)

    # ----- heatmap overlay ------------------------------------------------------------------------------------
    def set_heatmap(self, heat: np.ndarray | None) -> None:
        """A [0, 1] map with the frame's shape (``None`` clears it)."""
        if heat is not None and self._rescaled is not None and heat.shape != self._rescaled.shape:
            raise ValueError(f"heatmap shape {heat.shape} differs from the frame's {self._rescaled.shape}")
        self._heat = heat
        self._render_overlay()

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_item.setVisible(bool(visible))

    def set_overlay_opacity(self, opacity: float) -> None:
        self._opacity = min(1.0, max(0.0, float(opacity)))
        self._render_overlay()

    def _render_overlay(self) -> None:
        if self._heat is None:
            self.overlay_item.setPixmap(QPixmap())
            return
        rgba = np.empty((*self._heat.shape, 4), np.uint8)
        rgba[..., :3] = colorize(self._heat)
        rgba[..., 3] = np.round(255 * self._opacity * np.clip(self._heat, 0, 1))
        self.overlay_item.setPixmap(QPixmap.fromImage(self._qimage(rgba)))

    def _qimage(self, array: np.ndarray) -> QImage:
        array = np.ascontiguousarray(array)
        self._buffers = [b for b in self._buffers if b.ndim != array.ndim][-1:] + [array]
        h, w = array.shape[:2]
        if array.ndim == 2:
            return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8)
        return QImage(array.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)

    # ----- mouse ----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.scan is not None and event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton,
                                                        Qt.MouseButton.MiddleButton):
            self._drag = (event.button(), event.position())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is not None:
            button, last = self._drag
            delta = event.position() - last
            self._drag = (button, event.position())
            if button == Qt.MouseButton.LeftButton:
                value_range = float(self._rescaled.max() - self._rescaled.min())
                self.set_window(*display.window_drag(self._center, self._width, delta.x(), delta.y(), value_range))
            else:
                self._pan(delta)
        self._report_value(event.position())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.fit()

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if steps:
            factor = ZOOM_STEP ** steps
            self.scale(factor, factor)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.scan is not None and not self._drag:
            self.fit()

    def _pan(self, delta: QPointF) -> None:
        for bar, step in ((self.horizontalScrollBar(), delta.x()), (self.verticalScrollBar(), delta.y())):
            bar.setValue(bar.value() - round(step))

    def _report_value(self, position: QPointF) -> None:
        if self.scan is None:
            return
        point = self.mapToScene(position.toPoint())
        self.cursorValue.emit(display.value_text(self.scan, self.frame, int(np.floor(point.y())),
                                                 int(np.floor(point.x())), self._rescaled))

    # ----- export ---------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path, notice: str | None = None) -> None:
        """The image with its overlay at full resolution; ``notice`` adds a caption strip beneath it."""
        rect = self.image_item.boundingRect()
        strip = 0 if notice is None else max(24, int(rect.width() // 30))
        picture = QImage(int(rect.width()), int(rect.height()) + strip, QImage.Format.Format_RGB32)
        picture.fill(QColor("black"))
        painter = QPainter(picture)
        self.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        if notice is not None:
            font = QFont()
            font.setPixelSize(max(10, int(strip * 0.55)))
            painter.setFont(font)
            painter.setPen(QColor("white"))
            painter.drawText(QRectF(0, rect.height(), rect.width(), strip), Qt.AlignmentFlag.AlignCenter, notice)
        painter.end()
        if not picture.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
