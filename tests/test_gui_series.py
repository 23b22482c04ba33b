"""A folder of DICOM slices opened in the window: one stack per series in anatomical order, slices read when shown,
results kept per slice, the files left out named with the reason."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt
from series_files import write_mixed_folder, write_slice

from radbench.app import scan_files
from radbench.inference.series import SeriesStack


def _open(qtbot, window, *paths) -> None:
    window.open_files(list(paths))
    qtbot.waitUntil(lambda: not window.opening, timeout=30000)


def _shown_value(window) -> int:
    """The value every pixel of the slice on screen holds (the generated slices tell themselves apart by it)."""
    return int(window.viewer.scan.pixels[0, 0, 0])


def test_a_series_is_one_stack_in_anatomical_order_and_the_foreign_files_are_named(qtbot, window, tmp_path):
    folder = write_mixed_folder(tmp_path / "scans")
    _open(qtbot, window, folder)
    names = [window.scan_list.item(row).text() for row in range(window.scan_list.count())]
    assert names == ["CT, 6 slices, series 3: Chest 1.0 mm", "lone.dcm", "no_uid.dcm", "odd.dcm", "photo2.png"]
    assert isinstance(window.scans[0], SeriesStack) and window.scan_list.currentRow() == 0
    assert scan_files.recent_files(window.settings)[0] == str(folder)  # Open recent reopens the series' folder
    assert window.statusBar().currentMessage() == (
        "Opened 10 files: 1 series (6 slices), 4 single files; 2 files left out of a series: no_uid.dcm (no Series "
        "Instance UID), odd.dcm (4 x 4 pixels in a series of 8 x 8)")
    pane = window.scan_pane
    assert _shown_value(window) == 3 and pane.frame == 3  # the middle slice first
    assert pane.frame_row.isVisible() and pane.frame_name.text() == "Slice" and pane.frame_label.text() == "4 / 6"
    assert window.viewer.corner_texts()[1] == "Slice 4 / 6"

    window.viewer.setFocus()
    seen = []
    for key in (Qt.Key.Key_Home, Qt.Key.Key_PageDown, Qt.Key.Key_Down, Qt.Key.Key_End, Qt.Key.Key_Up):
        qtbot.keyClick(window.viewer, key)
        seen.append(_shown_value(window))
        assert pane.frame == seen[-1] and window.viewer.corner_texts()[1] == f"Slice {seen[-1] + 1} / 6"
    assert seen == [0, 1, 2, 5, 4]  # frame stepping follows the position along the slice normal

    window.tabs.setCurrentWidget(window.metadata_panel)
    fields = window.metadata_panel.fields()
    series = window.scans[0].series
    assert fields["Series:"] == "3: Chest 1.0 mm"
    assert fields["Slices:"] == "6, ordered by position along the slice normal"
    assert fields["Slice spacing:"] == "10 mm" and f"This slice: {series.files[4].name}" in fields
    assert fields["Slice:"] == f"slice 5 of 6, instance {series.instances[4]}, at 10 mm"
    assert "File:" not in fields and fields["Modality:"] == "CT"


def test_run_classifies_the_shown_slice_and_its_result_stays_with_that_slice(qtbot, window, tmp_path):
    folder = write_mixed_folder(tmp_path / "scans")
    _open(qtbot, window, folder)
    stack, pane = window.scans[0], window.scan_pane
    pane.go_to_frame(1)
    window.run_current()
    pane.step_frame(1)  # moved on before the run finished: its result must not show on this slice
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    second, third = stack.series.files[1], stack.series.files[2]
    assert window.predictions[(second, 0)].path == second and (third, 0) not in window.predictions
    panel = window.prediction_panel
    assert panel.label.text() == "No prediction for this frame yet: press Run."
    assert panel.heading.text().startswith(f"{third.name}, slice 3 of 6")
    assert second.name in window.statusBar().currentMessage()  # "The run of ... is ready: select that scan"

    pane.step_frame(-1)
    assert panel.heading.text().startswith(f"{second.name}, slice 2 of 6") and "backend" in panel.heading.text()
    assert "outside the model's domain" in panel.label.text()  # a CT: withheld, but shown for its own slice
    window.scan_list.setCurrentRow(1)  # lone.dcm
    assert panel.heading.text() == "lone.dcm, frame 1 of 1"
    window.scan_list.setCurrentRow(0)  # back to the series: its middle slice, which has no result
    assert pane.frame == 3 and panel.heading.text().startswith(f"{stack.series.files[3].name}, slice 4 of 6")
    assert panel.label.text() == "No prediction for this frame yet: press Run."


def test_an_unreadable_slice_empties_the_view_and_names_the_file(qtbot, window, tmp_path):
    uid = generate_uid()
    paths = [write_slice(tmp_path / f"s{n}.dcm", series_uid=uid, z=float(n), instance=n, value=n) for n in range(3)]
    paths[2].write_bytes(paths[2].read_bytes()[:-40])  # the header intact, the pixel data cut short
    _open(qtbot, window, tmp_path)
    assert _shown_value(window) == 1 and window.run_button.isEnabled()
    window.scan_pane.go_to_frame(2)
    assert window.viewer.scan is None and window.current_scan is None and not window.run_button.isEnabled()
    assert window.scan_pane.frame_label.text() == "3 / 3: unreadable"
    assert window.statusBar().currentMessage().startswith(f"{paths[2]}: ")
    assert "This slice cannot be read" in window.prediction_panel.label.text()
    fields = window.metadata_panel.fields()  # nothing left of the slice before: the series, this slice, the problem
    assert fields["Slice:"] == "slice 3 of 3, instance 2, at 2 mm" and fields["Problem:"].startswith(f"{paths[2]}: ")
    assert "Size:" not in fields and window.metadata_panel.model.rowCount() == 0
    window.scan_pane.go_to_frame(0)
    assert _shown_value(window) == 0 and window.run_button.isEnabled()


def test_more_files_left_out_than_the_status_bar_names_are_listed_in_one_message(qtbot, window, tmp_path):
    uid = generate_uid()
    for n in range(2):
        write_slice(tmp_path / f"s{n}.dcm", series_uid=uid, z=float(n), instance=n)
    for n in range(4):
        write_slice(tmp_path / f"stray{n}.dcm", series_uid=None, z=float(n), instance=n)
    _open(qtbot, window, tmp_path)
    assert window.scan_list.count() == 5  # the series, then the four strays on their own
    assert window.statusBar().currentMessage().endswith(
        "stray0.dcm (no Series Instance UID), stray1.dcm (no Series Instance UID), stray2.dcm (no Series Instance "
        "UID) and 1 more (listed in the message)")
    assert window.last_problems.splitlines() == ["4 files left out of a series (each opened on its own)",
                                                 *(f"{tmp_path / f'stray{n}.dcm'}: no Series Instance UID"
                                                   for n in range(4))]
    assert window.statusBar().toolTip() == f"Last opening: {window.statusBar().currentMessage()}"


@pytest.mark.slow
def test_500_slices_open_as_one_stack_within_bounded_memory(qtbot, window, tmp_path):
    uid = generate_uid()
    for n in range(500):
        write_slice(tmp_path / f"slice{n}.dcm", series_uid=uid, z=float(-n), instance=n, size=(256, 256), value=n)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        _open(qtbot, window, tmp_path)
        opened_s = time.perf_counter() - started
        for _ in range(40):
            window.scan_pane.step_frame(5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"500 slices of 256 x 256: opened in {opened_s:.2f} s, traced peak {peak / 2**20:.1f} MiB")
    assert window.scan_list.count() == 1 and window.scans[0].frame_count == 500
    assert window.scan_pane.frame == 450 and _shown_value(window) == 49  # ordered by position: slice n at z = -n
    assert peak < 24 * 2**20  # every slice's pixels would be 64 MiB; headers and a few kept slices stay far below
