"""DICOM files grouped into series, as clinical viewers show them: one stack per series, slices in anatomical order.

:func:`group_series` reads headers only (no pixel data): files sharing a Study and Series Instance UID form one
:class:`Series`, ordered by Image Position (Patient) along the slice normal (from Image Orientation (Patient)),
falling back to Instance Number, then to the file name in natural order ("f2" before "f10"). Everything else stays a
single entry, in natural order: images that are not DICOM, DICOM files without an image (a DICOMDIR, a report), a
series of one file, multi-frame files (already a stack), and slices left out of a stack, each with the reason (no
Series Instance UID, a size that differs from the rest of its series, a second file holding the same instance: the
same SOP Instance UID). Unreadable headers are single entries too (opening them says why).
:class:`SeriesStack` then reads one slice's pixels only when asked.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.uid import generate_uid

from radbench.inference.loading import load_scan
from radbench.inference.scan import Scan
from radbench.inference.wording import counted

#: The header fields grouping needs: read with ``specific_tags``, so even large files cost a few KB each.
_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "Rows", "Columns",
         "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber", "SOPInstanceUID")


@dataclass(frozen=True)
class Series:
    """One series' slices in anatomical order, with what its list entry shows (no patient-identifying values)."""

    series_uid: str
    modality: str
    number: int | None
    description: str
    files: tuple[Path, ...]
    ordered_by: str  # "position", "instance number" or "file name"
    instances: tuple[int | None, ...] = ()  # each file's Instance Number, in the order of ``files``
    locations: tuple[float | None, ...] = ()  # each file's position along the slice normal (mm), when ordered by it

    @property
    def title(self) -> str:
        """"CT, 120 slices, series 3: Chest 1.0 mm", as the scan list shows it."""
        number = f", series {self.number}" if self.number is not None else ""
        description = f": {self.description}" if self.description else ""
        return f"{self.modality or 'DICOM'}, {counted(len(self.files), 'slice')}{number}{description}"

    @property
    def default_slice(self) -> int:
        """The slice shown and classified when none is asked for: the middle one, as for a multi-frame file."""
        return len(self.files) // 2

    def slice_index(self, frame: int | None) -> int:
        """Validate a user's slice index (``None``: the default; negative counts from the end), as
        :meth:`Scan.frame_index` does for frames."""
        if frame is None:
            return self.default_slice
        if not -len(self.files) <= frame < len(self.files):
            raise IndexError(f"slice index {frame} out of range: the series has {counted(len(self.files), 'slice')} "
                             f"(indices 0 to {len(self.files) - 1}, counted from 0; -1 is the last)")
        return frame % len(self.files)

    def describe_slice(self, index: int) -> str:
        """"slice 61 of 120, instance 61, at -12.5 mm" for slice ``index`` (0-based)."""
        parts = [f"slice {index + 1} of {len(self.files)}"]
        if self.instances and self.instances[index] is not None:
            parts.append(f"instance {self.instances[index]}")
        if self.locations and self.locations[index] is not None:
            parts.append(f"at {self.locations[index]:g} mm")
        return ", ".join(parts)


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


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders replaced by every file under them (hidden ones skipped), in natural order."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted((p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts)), key=natural_key)
        else:
            out.append(path)
    return out


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
        if not header.get("Rows") or not header.get("Columns"):
            singles.append(path)  # no image (a DICOMDIR, a report, a plan): never a slice
        elif (_integer(header.get("NumberOfFrames")) or 1) > 1:
            singles.append(path)  # a multi-frame file is a stack of its own
        elif not header.get("SeriesInstanceUID"):
            left_out.append(LeftOut(path, "no Series Instance UID"))
        else:
            key = (str(header.get("StudyInstanceUID", "")), str(header["SeriesInstanceUID"]))
            groups.setdefault(key, []).append(path)
    series = []
    for members in groups.values():
        members = _without_copies(members, headers, left_out)
        sizes = Counter((headers[p].get("Rows"), headers[p].get("Columns")) for p in members)
        size, _ = sizes.most_common(1)[0]
        for path in members:
            if (headers[path].get("Rows"), headers[path].get("Columns")) != size:
                left_out.append(LeftOut(path, f"{headers[path].get('Rows')} x {headers[path].get('Columns')} pixels "
                                              f"in a series of {size[0]} x {size[1]}"))
        members = [p for p in members if (headers[p].get("Rows"), headers[p].get("Columns")) == size]
        if len(members) < 2:
            singles.extend(members)
            continue
        ordered, ordered_by, distance = _in_anatomical_order(members, headers)
        first = headers[ordered[0]]
        series.append(Series(str(first["SeriesInstanceUID"]), str(first.get("Modality", "")),
                             _integer(first.get("SeriesNumber")), str(first.get("SeriesDescription", "")).strip(),
                             tuple(ordered), ordered_by,
                             tuple(_integer(headers[p].get("InstanceNumber")) for p in ordered),
                             tuple(round(distance[p], 3) if distance else None for p in ordered)))
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


def series_fields(path: str | Path) -> dict[str, object]:
    """A file's ``series_uid`` and ``instance`` for a batch row: the series' stand-in UID
    (:func:`series_uid_stand_in`) and the Instance Number, each empty when the header lacks it or is no DICOM."""
    header = _header(Path(path)) or {}
    uid, instance = header.get("SeriesInstanceUID"), _integer(header.get("InstanceNumber"))
    return {"series_uid": series_uid_stand_in(str(uid)) if uid else "",
            "instance": "" if instance is None else instance}


def series_uid_stand_in(uid: str) -> str:
    """The UID that stands for Series Instance UID ``uid`` in outputs: the same for every file of a series and a
    one-way hash of it (pydicom's ``generate_uid`` with ``uid`` as its entropy source, as de-identification tools
    replace UIDs), so rows group by series while the real UID, which RadBench counts as identifying
    (:data:`~inference.loading.dicom.IDENTIFYING_KEYWORDS`), never leaves it."""
    return generate_uid(entropy_srcs=[uid])


def _header(path: Path) -> dict | None:
    """The grouping fields of a DICOM file, or None if it is not one (or its header cannot be read, or it is no
    regular file: a named pipe would block the read)."""
    if not path.is_file():
        return None
    with warnings.catch_warnings():  # pydicom's warnings about odd values: once per file, and they may quote an
        warnings.simplefilter("ignore")  # identifying one (an invalid UID); reading the file to show it reports them
        try:
            dataset = dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
            return {tag: dataset.get(tag) for tag in _TAGS if dataset.get(tag) is not None}
        except Exception:  # noqa: BLE001 - whatever stops the header (not DICOM, damaged, unreadable): not a slice
            return None


def _without_copies(members: list[Path], headers: dict[Path, dict], left_out: list[LeftOut]) -> list[Path]:
    """``members`` but the files holding the same instance (SOP Instance UID) as one before them in natural order:
    the same slice saved twice (another encoding, a copy) is one slice; each copy goes to ``left_out``."""
    first: dict[str, Path] = {}
    kept = []
    for path in sorted(members, key=natural_key):
        instance = str(headers[path].get("SOPInstanceUID", "")) or None
        if instance in first:
            left_out.append(LeftOut(path, f"the same instance (SOP Instance UID) as {first[instance].name}"))
            continue
        if instance is not None:
            first[instance] = path
        kept.append(path)
    return kept


def _in_anatomical_order(members: list[Path], headers: dict[Path, dict]) -> tuple[list[Path], str, dict]:
    """Slices ordered along the slice normal if every one has a position and they share an orientation; else by
    Instance Number if every one has a distinct one; else by file name (natural order). Also each slice's distance
    along the normal when ordered by it (else an empty dict)."""
    by_name = sorted(members, key=natural_key)
    orientations = {tuple(_floats(headers[p].get("ImageOrientationPatient"), 6) or ()) for p in members}
    positions = {p: _floats(headers[p].get("ImagePositionPatient"), 3) for p in members}
    if len(orientations) == 1 and () not in orientations and all(positions.values()):
        row, column = np.array(next(iter(orientations))[:3]), np.array(next(iter(orientations))[3:])
        normal = np.cross(row, column)
        distance = {p: float(np.dot(normal, positions[p])) for p in members}
        if len(set(distance.values())) == len(members):
            return sorted(by_name, key=distance.__getitem__), "position", distance
    numbers = {p: _integer(headers[p].get("InstanceNumber")) for p in members}
    if None not in numbers.values() and len(set(numbers.values())) == len(members):
        return sorted(by_name, key=numbers.__getitem__), "instance number", {}
    return by_name, "file name", {}


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
