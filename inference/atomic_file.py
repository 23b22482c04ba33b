"""Output files: checked before any work starts, then written so that readers see the old content or the new.

One rule for every output of every command (``batch --out`` and ``--json``, ``profile --out``, ``predict
--heatmap``, ``bench --json``): the path is a regular file or a new name in an existing folder. A symbolic
link is followed and its target written; a folder, device, named pipe or socket is refused; a missing folder
is refused, never created. Files get the mode the umask gives (0644 under umask 022).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from radbench.inference.errors import printable

_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket"}


class OutputError(OSError):
    """An output path that will not or cannot be written; ``str()`` is ``"<path>: <reason>"`` on one line.

    An ``OSError``, so every caller that reports a failed write reports this one too (``strerror``: the reason).
    """

    def __init__(self, path: str | Path, reason: str):
        super().__init__(errno.EINVAL, reason, str(path))

    def __str__(self) -> str:
        return printable(f"{self.filename}: {self.strerror}")


def output_target(path: str | Path) -> Path:
    """The regular file that writing ``path`` replaces or creates (a symbolic link's final target); raises
    :class:`OutputError` when it is something else or its folder does not exist."""
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        state = "is not a folder" if target.parent.exists() else "does not exist (folders are not created)"
        raise OutputError(path, f"{target.parent} {state}")
    try:
        mode = os.stat(path).st_mode  # through the link itself: /dev/stdout's target may be a pipe, not a name
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
        raise OutputError(path, f"is {kind}, not a regular file (outputs are written as regular files)")
    return target


def check_output(path: str | Path) -> Path:
    """:func:`output_target`, proven writable by creating and removing a file beside it; call it before the work
    whose result goes there."""
    target = output_target(path)
    try:
        fd, tmp = _temporary(target)
    except OSError as exc:
        raise OutputError(path, f"cannot create files in {target.parent} ({exc.strerror or exc})") from None
    os.close(fd)
    tmp.unlink()
    return target


def write_atomically(path: str | Path, write: Callable[[IO], None], *, binary: bool = False) -> None:
    """Call ``write(file)`` on a new file beside :func:`output_target` of ``path`` (text: UTF-8, no newline
    translation), then rename it over the target."""
    target = output_target(path)
    fd, tmp = _temporary(target)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="", encoding="utf-8") as file:
            write(file)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temporary(target: Path) -> tuple[int, Path]:
    """A new hidden file beside ``target``, created with mode 0666 so that the umask decides."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
