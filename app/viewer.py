"""The scan viewer: fit, zoom, pan, window/level by mouse drag, presets, invert, frames (or the slices of a series),
heatmap overlay, corner annotations, export.

Display only: the numbers and texts come from :mod:`inference.display` and :mod:`inference.heatmap`. The heatmap is
a second pixmap item with the image's scene geometry, so it stays aligned in every zoom and pan state; it is always
sampled smoothly (bilinear), while the image shows crisp pixels once zoomed past 1:1. However it is panned (mouse or
keys), a strip of the image (:data:`KEEP_VISIBLE_PX`) stays on screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from radbench.inference import display
from radbench.inference.heatmap import colorize
from radbench.inference.scan import Scan, WindowPreset

#: Zoom factor per wheel notch or +/- key, and the zoom limits (screen pixels per image pixel).
ZOOM_STEP = 1.25
ZOOM_LIMITS = (0.01, 64.0)
#: Screen pixels of the image that panning always leaves in view (less when the image is smaller on screen).
KEEP_VISIBLE_PX = 48
#: Share of the viewport one Left/Right key press pans.
KEY_PAN_SHARE = 0.1
_PAN_BUTTONS = (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton)


class ScanViewer(QGraphicsView):
    """One scan at a time. Left-drag: window/level; right- or middle-drag: pan; wheel: zoom about the cursor;
    double-click: fit; Left/Right keys: pan. ``windowChanged(center, width)`` follows every window change,
    ``presetChanged(name)`` the window's name (a preset of :func:`inference.display.presets_for`, or "Custom" once
    dragged), ``cursorValue(text)`` the value under the mouse (empty outside the image), ``zoomChanged(scale)``
    the screen pixels per image pixel. Corner annotations (modality, frame, W/L, zoom, value under the cursor) are
    painted over the image while :attr:`annotations_visible`."""

    windowChanged = Signal(float, float)
    presetChanged = Signal(str)
    cursorValue = Signal(str)
    zoomChanged = Signal(float)

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
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)  # the corners follow
        self.overlay_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)  # bilinear, always
        self.scan: Scan | None = None
        self._frame = 0
        self._slice: tuple[int, int] | None = None  # (index, count) while showing a slice of a series
        self._rescaled: np.ndarray | None = None  # the frame through the modality LUT, cached for fast re-renders
        self._value_range = 1.0
        self._center = self._width = 1.0
        self._preset = ""
        self._value = ""  # the value under the cursor, as the corner shows it
        self.annotations_visible = True
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
        self.scan, self._slice = scan, None
        self._load_frame(index)
        self._value = ""
        self.set_heatmap(None)
        self._apply(self.presets()[0])
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

    def set_slice(self, scan: Scan, index: int, count: int) -> None:
        """Show ``scan``, slice ``index`` of the ``count`` of a series (the corner says "Slice 5 / 120"): in the
        window, zoom and pan of the slice before it (the slices of a series share a size), fitted and in its default
        window when it is the series' first one shown (after :meth:`set_scan` or :meth:`clear`); clears the
        heatmap."""
        fresh = self._slice is None or self._rescaled is None
        self.scan, self._slice = scan, (index, count)
        self._load_frame(0)
        self.set_heatmap(None)
        if fresh:
            self._value = ""
            self._apply(self.presets()[0])
            self.fit()
        else:
            self._render()

    def clear(self) -> None:
        """Show no image (a slice that cannot be read): no scan, nothing to run."""
        self.scan, self._rescaled, self._slice = None, None, None
        self.set_heatmap(None)
        self._buffers.pop("image", None)
        self.image_item.setPixmap(QPixmap())
        self.viewport().update()

    def _load_frame(self, index: int) -> None:
        self._frame = index
        self._rescaled = display.rescaled_frame(self.scan, index)
        self._value_range = float(self._rescaled.max() - self._rescaled.min())

    def window(self) -> tuple[float, float]:
        return self._center, self._width

    @property
    def preset(self) -> str:
        """The name of the window shown: a preset's, or "Custom" once set by hand."""
        return self._preset

    def presets(self) -> tuple[WindowPreset, ...]:
        """The windows offered for the frame on screen (:func:`inference.display.presets_for`); the default first."""
        return display.presets_for(self.scan, self._rescaled) if self.scan is not None else ()

    def set_window(self, center: float, width: float, preset: str = display.CUSTOM) -> None:
        """Show the window ``(center, width)`` (width at least 1), called ``preset``: by hand unless named."""
        self._center, self._width = float(center), max(1.0, float(width))
        if preset != self._preset:
            self._preset = preset
            self.presetChanged.emit(preset)
        self._render()

    def apply_preset(self, name: str) -> None:
        """Use the named preset of :func:`inference.display.presets_for` for the frame on screen; ``KeyError`` if
        there is none."""
        if self.scan is None:
            raise KeyError(f"no window preset named {name!r}: no scan")
        self._apply(display.preset_named(self.scan, self._rescaled, name))

    def _apply(self, preset: WindowPreset) -> None:
        self.set_window(preset.center, preset.width, preset.name)

    def set_inverted(self, inverted: bool) -> None:
        """Invert the display on top of the photometric interpretation (MONOCHROME1 is already shown right)."""
        self._user_invert = bool(inverted)
        self._render()

    def reset(self) -> None:
        """Default window, no user inversion, fitted to the viewport."""
        if self.scan is None:
            return
        self._user_invert = False
        self._apply(self.presets()[0])
        self.fit()

    def fit(self) -> None:
        """The whole image in the viewport, aspect kept."""
        if not self.image_item.pixmap().isNull():
            self._update_scene_rect(self._fit_scale())
            self.fitInView(self.image_item, Qt.AspectRatioMode.KeepAspectRatio)
            self._fitted = True
            self._zoomed()

    def _fit_scale(self) -> float:
        rect, port = self.image_item.boundingRect(), self.viewport().rect()
        return max(1e-6, min(port.width() / max(rect.width(), 1), port.height() / max(rect.height(), 1)))

    def actual_size(self) -> None:
        """One image pixel per screen pixel (1:1), about the viewport's centre."""
        self.zoom(1.0 / self.transform().m11())

    def zoom_percent(self) -> float:
        """The zoom as the corner shows it: 100 at 1:1."""
        return 100 * self.transform().m11()

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
        if self.image_item.pixmap().isNull():
            return
        scale = self.transform().m11()
        factor = min(max(scale * factor, ZOOM_LIMITS[0]), ZOOM_LIMITS[1]) / scale
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        fixed = self.viewportTransform().inverted()[0].map(anchor)
        self._update_scene_rect(scale * factor)
        self.scale(factor, factor)
        self._scroll_by(self.viewportTransform().map(fixed) - anchor)
        self._fitted = False
        self._zoomed()

    def pan(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) screen pixels; a strip of it always stays in view (:data:`KEEP_VISIBLE_PX`)."""
        self._scroll_by(QPointF(-dx, -dy))
        self._fitted = False

    def _scroll_by(self, delta: QPointF) -> None:
        for bar, step in ((self.horizontalScrollBar(), delta.x()), (self.verticalScrollBar(), delta.y())):
            bar.setValue(bar.value() + round(step))

    def _update_scene_rect(self, scale: float) -> None:
        """The pannable area at ``scale``: the image, widened so that it can move until only a strip of
        :data:`KEEP_VISIBLE_PX` screen pixels (or all of it, when smaller) is left at a viewport edge."""
        rect = self.image_item.boundingRect()
        port = self.viewport().rect()
        span_x, span_y = port.width() / scale, port.height() / scale  # the viewport in image pixels
        keep_x = min(KEEP_VISIBLE_PX / scale, rect.width())
        keep_y = min(KEEP_VISIBLE_PX / scale, rect.height())
        self.setSceneRect(rect.adjusted(-(span_x - keep_x), -(span_y - keep_y), span_x - keep_x, span_y - keep_y))

    def _zoomed(self) -> None:
        """Crisp pixels for the image once zoomed past 1:1 (the heatmap stays smooth); tell who shows the zoom."""
        zoomed_out = self.transform().m11() < 1 - 1e-6  # 1:1 computed as a product may come out a hair under 1
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation if zoomed_out
                                              else Qt.TransformationMode.FastTransformation)
        self.zoomChanged.emit(self.transform().m11())
        self.viewport().update()

    def visible_image_rect(self) -> QRect:
        """The part of the viewport the image covers, in viewport pixels (empty when panned away)."""
        shown = self.mapFromScene(self.image_item.sceneBoundingRect()).boundingRect()
        return shown.intersected(self.viewport().rect())

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
                self.pan(delta.x(), delta.y())
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

    def keyPressEvent(self, event) -> None:
        """Left/Right pan by a tenth of the viewport (never the image off-screen); Up/Down are left to the frame
        keys of the window (QGraphicsView would scroll)."""
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self.scan is not None:
            step = self.viewport().width() * KEY_PAN_SHARE
            self.pan(step if key == Qt.Key.Key_Right else -step, 0)
            event.accept()
            return
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            event.ignore()
            return
        super().keyPressEvent(event)

    def leaveEvent(self, event) -> None:
        self._value = ""
        self.cursorValue.emit("")
        self.viewport().update()
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
        elif not self.image_item.pixmap().isNull():
            self._update_scene_rect(self.transform().m11())

    def _report_value(self, position: QPointF) -> None:
        if self.scan is None:
            return
        point = self.viewportTransform().inverted()[0].map(position)
        row, col = int(np.floor(point.y())), int(np.floor(point.x()))
        self._value = display.value_text(self.scan, self._frame, row, col, self._rescaled)
        self.cursorValue.emit(self._value)
        if self.annotations_visible:
            self.viewport().update()

    # ----- corner annotations ---------------------------------------------------------------------------------
    def set_annotations_visible(self, visible: bool) -> None:
        self.annotations_visible = bool(visible)
        self.viewport().update()

    def corner_texts(self) -> tuple[str, str, str, str]:
        """What the four corners say (top left, top right, bottom left, bottom right); empty without a scan."""
        if self.scan is None:
            return "", "", "", ""
        texts = display.corner_texts(self.scan, self._frame, self._center, self._width, self._preset,
                                     self.transform().m11(), self._value)
        if self._slice is None:
            return texts
        return texts[0], f"Slice {self._slice[0] + 1} / {self._slice[1]}", *texts[2:]

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if not self.annotations_visible or self.scan is None:
            return
        painter.save()
        painter.resetTransform()  # viewport pixels
        font = QFont(self.font())
        font.setPixelSize(12)
        painter.setFont(font)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        margin, port = 6, QRectF(self.viewport().rect())
        box = port.adjusted(margin, margin, -margin, -margin)
        corners = (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
        metrics = QFontMetrics(font)
        for text, align in zip(self.corner_texts(), corners):
            if not text:
                continue
            lines = text.split("\n")
            height = metrics.height() * len(lines)
            top = box.top() if align & Qt.AlignmentFlag.AlignTop else box.bottom() - height
            for i, line in enumerate(lines):
                width = metrics.horizontalAdvance(line)
                left = box.left() if align & Qt.AlignmentFlag.AlignLeft else box.right() - width
                path = QPainterPath()
                path.addText(QPointF(left, top + i * metrics.height() + metrics.ascent()), font, line)
                painter.strokePath(path, QPen(QColor(0, 0, 0, 200), 3))  # a dark halo: legible on any grey
                painter.fillPath(path, QColor(255, 236, 140))
        painter.restore()

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
