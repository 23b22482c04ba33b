"""DICOM files grouped into series and ordered as clinical viewers order them; slices read only when shown."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from series_files import write_mixed_folder, write_slice

from radbench.app.cli import main
from radbench.inference.series import SeriesStack, expand, group_series, natural_key, series_fields, series_uid_stand_in


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


def test_folders_expand_to_their_files_in_natural_order(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "F3.png"):
        (tmp_path / name).touch()
    assert [p.name for p in expand([tmp_path])] == ["f1.png", "f2.png", "F3.png", "f10.png"]


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


def test_predict_series_classifies_one_slice_per_series_and_names_it(folder, capsys):
    assert main(["predict", "--series", str(folder), "--json", "--frame", "-1"]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    by_file = {Path(r["file"]).name: r for r in records}
    series = group_series(expand([folder])).series[0]
    top = by_file.pop(series.files[-1].name)  # --frame -1: the last slice in anatomical order
    assert top["series"] == {"title": "CT, 6 slices, series 3: Chest 1.0 mm", "slice": 5, "slices": 6,
                             "ordered_by": "position", "instance": series.instances[-1],
                             "series_uid": series_uid_stand_in(series.series_uid)}
    assert sorted(by_file) == ["lone.dcm", "no_uid.dcm", "odd.dcm", "photo2.png"]  # every other file, on its own
    assert all("series" not in r for r in by_file.values()) and series.series_uid not in out
    assert f"note: {folder / 'odd.dcm'} left out of a series (4 x 4 pixels in a series of 8 x 8)" in err

    assert main(["predict", "--series", str(folder), "--frame", "6"]) == 1
    assert ("--frame: slice index 6 out of range: the series has 6 slices (indices 0 to 5, counted from 0; -1 is the "
            "last)") in capsys.readouterr().err


@pytest.mark.slow
def test_batch_keeps_one_row_per_file_with_a_stand_in_series_uid_and_the_instance(folder, tmp_path):
    out = tmp_path / "rows.csv"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1"]) == 0
    text = out.read_text()
    rows = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(text))}
    series = group_series(expand([folder])).series[0]
    assert len(rows) == 10  # every file: the six slices, the two left out, the lone slice, the PNG
    stand_in = series_uid_stand_in(series.series_uid)
    assert {rows[p.name]["series_uid"] for p in series.files} == {stand_in} and series.series_uid not in text
    assert [int(rows[p.name]["instance"]) for p in series.files] == list(series.instances)
    assert rows["odd.dcm"]["series_uid"] == stand_in and rows["no_uid.dcm"]["series_uid"] == ""
    assert rows["photo2.png"]["series_uid"] == rows["photo2.png"]["instance"] == ""


def test_grouping_reads_headers_without_a_word_on_stderr_even_about_an_identifying_value(tmp_path, capfd):
    secret = "1.2.826.0.1.4711.SECRET"  # an invalid UID: pydicom warns, quoting it
    uid = generate_uid()
    for n in range(2):
        ds = dcmread(write_slice(tmp_path / f"s{n}.dcm", series_uid=uid, z=float(n), instance=n))
        with pytest.warns(UserWarning):
            ds.SOPInstanceUID = f"{secret}{n}"
        ds.save_as(tmp_path / f"s{n}.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        grouping = group_series(tmp_path.iterdir())
        assert series_fields(tmp_path / "s0.dcm")["instance"] == 0
    assert len(grouping.series[0].files) == 2 and secret not in "".join(capfd.readouterr())
