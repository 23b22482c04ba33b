"""The scan viewer: fit, zoom, pan, window/level by mouse drag, presets, invert, frames, heatmap overlay, export.

Display only: the numbers come from :mod:`inference.display` and :mod:`inference.heatmap`. The heatmap is a
second pixmap item with the image's scene geometry, so it stays aligned in every zoom and pan state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from radbench.inference import display
from radbench.inference.heatmap import colorize
from radbench.inference.scan import Scan

#: Zoom factor per wheel notch, and the zoom limits (screen pixels per image pixel).
ZOOM_STEP = 1.25
ZOOM_LIMITS = (0.01, 64.0)
_PAN_BUTTONS = (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton)


class ScanViewer(QGraphicsView):
    """One scan at a time. Left-drag: window/level; right- or middle-drag: pan; wheel: zoom about the cursor;
    double-click: fit. ``windowChanged(center, width)`` follows every window change, ``cursorValue(text)`` the
    value under the mouse (empty outside the image)."""

    windowChanged = Signal(float, float)
    cursorValue = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.image_item = QGraphicsPixmapItem()
        self.overlay_item = QGraphicsPixmapItem()
        self.overlay_item.setZValue(1)
        for item in (self.image_item, self.overlay_item):
            self.scene().addItem(item)
        self.setBackgroundBrush(QColor(24, 24, 28))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # wheelEvent anchors at the cursor
        self.setMouseTracking(True)
        self.scan: Scan | None = None
        self._frame = 0
        self._rescaled: np.ndarray | None = None  # the frame through the modality LUT, cached for fast re-renders
        self._value_range = 1.0
        self._center = self._width = 1.0
        self._user_invert = False
        self._heat: np.ndarray | None = None
        self._heat_rgb: np.ndarray | None = None
        self._opacity = 0.5
        self._buffers: dict[str, np.ndarray] = {}  # the arrays behind the QImages, kept alive
        self._drag: tuple[Qt.MouseButton, QPointF] | None = None
        self._fitted = True  # refit on resize until the user zooms or pans

    # ----- content --------------------------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        return self._frame

    def set_scan(self, scan: Scan, frame: int | None = None) -> None:
        """Show ``scan`` (its middle frame by default) in its default window, fitted; clears the heatmap.
        The user's invert setting is a view preference and carries over."""
        index = scan.frame_index(frame)
        self.scan = scan
        self._load_frame(index)
        self._center, self._width = display.default_window(scan, self._rescaled)
        h, w = self._rescaled.shape
        self.setSceneRect(QRectF(-w, -h, 3 * w, 3 * h))  # room to pan the image to the viewport's edges
        self.set_heatmap(None)
        self._render()
        self.fit()

    def set_frame(self, frame: int) -> None:
        """Show another frame of the scan in the same window; clears the heatmap."""
        if self.scan is None:
            return
        index = self.scan.frame_index(frame)
        if index != self._frame:
            self._load_frame(index)
            self._render()
        self.set_heatmap(None)

    def _load_frame(self, index: int) -> None:
        self._frame = index
        self._rescaled = display.rescaled_frame(self.scan, index)
        self._value_range = float(self._rescaled.max() - self._rescaled.min())

    def window(self) -> tuple[float, float]:
        return self._center, self._width

    def set_window(self, center: float, width: float) -> None:
        self._center, self._width = float(center), max(1.0, float(width))
        self._render()

    def apply_preset(self, name: str) -> None:
        """Use the named preset of :func:`inference.display.presets_for`; ``KeyError`` if there is none."""
        presets = {p.name: p for p in display.presets_for(self.scan)} if self.scan else {}
        if name not in presets:
            raise KeyError(f"no window preset named {name!r}")
        self.set_window(presets[name].center, presets[name].width)

    def set_inverted(self, inverted: bool) -> None:
        """Invert the display on top of the photometric interpretation (MONOCHROME1 is already shown right)."""
        self._user_invert = bool(inverted)
        self._render()

    def reset(self) -> None:
        """Default window, no user inversion, fitted to the viewport."""
        if self.scan is None:
            return
        self._user_invert = False
        self.set_window(*display.default_window(self.scan, self._rescaled))
        self.fit()

    def fit(self) -> None:
        """The whole image in the viewport, aspect kept."""
        if not self.image_item.pixmap().isNull():
            self.fitInView(self.image_item, Qt.AspectRatioMode.KeepAspectRatio)
            self._fitted = True
            self._update_sampling()

    def _render(self) -> None:
        if self._rescaled is None:
            return
        grey = display.render(self._rescaled, self._center, self._width, self.scan.inverted != self._user_invert)
        self.image_item.setPixmap(self._pixmap("image", grey))
        self.windowChanged.emit(self._center, self._width)

    # ----- heatmap overlay ------------------------------------------------------------------------------------
    def set_heatmap(self, heat: np.ndarray | None) -> None:
        """A [0, 1] map with the frame's shape laid over the image (``None`` clears it)."""
        if heat is not None and self._rescaled is not None and heat.shape != self._rescaled.shape:
            raise ValueError(f"heatmap shape {heat.shape} differs from the frame's {self._rescaled.shape}")
        self._heat = None if heat is None else np.clip(heat, 0.0, 1.0)
        self._heat_rgb = None if heat is None else colorize(self._heat)  # cached: opacity changes only alpha
        self._render_overlay()

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_item.setVisible(bool(visible))

    def set_overlay_opacity(self, opacity: float) -> None:
        """The heatmap's opacity at full heat, 0..1; each pixel's alpha is ``opacity * heat``."""
        self._opacity = min(1.0, max(0.0, float(opacity)))
        self._render_overlay()

    def _render_overlay(self) -> None:
        if self._heat is None:
            self._buffers.pop("overlay", None)
            self.overlay_item.setPixmap(QPixmap())
            return
        rgba = np.empty((*self._heat.shape, 4), np.uint8)
        rgba[..., :3] = self._heat_rgb
        rgba[..., 3] = np.round(255 * self._opacity * self._heat)
        self.overlay_item.setPixmap(self._pixmap("overlay", rgba))

    def _pixmap(self, key: str, array: np.ndarray) -> QPixmap:
        """A grey (h, w) or RGBA (h, w, 4) uint8 array as a pixmap, its buffer kept under ``key``."""
        array = self._buffers[key] = np.ascontiguousarray(array)
        h, w = array.shape[:2]
        if array.ndim == 2:
            image = QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8)
        else:
            image = QImage(array.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        return QPixmap.fromImage(image)

    # ----- zoom and pan ---------------------------------------------------------------------------------------
    def zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Scale by ``factor`` (within :data:`ZOOM_LIMITS`), keeping the scene point under ``anchor``
        (viewport coordinates; default the viewport's centre) where it is."""
        scale = self.transform().m11()
        factor = min(max(scale * factor, ZOOM_LIMITS[0]), ZOOM_LIMITS[1]) / scale
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        fixed = self.viewportTransform().inverted()[0].map(anchor)
        self.scale(factor, factor)
        self._scroll_by(self.viewportTransform().map(fixed) - anchor)
        self._fitted = False
        self._update_sampling()

    def _scroll_by(self, delta: QPointF) -> None:
        for bar, step in ((self.horizontalScrollBar(), delta.x()), (self.verticalScrollBar(), delta.y())):
            bar.setValue(bar.value() + round(step))

    def _update_sampling(self) -> None:
        """Smooth sampling when zoomed out, crisp pixels when zoomed in."""
        mode = (Qt.TransformationMode.SmoothTransformation if self.transform().m11() < 1
                else Qt.TransformationMode.FastTransformation)
        for item in (self.image_item, self.overlay_item):
            item.setTransformationMode(mode)

    # ----- mouse ----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        button = event.button()
        if self.scan is not None and self._drag is None and button in (Qt.MouseButton.LeftButton, *_PAN_BUTTONS):
            self._drag = (button, event.position())
            if button in _PAN_BUTTONS:
                self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._drag is not None:
            button, last = self._drag
            delta = event.position() - last
            self._drag = (button, event.position())
            if button == Qt.MouseButton.LeftButton:
                self.set_window(*display.window_drag(self._center, self._width, delta.x(), delta.y(),
                                                     self._value_range))
            else:
                self._scroll_by(-delta)
                self._fitted = False
        self._report_value(event.position())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None and event.button() == self._drag[0]:
            self._drag = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()
        event.accept()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if self.scan is not None and steps:
            self.zoom(ZOOM_STEP ** steps, event.position())
        event.accept()

    def leaveEvent(self, event) -> None:
        self.cursorValue.emit("")
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def _report_value(self, position: QPointF) -> None:
        if self.scan is None:
            return
        point = self.viewportTransform().inverted()[0].map(position)
        row, col = int(np.floor(point.y())), int(np.floor(point.x()))
        self.cursorValue.emit(display.value_text(self.scan, self._frame, row, col, self._rescaled))

    # ----- export ---------------------------------------------------------------------------------------------
    def export_png(self, path: str | Path, notice: str | None = None) -> None:
        """Save the image with its overlay (as shown) at full resolution; ``notice`` adds a caption strip:
        white text on black beneath the image. ``OSError`` if the file cannot be written."""
        if self._rescaled is None:
            raise RuntimeError("no scan to export")
        rect = self.image_item.boundingRect()
        width, height = int(rect.width()), int(rect.height())
        font = QFont()
        font.setPixelSize(max(12, width // 60))
        pad = font.pixelSize() // 2
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        strip = 0
        if notice is not None:
            text = QFontMetrics(font).boundingRect(QRect(0, 0, width - 2 * pad, 100 * height), flags, notice)
            strip = text.height() + 2 * pad
        picture = QImage(width, height + strip, QImage.Format.Format_RGB32)
        picture.fill(QColor("black"))
        painter = QPainter(picture)
        self.scene().render(painter, QRectF(0, 0, width, height), rect)
        if notice is not None:
            painter.setFont(font)
            painter.setPen(QColor("white"))
            painter.drawText(QRectF(pad, height, width - 2 * pad, strip), flags, notice)
        painter.end()
        if not picture.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
