"""Which files to open: folders expanded recursively, recent files kept in QSettings, the bundled samples."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QSettings

from radbench.sample_images import SAMPLE_DIR

FIRST_SAMPLE = SAMPLE_DIR / "chest_cr_rg1_j2k_lossless.dcm"
RECENT_LIMIT = 10
OPEN_FILTER = "Scans (*.dcm *.dicom *.dic *.ima *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders replaced by every file under them (hidden ones skipped), sorted."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file()
                          and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            out.append(path)
    return out


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent", [])
    return [value] if isinstance(value, str) else list(value or [])


def remember(settings: QSettings, paths: Iterable[Path]) -> None:
    """Put ``paths`` first in the recent list (no duplicates, at most :data:`RECENT_LIMIT`)."""
    new = [str(p) for p in paths]
    settings.setValue("recent", (new + [p for p in recent_files(settings) if p not in new])[:RECENT_LIMIT])
