"""Where a window opens: within the free area of a screen (its available geometry, without panels and docks), at the
size it prefers when there is room, smaller when not; a saved geometry is restored only if it still fits a screen."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QPoint, QRect, QSize
from PySide6.QtGui import QCursor, QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

#: Share of the free area a window takes at most when it opens at its own size.
SCREEN_SHARE = 0.92


def fitted_rect(available: QRect, preferred: QSize, minimum: QSize | None = None) -> QRect:
    """A rectangle of ``preferred`` size, cut to :data:`SCREEN_SHARE` of ``available`` (never below ``minimum``
    unless the screen itself is smaller), centred in ``available``."""
    width = min(preferred.width(), int(available.width() * SCREEN_SHARE))
    height = min(preferred.height(), int(available.height() * SCREEN_SHARE))
    if minimum is not None:
        width = min(max(width, minimum.width()), available.width())
        height = min(max(height, minimum.height()), available.height())
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect


def fits(rect: QRect, areas: list[QRect]) -> bool:
    """True if ``rect`` lies wholly inside one of ``areas`` (the screens' available geometries)."""
    return any(area.contains(rect) for area in areas)


def screen_for_new_window() -> QScreen:
    """The screen under the mouse pointer (where the user is looking), else the primary screen."""
    return QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()


def place_window(window: QWidget, saved: QByteArray | bytes | None, preferred: tuple[int, int]) -> None:
    """Restore ``saved`` (a ``saveGeometry()``) if the window it gives still fits one screen's free area; otherwise
    size ``window`` to ``preferred`` within the free area of :func:`screen_for_new_window`, and centre it there."""
    areas = [screen.availableGeometry() for screen in QGuiApplication.screens()]
    if saved is not None and window.restoreGeometry(saved):
        if window.isMaximized() or fits(window.geometry(), areas):
            return
    minimum = window.minimumSizeHint().expandedTo(window.minimumSize())
    rect = fitted_rect(screen_for_new_window().availableGeometry(), QSize(*preferred), minimum)
    window.resize(rect.size())
    window.move(QPoint(rect.x(), rect.y()))
