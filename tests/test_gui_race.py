"""The Race tab driven like a teacher would, offscreen: the lanes fill from the real race as its stages are
measured, the preset shown is the schedule run, the finish, exports, presentation mode, state per scan, cancel."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage, QTextDocument

from radbench.app import presentation
from radbench.app.main_window import MainWindow
from radbench.app.race_view import EXPORT_SIZE, ms_text
from radbench.inference.benchmarking import race
from radbench.inference.benchmarking.race import DEMO, LaneFinished, LaneStarted, RowsDone, StageTimed, runs_text
from radbench.inference.model import NOT_FOR_CLINICAL_USE

CT = Path(get_testdata_file("CT_small.dcm"))
TIBIA = Path(__file__).resolve().parent.parent / "sample_images" / "tibia_cr_rg3_8bit_440px.png"


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    win = MainWindow(settings=QSettings(str(tmp_path / "radbench.ini"), QSettings.Format.IniFormat),
                     warm_numba=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    return win


def _open(qtbot, window, path):
    window.open_files([path])
    qtbot.waitUntil(lambda: window.current_scan is not None and window.current_scan.path == path, timeout=30000)


def _race(qtbot, window):
    window.race_current()
    assert window.busy and window.tabs.currentWidget() is window.race_view
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    return window.races[(window.current_scan.path, window.viewer.frame)]


def _track(window) -> str:
    """The lanes as the label shows them, in plain words."""
    document = QTextDocument()
    document.setHtml(window.race_view.panel.track.text())
    return document.toPlainText().replace("\u2060", "").replace("\xa0", " ")


def test_the_lanes_fill_stage_by_stage_as_the_real_race_measures_them(qtbot, window, monkeypatch):
    """On a 440 x 440 film naive takes long enough for many batches of events: after each one, every stage timed
    so far shows its median, stages not yet timed show none, and naive's rows show while it is in a stage."""
    _open(qtbot, window, TIBIA)
    seen = []  # per batch: (the events, the lanes' text right after the view took them)

    def after_batch(events):
        seen.append((events, _track(window)))

    window.run_toolbar.race_events.connect(after_batch)  # connected after the view: called once it has redrawn
    result = _race(qtbot, window)
    assert len(seen) >= 3  # the lanes were redrawn as the race went, not once at its end
    timed = [e for events, _ in seen for e in events if isinstance(e, StageTimed) and not e.warmup]
    assert [(e.backend, e.stage) for e in timed] == [
        (name, stage) for name, schedule in DEMO.lanes for _ in range(schedule.repeats) for stage in result.lanes[
            name].stages]  # in order: lane after lane, run after run, stage after stage
    naive_timed = []
    for events, text in seen:
        naive_timed += [e for e in events if isinstance(e, StageTimed) and e.backend == "naive"]
        for e in naive_timed:
            assert ms_text(e.ms) in text  # naive's one run: each stage's own time, the moment it is measured
        in_naive_stage = not isinstance(events[-1], LaneFinished) and events[-1].backend == "naive"
        if any(isinstance(e, RowsDone) for e in events) and in_naive_stage:  # a batch may end with the lane's end
            last = [e for e in events if isinstance(e, RowsDone)][-1]
            if not any(isinstance(e, StageTimed) and e.stage == last.stage for e in events):
                assert f"{last.rows:,} rows" in text and "rows/s" in text
    events, mid = next((events, text) for events, text in seen
                       if any(isinstance(e, LaneStarted) and e.backend == "naive" for e in events))
    assert not any(isinstance(e, LaneFinished) for e in events[-1:])  # naive takes longer than a poll here
    assert mid.count("median of 9 timed runs") == 2 and "1 timed run" not in mid  # the fast lanes done, naive going
    finish = window.race_view.panel.finish
    assert finish.isVisible() and finish.text().splitlines() == result.finish_lines()
    assert re.search(r"numba: [\d,.]+× faster than naive", finish.text())


def test_the_preset_shown_is_the_schedule_that_ran_and_numba_compile_is_apart(qtbot, window):
    _open(qtbot, window, CT)
    result = _race(qtbot, window)
    panel = window.race_view.panel
    assert DEMO.describe() in panel.plan.text() and "one after another, never at the same time" in panel.plan.text()
    for name, schedule in DEMO.lanes:
        assert result.lanes[name].repeats == schedule.repeats and result.lanes[name].schedule == schedule
        assert runs_text(schedule) in panel.plan.text()
    assert "median of 9 timed runs" in _track(window) and "1 timed run" in _track(window)
    assert panel.compile.isVisible() and "never in a race time" in panel.compile.text()
    assert f"on {result.usable_cpus} usable cores" in panel.machine.text()
    assert panel.notice.text() == NOT_FOR_CLINICAL_USE and panel.notice.isVisible()
    assert panel.title.text().startswith("CT_small.dcm, frame 1 of 1")


def test_the_finished_race_exports_as_a_picture_and_a_csv(qtbot, window, tmp_path):
    _open(qtbot, window, CT)
    assert not window.race_view.save_png.isEnabled()
    result = _race(qtbot, window)
    assert window.race_view.save_png.isEnabled() and window.race_view.save_csv.isEnabled()
    window.race_view.export_png(tmp_path / "race.png")
    picture = QImage(str(tmp_path / "race.png"))
    assert (picture.width(), picture.height()) == (EXPORT_SIZE.width(), EXPORT_SIZE.height())
    assert len({picture.pixel(x, y) for x in range(0, picture.width(), 16) for y in range(0, 400, 8)}) > 4
    window.race_view.export_csv(tmp_path / "race.csv")
    with open(tmp_path / "race.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {(r["backend"], r["runs"]) for r in rows} == {(n, str(lane.repeats)) for n, lane in result.lanes.items()}


def test_presentation_mode_scales_the_type_and_puts_the_race_beside_the_image(qtbot, window):
    _open(qtbot, window, CT)
    panel = window.race_view.panel
    before = (window.font().pointSizeF(), panel.finish.font().pointSizeF(), panel.track.font().pointSizeF())
    window.tabs.setCurrentWidget(window.metadata_panel)
    window.presentation_action.trigger()
    qtbot.waitUntil(lambda: window.isFullScreen())
    after = (window.font().pointSizeF(), panel.finish.font().pointSizeF(), panel.track.font().pointSizeF())
    assert after == pytest.approx(tuple(size * presentation.SCALE for size in before))
    assert window.tabs.currentWidget() is window.race_view and not window.scan_list.isVisible()
    assert window.scan_pane.isVisible() and window.statusBar().isVisible()
    sizes = window.splitter.sizes()  # half and half as far as the image's controls allow on this small screen
    assert sizes[0] == 0 and min(sizes[1:]) >= 0.4 * sum(sizes)
    window.presentation_action.trigger()
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert (window.font().pointSizeF(), panel.finish.font().pointSizeF()) == pytest.approx(before[:2])
    assert window.scan_list.isVisible() and window.tabs.currentWidget() is window.metadata_panel


def test_each_scan_shows_its_own_race_or_an_empty_board_naming_it(qtbot, window):
    _open(qtbot, window, CT)
    _race(qtbot, window)
    _open(qtbot, window, TIBIA)
    title = window.race_view.panel.title.text()
    assert title.startswith("tibia_cr_rg3_8bit_440px.png, frame 1 of 1: no race yet")
    assert window.race_view.result is None and not window.race_view.panel.finish.isVisible()
    assert "waiting" in _track(window) and " ms" not in _track(window)
    window.scan_list.setCurrentRow(0)
    assert window.race_view.result is window.races[(CT, 0)]


def test_cancel_stops_the_race_where_it_got_and_says_so(qtbot, window, monkeypatch):
    monkeypatch.setattr(race, "PROGRESS_INTERVAL_S", 0.0)
    _open(qtbot, window, TIBIA)
    window.run_toolbar.race_events.connect(
        lambda events: window.cancel() if any(isinstance(e, RowsDone) for e in events) else None)
    window.race_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    assert (TIBIA, 0) not in window.races
    assert "race stopped" in window.race_view.panel.title.text()
    lanes = window.race_view.board.lanes
    assert lanes["vectorized"].result is not None and lanes["naive"].result is None
    assert _track(window).count("rows/s") <= 1 and window.run_toolbar.race_button.isEnabled()
