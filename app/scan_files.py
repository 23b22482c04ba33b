"""Which files to open and how: DICOM slices grouped into series (:mod:`inference.series`), the other scans loaded
with every failure kept for one report, the last folder and recent files kept in QSettings, the bundled samples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings

from radbench.app.samples import SAMPLE_DIR
from radbench.inference.errors import NotAScanError, RadBenchError
from radbench.inference.loading import load_scan_isolated
from radbench.inference.scan import Scan
from radbench.inference.series import Grouping, SeriesStack, group_series

ADULT_FILM = SAMPLE_DIR / "chest_cr_rg1_j2k_lossless.dcm"
#: What the app opens on its first start: an in-domain pediatric film first (it gets a verdict without a warning),
#: beside the adult film (outside the model's domain: its verdict comes with a warning).
FIRST_START = (SAMPLE_DIR / "chest_pediatric_normal.dcm", ADULT_FILM)
RECENT_LIMIT = 10
OPEN_FILTER = "Scans (*.dcm *.dicom *.dic *.ima *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"


@dataclass
class Loaded:
    """What one opening gave: the series (one stack each) and the other scans, how the files were grouped, and one
    line per file that failed or was skipped, naming it and why."""

    scans: list[Scan] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # readable files that are not scans (a README, a DICOMDIR)
    series: list[SeriesStack] = field(default_factory=list)
    grouping: Grouping | None = None

    @property
    def entries(self) -> list[Scan | SeriesStack]:
        """What the scan list gains, in order: the series, then the other scans in the order given."""
        return [*self.series, *self.scans]


def load_scans(files: Iterable[Path]) -> Loaded:
    """Group the files into series from their headers (a slice's pixels are read when it is shown) and load every
    other file (each in a loader process). Never raises for one file: an odd file must not take the app down."""
    files = list(files)
    loaded = Loaded(grouping=group_series(files))
    loaded.series = [SeriesStack(series) for series in loaded.grouping.series]
    in_series = {path for series in loaded.grouping.series for path in series.files}
    for path in (p for p in files if p not in in_series):
        try:
            loaded.scans.append(load_scan_isolated(path))
        except NotAScanError as exc:
            loaded.skipped.append(f"{exc} (skipped)")
        except RadBenchError as exc:
            loaded.failed.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - one odd file must not take the window down
            loaded.failed.append(f"{path}: unexpected {type(exc).__name__}: {exc}")
    return loaded


def quiet_skips(paths: Sequence[str | Path]) -> bool:
    """Whether files that are not scans are skipped without a word: when they came from a folder or among several
    paths (a shell glob such as ``sample_images/*`` arrives as many paths); a file named on its own is reported."""
    return len(paths) > 1 or any(Path(p).is_dir() for p in paths)


def last_folder(settings: QSettings) -> str:
    """Where the file dialogs start: the folder of the last opening (the home folder at first)."""
    return str(settings.value("last_folder", str(Path.home())))


def remember_folder(settings: QSettings, paths: Sequence[str | Path]) -> None:
    """The first of ``paths`` (its folder if it is a file) becomes the folder the file dialogs start in."""
    first = Path(paths[0])
    settings.setValue("last_folder", str(first.parent if first.is_file() else paths[0]))


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent", [])
    return [value] if isinstance(value, str) else list(value or [])


def remember(settings: QSettings, paths: Iterable[Path]) -> None:
    """Put ``paths`` first in the recent list (no duplicates, at most :data:`RECENT_LIMIT`)."""
    new = [str(p) for p in paths]
    settings.setValue("recent", (new + [p for p in recent_files(settings) if p not in new])[:RECENT_LIMIT])
