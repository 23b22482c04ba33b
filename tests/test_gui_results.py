"""Results belong to one scan and one frame: the views follow the scan and frame on screen (or say what to press), a
result never yanks the user from the tab they chose, verdicts outside the model's domain are withheld, and opening
a glob or folder skips non-scans without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT, MR, CHEST = (SAMPLES / name for name in ("ct_small_128px.dcm", "mr_head_multiframe_10_emri_small.dcm",
                                               "chest_cr_rg1_j2k_lossless.dcm"))
LABELS = ("NORMAL", "PNEUMONIA")


def _open(qtbot, window, *paths):
    window.open_files(list(paths))
    qtbot.waitUntil(lambda: not window.opening, timeout=60000)


def _run(qtbot, window, backend="vectorized"):
    window.backend.setCurrentIndex(window.backend.findData(backend))
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)


def _views(window) -> dict[str, str]:
    return {"heading": window.prediction_panel.heading.text(), "label": window.prediction_panel.label.text(),
            "chart": window.timing_chart.title.text(), "badge": window.badge.isVisibleTo(window.timing_chart)}


def test_switching_scans_and_frames_shows_their_own_results_or_the_empty_state(qtbot, window):
    _open(qtbot, window, CT, MR)
    assert window.current_scan.path == CT
    window.repeats.setValue(1)
    window.compare_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    ct_results = _views(window)
    assert ct_results["chart"] == "ct_small_128px.dcm, frame 1 of 1: every backend" and ct_results["badge"]
    assert ct_results["heading"] == "ct_small_128px.dcm, frame 1 of 1 · backend vectorized"
    assert window.tabs.currentWidget() is window.timing_chart  # the first comparison shows its tab

    window.tabs.setCurrentWidget(window.metadata_panel)  # the user's choice of tab
    window.scan_list.setCurrentRow(1)  # the 10-frame MR, at its middle frame: nothing run on it yet
    assert _views(window) == {
        "heading": "mr_head_multiframe_10_emri_small.dcm, frame 6 of 10",
        "label": "No prediction for this frame yet: press Run.",
        "chart": "mr_head_multiframe_10_emri_small.dcm, frame 6 of 10: no timings yet. Press Run to time one "
                 "backend, or Compare all to time every backend.",
        "badge": False}
    assert window.timing_chart.values() == {} and not window.overlay.isEnabled()

    _run(qtbot, window, "naive")
    assert window.tabs.currentWidget() is window.prediction_panel  # the first run shows its tab, once
    mr_results = _views(window)
    assert mr_results["heading"] == "mr_head_multiframe_10_emri_small.dcm, frame 6 of 10 · backend naive"
    assert mr_results["chart"] == "mr_head_multiframe_10_emri_small.dcm, frame 6 of 10: naive"
    assert not mr_results["badge"] and set(window.timing_chart.values()) == {"naive", "shared"}

    window.tabs.setCurrentWidget(window.metadata_panel)
    _run(qtbot, window, "vectorized")
    assert window.tabs.currentWidget() is window.metadata_panel  # later runs leave the tab alone
    assert window.prediction_panel.heading.text().endswith("backend vectorized")

    window.scan_pane.frame_slider.setValue(0)
    assert _views(window)["heading"] == "mr_head_multiframe_10_emri_small.dcm, frame 1 of 10"
    assert _views(window)["label"] == "No prediction for this frame yet: press Run."
    assert "frame 1 of 10: no timings yet" in _views(window)["chart"] and window.timing_chart.values() == {}
    window.scan_pane.frame_slider.setValue(5)
    assert _views(window)["chart"] == "mr_head_multiframe_10_emri_small.dcm, frame 6 of 10: vectorized"

    window.scan_list.setCurrentRow(0)
    assert _views(window) == ct_results  # the CT's own comparison, backend and frame; nothing of the MR's
    assert set(window.timing_chart.values()) >= {"naive", "vectorized", "numba", "shared"}


def test_a_result_for_a_scan_no_longer_on_screen_waits_for_it(qtbot, window):
    _open(qtbot, window, CT, MR)
    window.run_current()  # on the CT; its result can only arrive once the event loop turns again
    window.scan_list.setCurrentRow(1)
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert (CT, 0) in window.predictions
    assert window.prediction_panel.label.text() == "No prediction for this frame yet: press Run."
    assert "no timings yet" in window.timing_chart.title.text()
    window.scan_list.setCurrentRow(0)
    assert window.prediction_panel.heading.text() == "ct_small_128px.dcm, frame 1 of 1 · backend vectorized"


@pytest.mark.parametrize("scan, reason", [
    (MR, "withheld: the model was trained on chest CR/DX images; this is an MR image of the HEAD"),
    (CT, "withheld: the model was trained on chest CR/DX images; this is a CT image"),
])
def test_outside_the_models_domain_no_label_is_shown_and_the_probabilities_wait_to_be_asked_for(
        qtbot, window, scan, reason):
    _open(qtbot, window, scan)
    _run(qtbot, window)
    panel = window.prediction_panel
    assert panel.label.text() == "No verdict: this scan is outside the model's domain"
    assert not any(label in panel.label.text() + panel.heading.text() for label in LABELS)
    assert panel.warnings.text().startswith(f"⚠ {reason}")
    assert panel.show_probabilities.isVisible() and not panel.probabilities.isVisible()
    panel.show_probabilities.click()  # on request: shown, greyed
    assert panel.probabilities.isVisible() and not panel.probabilities.isEnabled()
    assert all(bar.text().startswith(label) for label, bar in panel.bars.items())


def test_a_chest_film_keeps_its_label_with_the_image_warning_right_beside_it(qtbot, window):
    _open(qtbot, window, CHEST)
    _run(qtbot, window)
    panel, prediction = window.prediction_panel, window.predictions[(CHEST, 0)]
    assert prediction.withheld is None and panel.label.text().startswith(prediction.label)
    assert panel.warnings.isVisible() and "looks unlike the training images" in panel.warnings.text()
    layout = panel.layout()
    assert layout.indexOf(panel.warnings) == layout.indexOf(panel.label) + 1  # next to the label, above the bars
    assert panel.warnings.geometry().top() < panel.probabilities.geometry().top()
    assert not panel.show_probabilities.isVisible() and panel.probabilities.isVisible()
    assert panel.probabilities.isEnabled()


def test_non_scans_from_a_glob_or_a_folder_are_skipped_quietly_and_reported_when_named_alone(
        qtbot, window, tmp_path):
    everything = sorted(p for p in SAMPLES.iterdir() if p.is_file())  # the shell's ``radbench sample_images/*``
    assert {"README.md", "__init__.py"} <= {p.name for p in everything}
    scans = len(everything) - 2
    _open(qtbot, window, *everything)
    assert window.scan_list.count() == scans and window.last_problems == ""
    assert window.statusBar().currentMessage() == f"Opened {scans} scans; skipped 2 files that are not scans"

    (tmp_path / "broken.dcm").write_bytes(CT.read_bytes()[:900])
    (tmp_path / "notes.txt").write_text("not a scan")
    _open(qtbot, window, tmp_path)  # a folder: the broken file is reported, the text file is not
    assert window.last_problems.startswith("1 file could not be opened\n") and "broken.dcm: " in window.last_problems
    assert "notes.txt" not in window.last_problems

    _open(qtbot, window, SAMPLES / "README.md")  # named on its own
    assert window.last_problems == f"1 file is not a scan\n{SAMPLES / 'README.md'}: not a DICOM or image file (skipped)"
