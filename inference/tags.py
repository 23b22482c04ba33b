"""Every DICOM header element of a file as display rows, with patient-identifying ones marked.

An element is identifying when its keyword is in :data:`inference.loading.dicom.IDENTIFYING_KEYWORDS`, it is
a person's name, a date or a time (VR PN, DA, DT, TM), an instance UID, it lies in the patient group
(0010,xxxx), or it is a private tag (whose meaning is unknown). Front ends hide the values of identifying rows
until the user asks to see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radbench.inference.loading.dicom import IDENTIFYING_KEYWORDS
from radbench.inference.wording import counted

_MAX_VALUE_CHARS = 200
_IDENTIFYING = frozenset(IDENTIFYING_KEYWORDS)
_IDENTIFYING_VRS = frozenset({"PN", "DA", "DT", "TM"})


@dataclass(frozen=True)
class TagRow:
    tag: str  # "(0010,0010)"
    name: str  # "Patient's Name", indented by sequence depth
    vr: str
    value: str
    identifying: bool


def read_tags(path: str | Path) -> list[TagRow]:
    """The header of a DICOM file (pixel data not read), sequences flattened; ``[]`` for a non-DICOM file."""
    try:
        ds = dcmread(path, stop_before_pixels=True, force=False)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return []
    rows: list[TagRow] = []
    if hasattr(ds, "file_meta"):
        _walk(ds.file_meta, 0, False, rows)
    _walk(ds, 0, False, rows)
    return rows


def _walk(ds: Dataset, depth: int, inherited: bool, rows: list[TagRow]) -> None:
    for element in ds:
        identifying = inherited or _is_identifying(element)
        name = "  " * depth + (element.name or element.keyword or "Unknown")
        if element.VR == "SQ":
            rows.append(TagRow(str(element.tag), name, "SQ", counted(len(element.value), "item"), identifying))
            for item in element.value:
                _walk(item, depth + 1, identifying, rows)
            continue
        rows.append(TagRow(str(element.tag), name, str(element.VR), _value_text(element), identifying))


def _is_identifying(element) -> bool:
    return (element.keyword in _IDENTIFYING or element.VR in _IDENTIFYING_VRS or element.tag.group == 0x0010
            or element.tag.is_private or element.keyword.endswith("InstanceUID"))


def _value_text(element) -> str:
    if element.tag == 0x7FE00010 or element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        length = len(element.value) if element.value is not None else 0
        return f"<{length} bytes>"
    text = str(element.value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + " …"
