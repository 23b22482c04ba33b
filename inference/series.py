"""DICOM files grouped into series, as clinical viewers show them: one stack per series, slices in anatomical order.

:func:`group_series` reads headers only (no pixel data): files sharing a Study and Series Instance UID form one
:class:`Series`, ordered by Image Position (Patient) along the slice normal (from Image Orientation (Patient)),
falling back to Instance Number, then to the file name in natural order ("f2" before "f10"). Everything else stays a
single entry, in natural order: images that are not DICOM, a series of one file, multi-frame files (already a
stack), and slices left out of a stack, each with the reason (no Series Instance UID, a size that differs from the
rest of its series, an unreadable header). :class:`SeriesStack` then reads one slice's pixels only when asked.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from radbench.inference.loading import load_scan
from radbench.inference.scan import Scan
from radbench.inference.wording import counted

#: The header fields grouping needs: read with ``specific_tags``, so even large files cost a few KB each.
_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "Rows", "Columns",
         "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber")


@dataclass(frozen=True)
class Series:
    """One series' slices in anatomical order, with what its list entry shows (no patient-identifying values)."""

    series_uid: str
    modality: str
    number: int | None
    description: str
    files: tuple[Path, ...]
    ordered_by: str  # "position", "instance number" or "file name"

    @property
    def title(self) -> str:
        """"CT, 120 slices, series 3: Chest 1.0 mm", as the scan list shows it."""
        number = f", series {self.number}" if self.number is not None else ""
        description = f": {self.description}" if self.description else ""
        return f"{self.modality or 'DICOM'}, {counted(len(self.files), 'slice')}{number}{description}"


@dataclass(frozen=True)
class LeftOut:
    """A file kept out of a stack, and why; it is still opened, on its own."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Grouping:
    series: tuple[Series, ...]  # two or more slices each, in the natural order of their first file
    singles: tuple[Path, ...]  # every other file, in natural order
    left_out: tuple[LeftOut, ...]  # files a stack would have taken but did not (also among ``singles``)

    def summary(self) -> str:
        """"2000 files: 3 series (1998 slices), 2 single files; 1 file left out of a series"."""
        slices = sum(len(s.files) for s in self.series)
        total = slices + len(self.singles)
        text = (f"{counted(total, 'file')}: {counted(len(self.series), 'series', 'series')} "
                f"({counted(slices, 'slice')}), {counted(len(self.singles), 'single file')}")
        if self.left_out:
            text += f"; {counted(len(self.left_out), 'file')} left out of a series"
        return text


def natural_key(path: Path) -> tuple:
    """Sort key putting "f2" before "f10": digit runs compare as numbers, the rest case-insensitively."""
    parts = re.split(r"(\d+)", str(path))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in parts)


def group_series(paths: Iterable[str | Path]) -> Grouping:
    """Group ``paths`` into series and single entries, reading DICOM headers only (see the module)."""
    headers, singles = {}, []
    for path in map(Path, paths):
        header = _header(path)
        if header is None:
            singles.append(path)
        else:
            headers[path] = header
    groups: dict[tuple[str, str], list[Path]] = {}
    left_out = []
    for path, header in headers.items():
        if int(header.get("NumberOfFrames", 1) or 1) > 1:
            singles.append(path)  # a multi-frame file is a stack of its own
        elif not header.get("SeriesInstanceUID"):
            left_out.append(LeftOut(path, "no Series Instance UID: opened on its own"))
        else:
            key = (str(header.get("StudyInstanceUID", "")), str(header["SeriesInstanceUID"]))
            groups.setdefault(key, []).append(path)
    series = []
    for members in groups.values():
        sizes = Counter((headers[p].get("Rows"), headers[p].get("Columns")) for p in members)
        size, _ = sizes.most_common(1)[0]
        for path in members:
            if (headers[path].get("Rows"), headers[path].get("Columns")) != size:
                left_out.append(LeftOut(path, f"{headers[path].get('Rows')} x {headers[path].get('Columns')} pixels "
                                              f"in a series of {size[0]} x {size[1]}: opened on its own"))
        members = [p for p in members if (headers[p].get("Rows"), headers[p].get("Columns")) == size]
        if len(members) < 2:
            singles.extend(members)
            continue
        ordered, ordered_by = _in_anatomical_order(members, headers)
        first = headers[ordered[0]]
        series.append(Series(str(first["SeriesInstanceUID"]), str(first.get("Modality", "")),
                             _integer(first.get("SeriesNumber")), str(first.get("SeriesDescription", "")).strip(),
                             tuple(ordered), ordered_by))
    singles.extend(item.path for item in left_out)
    series.sort(key=lambda s: natural_key(s.files[0]))
    return Grouping(tuple(series), tuple(sorted(set(singles), key=natural_key)),
                    tuple(sorted(left_out, key=lambda item: natural_key(item.path))))


class SeriesStack:
    """A series browsed like a multi-frame file: slice ``i``'s pixels are read when asked, a few kept at a time."""

    def __init__(self, series: Series, *, keep: int = 8) -> None:
        self.series = series
        self._keep = keep
        self._loaded: OrderedDict[int, Scan] = OrderedDict()

    @property
    def frame_count(self) -> int:
        return len(self.series.files)

    def slice(self, index: int) -> Scan:
        """Slice ``index`` (0-based, in anatomical order) as a one-frame :class:`Scan` (``ScanError`` as any file)."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"slice {index + 1} of {self.frame_count}")
        if index in self._loaded:
            self._loaded.move_to_end(index)
        else:
            self._loaded[index] = load_scan(self.series.files[index])
            while len(self._loaded) > self._keep:
                self._loaded.popitem(last=False)
        return self._loaded[index]


def _header(path: Path) -> dict | None:
    """The grouping fields of a DICOM file, or None if it is not one (or its header cannot be read)."""
    try:
        dataset = dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
        return None
    return {tag: dataset.get(tag) for tag in _TAGS if dataset.get(tag) is not None}


def _in_anatomical_order(members: list[Path], headers: dict[Path, dict]) -> tuple[list[Path], str]:
    """Slices ordered along the slice normal if every one has a position and they share an orientation; else by
    Instance Number if every one has a distinct one; else by file name (natural order)."""
    by_name = sorted(members, key=natural_key)
    orientations = {tuple(_floats(headers[p].get("ImageOrientationPatient"), 6) or ()) for p in members}
    positions = {p: _floats(headers[p].get("ImagePositionPatient"), 3) for p in members}
    if len(orientations) == 1 and () not in orientations and all(positions.values()):
        row, column = np.array(next(iter(orientations))[:3]), np.array(next(iter(orientations))[3:])
        normal = np.cross(row, column)
        distance = {p: float(np.dot(normal, positions[p])) for p in members}
        if len(set(distance.values())) == len(members):
            return sorted(by_name, key=distance.__getitem__), "position"
    numbers = {p: _integer(headers[p].get("InstanceNumber")) for p in members}
    if None not in numbers.values() and len(set(numbers.values())) == len(members):
        return sorted(by_name, key=numbers.__getitem__), "instance number"
    return by_name, "file name"


def _floats(value: object, count: int) -> list[float] | None:
    try:
        numbers = [float(v) for v in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _integer(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
