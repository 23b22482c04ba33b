"""Presentation mode (View › Presentation, F11): the window full screen for a projector, its type scaled by
:data:`SCALE` (the race's lanes and finish with it), the scan list hidden, the image and the Race tab side by side,
half and half. The notice stays in the status bar. Leaving it puts the window back as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont

if TYPE_CHECKING:
    from radbench.app.main_window import MainWindow

#: How much larger the type is in presentation mode.
SCALE = 1.6


class Presentation:
    def __init__(self, window: MainWindow):
        self.window = window
        self._saved: tuple | None = None  # what leaving puts back: font, window state, splitter sizes, tab

    @property
    def active(self) -> bool:
        return self._saved is not None

    def set_active(self, on: bool) -> None:
        window = self.window
        if on == self.active:
            return
        if on:
            self._saved = (QFont(window.font()), window.windowState(), window.splitter.sizes(),
                           window.tabs.currentWidget())
            font = QFont(window.font())
            if font.pointSizeF() > 0:
                font.setPointSizeF(font.pointSizeF() * SCALE)
            else:
                font.setPixelSize(round(font.pixelSize() * SCALE))
            window.setFont(font)
            window.scan_list.hide()
            window.tabs.setCurrentWidget(window.race_view)
            window.setWindowState(window.windowState() | Qt.WindowState.WindowFullScreen)
            QTimer.singleShot(0, self._share)  # once the window has its full-screen size
            self._share()
            window.race_view.show_finish()
        else:
            font, state, sizes, tab = self._saved
            self._saved = None
            window.setFont(font)
            window.scan_list.show()
            window.setWindowState(state)
            window.splitter.setSizes(sizes)
            window.tabs.setCurrentWidget(tab)

    def _share(self) -> None:
        """The image and the results half and half (the hidden scan list gets nothing)."""
        if self.active:
            half = self.window.splitter.width() // 2
            self.window.splitter.setSizes([0, half, half])
