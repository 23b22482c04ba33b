"""The Inspector tab: every stage of the last Run as a thumbnail, the chosen stage in its viewer with its numbers
and histogram, what-if toggles that re-run the pipeline; all of it belonging to the scan and frame on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_grey_dicom

from radbench.inference.inspection import INSPECTED_STAGES, WHAT_IF_EXPLANATIONS
from radbench.inference.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT, MR = SAMPLES / "ct_small_128px.dcm", SAMPLES / "mr_head_multiframe_10_emri_small.dcm"


@pytest.fixture
def mono1(tmp_path) -> Path:
    """A small MONOCHROME1 chest film with a window preset: every what-if step changes its model input."""
    pixels = np.random.default_rng(2).normal(2000, 600, size=(96, 80)).clip(0, 4095)
    return write_grey_dicom(tmp_path / "mono1.dcm", pixels, "MONOCHROME1", BodyPartExamined="CHEST",
                            WindowCenter=2000, WindowWidth=1200)


def _open(qtbot, window, *paths):
    window.open_files(list(paths))
    qtbot.waitUntil(lambda: not window.opening, timeout=60000)


def _run(qtbot, window):
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)


def test_the_inspector_shows_each_stage_of_a_run_and_follows_scan_and_frame_switches(qtbot, window):
    inspector = window.inspector
    _open(qtbot, window, CT, MR)
    assert "ct_small_128px.dcm, frame 1 of 1: no inspection yet. Press Run" in inspector.message.text()
    assert not inspector.strip.isVisibleTo(inspector) and not inspector.toggles["equalize"].isEnabled()
    _run(qtbot, window)
    assert inspector.stage_names == list(INSPECTED_STAGES)
    assert inspector.heading.text() == "ct_small_128px.dcm, frame 1 of 1 · backend vectorized"
    assert inspector.strip.isVisibleTo(inspector) and inspector.toggles["equalize"].isEnabled()

    inspector.strip.setCurrentRow(INSPECTED_STAGES.index("resize"))  # a click on the resize thumbnail
    assert inspector.stage_info.text().startswith("resize: shape (128, 128) float32")
    assert "Picture: 0 -> black, 1 -> white" in inspector.stage_info.text()
    assert (inspector.viewer.scan.rows, inspector.viewer.scan.columns) == (128, 128)
    assert inspector.histogram.counts.sum() == 128 * 128
    shown = inspector.viewer.scan.pixels[0]
    resize = inspector.inspection(window.current_key).stage("resize")
    np.testing.assert_allclose(shown, resize.values * 255, atol=1e-3)  # picture levels of the fixed mapping
    inspector.strip.setCurrentRow(INSPECTED_STAGES.index("heatmap"))
    assert inspector.viewer._heat is not None and inspector.viewer.scan.rows == resize.values.shape[0]

    window.scan_list.setCurrentRow(1)  # the MR: nothing run on it
    assert inspector.message.text().startswith("mr_head_multiframe_10_emri_small.dcm, frame 6 of 10: no inspection")
    assert not inspector.strip.isVisibleTo(inspector) and inspector.stage_names == []
    _run(qtbot, window)
    assert inspector.heading.text().startswith("mr_head_multiframe_10_emri_small.dcm, frame 6 of 10")
    assert inspector.inspection(window.current_key).stage("decode").values.shape == (64, 64)
    window.scan_pane.frame_slider.setValue(0)
    assert inspector.message.text().startswith("mr_head_multiframe_10_emri_small.dcm, frame 1 of 10: no inspection")
    window.scan_list.setCurrentRow(0)
    assert inspector.heading.text() == "ct_small_128px.dcm, frame 1 of 1 · backend vectorized"
    assert inspector.stage_names == list(INSPECTED_STAGES)


def test_a_what_if_toggle_reruns_the_frame_and_shows_how_the_probability_and_heatmap_move(qtbot, window, mono1):
    inspector = window.inspector
    _open(qtbot, window, mono1)
    _run(qtbot, window)
    verdict = window.prediction_panel.label.text()
    for step, box in inspector.toggles.items():
        assert box.text() == f"Skip {step}" and WHAT_IF_EXPLANATIONS[step].count(". ") >= 1
    window.backend.setCurrentIndex(window.backend.findData("naive"))  # the what-if keeps the Run's backend
    inspector.toggles["invert"].setChecked(True)
    qtbot.waitUntil(lambda: not window.busy and bool(inspector.what_if_result.text()), timeout=60000)
    full = Pipeline(window.model, "vectorized").run(mono1).probabilities["PNEUMONIA"]
    changed = Pipeline(window.model, "vectorized").run(mono1, skip=["invert"]).probabilities["PNEUMONIA"]
    assert inspector.what_if_result.text() == (f"PNEUMONIA {full:.0%} -> {changed:.0%} without invert (not the "
                                               "model's intended input)").replace("%", " %")
    assert inspector.message.text().startswith("WHAT-IF run without invert")
    assert inspector.stage_names[-2:] == ["heatmap", "full heatmap"]
    what_if = inspector.inspection(window.current_key)
    assert what_if.prediction.skipped == ("invert",) and what_if.prediction.backend == "vectorized"
    assert window.prediction_panel.label.text() == verdict  # the verdict stays the full pipeline's

    inspector.toggles["invert"].setChecked(False)  # back to the full pipeline, without a run
    assert not window.busy and not inspector.what_if_result.text()
    assert inspector.inspection(window.current_key).prediction.skipped == ()
    assert "full heatmap" not in inspector.stage_names
    assert inspector.heading.text() == "mono1.dcm, frame 1 of 1 · backend vectorized"


def test_a_what_if_asked_for_while_a_job_runs_is_refused_and_the_boxes_say_what_ran(qtbot, window):
    inspector = window.inspector
    _open(qtbot, window, CT)
    _run(qtbot, window)
    window.run_current()  # a second Run: busy until its result comes back through the event loop
    assert window.busy
    inspector.toggles["equalize"].setChecked(True)
    assert not inspector.toggles["equalize"].isChecked()
    assert "Wait for the job going on to finish" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert inspector.inspection(window.current_key).prediction.skipped == ()
