"""Before Qt starts: will its xcb platform (X11) load? Qt aborts the whole process (exit 134) when a library its xcb
plugin needs is missing, and stock Debian/Ubuntu desktops lack some (``libxcb-cursor0`` since Qt 6.5). This module
finds the missing ones, without loading Qt, and names the system packages that provide them.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SystemLibrary:
    """A shared library Qt's xcb plugin links against, and the packages that install it."""

    soname: str
    debian: str  # Debian / Ubuntu package
    fedora: str  # Fedora / RHEL package


#: The X11 libraries of Qt 6's xcb plugin (``libqxcb.so`` and ``libQt6XcbQpa.so``), in the order Qt loads them.
XCB_LIBRARIES = (
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11.so.6", "libx11-6", "libX11"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libGL.so.1", "libgl1", "libglvnd-glx"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
)


def uses_xcb(environ: os._Environ | dict | None = None, platform: str | None = None) -> bool:
    """Whether Qt would start on its xcb platform: on Linux and the BSDs, unless ``QT_QPA_PLATFORM`` names another
    platform or a Wayland session lets Qt choose Wayland."""
    environ = os.environ if environ is None else environ
    if (platform or sys.platform) in ("win32", "darwin"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if chosen:
        return chosen == "xcb"
    wayland = bool(environ.get("WAYLAND_DISPLAY")) and environ.get("XDG_SESSION_TYPE", "") == "wayland"
    return not wayland


def missing_libraries(libraries: Iterable[SystemLibrary] = XCB_LIBRARIES) -> list[SystemLibrary]:
    """The ``libraries`` the dynamic loader cannot find (each tried with ``dlopen``, as Qt's plugin loader will)."""
    missing = []
    for library in libraries:
        try:
            ctypes.CDLL(library.soname)
        except OSError:
            missing.append(library)
    return missing


def install_hint(missing: Iterable[SystemLibrary]) -> str:
    """One line naming the missing libraries and the commands that install them on Debian/Ubuntu and on Fedora."""
    missing = list(missing)
    debian = " ".join(dict.fromkeys(library.debian for library in missing))
    fedora = " ".join(dict.fromkeys(library.fedora for library in missing))
    names = ", ".join(library.soname for library in missing)
    return (f"radbench: the desktop app cannot start: Qt's X11 (xcb) platform needs {names}, missing here; install "
            f"them with `sudo apt install {debian}` (Debian/Ubuntu) or `sudo dnf install {fedora}` (Fedora), or run "
            "the command line (radbench predict).")
