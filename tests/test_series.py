"""DICOM files grouped into series and ordered as clinical viewers order them; slices read only when shown."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from series_files import write_mixed_folder, write_slice

from radbench.inference.series import SeriesStack, group_series, natural_key


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_mixed_folder(tmp_path)


def test_a_series_is_one_stack_in_anatomical_order_and_the_rest_stay_single(folder):
    grouping = group_series(sorted(folder.iterdir()))
    assert len(grouping.series) == 1
    series = grouping.series[0]
    assert series.ordered_by == "position" and series.title == "CT, 6 slices, series 3: Chest 1.0 mm"
    stack = SeriesStack(series)
    assert [int(stack.slice(i).pixels[0, 0, 0]) for i in range(stack.frame_count)] == [0, 1, 2, 3, 4, 5]
    assert [p.name for p in grouping.singles] == ["lone.dcm", "no_uid.dcm", "odd.dcm", "photo2.png"]
    assert {item.path.name: item.reason for item in grouping.left_out} == {
        "no_uid.dcm": "no Series Instance UID",
        "odd.dcm": "4 x 4 pixels in a series of 8 x 8",
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


def test_a_copy_of_a_slice_and_a_file_without_an_image_stay_out_of_the_stack(tmp_path):
    uid = generate_uid()
    for n in range(3):
        write_slice(tmp_path / f"s{n}.dcm", series_uid=uid, z=float(n), instance=n)
    (tmp_path / "s1_copy.dcm").write_bytes((tmp_path / "s1.dcm").read_bytes())  # the same instance saved twice
    report = dcmread(tmp_path / "s0.dcm")
    del report.Rows, report.Columns, report.PixelData  # a header of the series without an image (a report)
    report.SOPInstanceUID = generate_uid()
    report.save_as(tmp_path / "report.dcm")
    grouping = group_series(tmp_path.iterdir())
    assert [p.name for p in grouping.series[0].files] == ["s0.dcm", "s1.dcm", "s2.dcm"]
    assert {item.path.name: item.reason for item in grouping.left_out} == {
        "s1_copy.dcm": "the same instance (SOP Instance UID) as s1.dcm"}
    assert [p.name for p in grouping.singles] == ["report.dcm", "s1_copy.dcm"]
