"""What decoders say while they work, caught per file: Python warnings and C libraries' prints to stderr.

pydicom warns about odd headers, and C decoders (libjpeg inside GDCM, for one) print straight to file
descriptor 2, naming no file. :func:`captured_noise` collects both around one file's work, so a front end can
put them in that file's row instead of on a shared stderr. Quoted values are hidden, since a warning may
quote an identifying value (an invalid UID, a name); lines are deduplicated and cut.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

_MAX_LINES, _MAX_LINE, _MAX_READ = 8, 160, 64 * 1024
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_LINK = re.compile(r"\s*(?:Please see\s*)?<https?://[^>]*>[^.]*\.?")  # pydicom's pointer to the standard


@contextlib.contextmanager
def captured_noise() -> Iterator[list[str]]:
    """Inside the block, warnings and whatever is written to file descriptor 2 are caught; on leaving it, the
    yielded list holds them as cleaned lines (quoted values shown as ``'…'``, at most 8 of 160 characters)."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            printed = sink.read(_MAX_READ).decode(errors="replace").splitlines()
            lines.extend(_clean([str(w.message) for w in caught] + printed))


def _clean(messages: list[str]) -> list[str]:
    """Non-empty lines, quoted values hidden, links to the standard dropped, deduplicated, cut to length."""
    seen: dict[str, None] = {}
    for message in messages:
        for line in message.splitlines():
            line = _LINK.sub("", _QUOTED.sub("'…'", line)).strip()
            if line:
                seen.setdefault(line if len(line) <= _MAX_LINE else line[:_MAX_LINE - 1] + "…")
    kept = list(seen)
    return kept if len(kept) <= _MAX_LINES else [*kept[:_MAX_LINES - 1], f"… and {len(kept) - _MAX_LINES + 1} more"]
