"""DICOM files grouped into series and ordered as clinical viewers order them; slices read only when shown."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radbench.inference.series import SeriesStack, group_series, natural_key

STUDY = generate_uid()


def write_slice(path: Path, *, series_uid: str | None, z: float | None, instance: int | None, size=(8, 8),
                value: int = 0, orientation=(1, 0, 0, 0, 1, 0)) -> Path:
    """A one-frame CT slice whose pixels all hold ``value`` (so a test can tell slices apart by their pixels)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.StudyInstanceUID, ds.SeriesNumber, ds.SeriesDescription = "CT", STUDY, 3, "Chest 1.0 mm"
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    if z is not None:
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, z], list(orientation)
    if instance is not None:
        ds.InstanceNumber = instance
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full(size, value, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def folder(tmp_path: Path):
    """Six slices of one series under shuffled names with positions out of order (value = anatomical rank), one
    slice of another size in that series, one slice without a series UID, a PNG and a lone DICOM of another
    series."""
    series_uid = generate_uid()
    zs = [-30.0, -20.0, -10.0, 0.0, 10.0, 20.0]
    names = random.Random(3).sample([f"f{n}.dcm" for n in (1, 2, 10, 11, 100, 3)], len(zs))
    for rank, (z, name) in enumerate(zip(reversed(zs), names)):  # the highest slice first: a different order
        write_slice(tmp_path / name, series_uid=series_uid, z=z, instance=50 - rank, value=len(zs) - 1 - rank)
    write_slice(tmp_path / "odd.dcm", series_uid=series_uid, z=5.0, instance=1, size=(4, 4))
    write_slice(tmp_path / "no_uid.dcm", series_uid=None, z=0.0, instance=1)
    write_slice(tmp_path / "lone.dcm", series_uid=generate_uid(), z=0.0, instance=1)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "photo2.png")
    return tmp_path


def test_a_series_is_one_stack_in_anatomical_order_and_the_rest_stay_single(folder):
    grouping = group_series(sorted(folder.iterdir()))
    assert len(grouping.series) == 1
    series = grouping.series[0]
    assert series.ordered_by == "position" and series.title == "CT, 6 slices, series 3: Chest 1.0 mm"
    stack = SeriesStack(series)
    assert [int(stack.slice(i).pixels[0, 0, 0]) for i in range(stack.frame_count)] == [0, 1, 2, 3, 4, 5]
    assert [p.name for p in grouping.singles] == ["lone.dcm", "no_uid.dcm", "odd.dcm", "photo2.png"]
    assert {item.path.name: item.reason for item in grouping.left_out} == {
        "no_uid.dcm": "no Series Instance UID: opened on its own",
        "odd.dcm": "4 x 4 pixels in a series of 8 x 8: opened on its own",
    }
    assert grouping.summary() == "10 files: 1 series (6 slices), 4 single files; 2 files left out of a series"


def test_without_positions_instance_numbers_order_the_slices_then_natural_file_names(tmp_path):
    uid = generate_uid()
    for value, (name, instance) in enumerate([("b.dcm", 1), ("a.dcm", 2), ("c.dcm", 3)]):
        write_slice(tmp_path / name, series_uid=uid, z=None, instance=instance, value=value)
    series = group_series(tmp_path.iterdir()).series[0]
    assert series.ordered_by == "instance number" and [p.name for p in series.files] == ["b.dcm", "a.dcm", "c.dcm"]

    uid = generate_uid()
    for name in ("s10.dcm", "s2.dcm", "s1.dcm"):
        write_slice(tmp_path / name, series_uid=uid, z=None, instance=None)
    series = next(s for s in group_series(tmp_path.iterdir()).series if s.series_uid == uid)
    assert series.ordered_by == "file name" and [p.name for p in series.files] == ["s1.dcm", "s2.dcm", "s10.dcm"]


def test_natural_order_puts_2_before_10():
    assert sorted(map(Path, ["f10", "f2", "F1", "f100"]), key=natural_key) == [Path(p) for p in
                                                                                ("F1", "f2", "f10", "f100")]


@pytest.mark.slow
def test_500_slices_group_from_headers_within_bounded_memory_and_read_pixels_only_when_shown(tmp_path):
    uid = generate_uid()
    paths = [write_slice(tmp_path / f"slice{n}.dcm", series_uid=uid, z=float(n), instance=n, size=(256, 256))
             for n in range(500)]
    tracemalloc.start()
    try:
        grouping = group_series(reversed(paths))
        stack = SeriesStack(grouping.series[0], keep=4)
        for index in range(0, 500, 50):
            stack.slice(index)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.name for p in grouping.series[0].files[:3]] == ["slice0.dcm", "slice1.dcm", "slice2.dcm"]
    assert peak < 16 * 2**20  # all 500 slices' pixels would be 64 MB; headers and the 4 kept slices stay far below
