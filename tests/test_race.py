"""The race, headless: every backend in turn on a real scan, its events in the order they happen, the demo preset's
schedule, naive's rows, the board the view draws, the finish's words, the CSV, cancelling, no silent fallback."""

from __future__ import annotations

import csv
from pathlib import Path

import numba as numba_module
import pytest
from pydicom.data import get_testdata_file

from radbench.app.race_view import lanes_html
from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking import race
from radbench.inference.benchmarking.race import (
    DEMO,
    DONE,
    WAITING,
    Compiled,
    LaneFinished,
    LaneStarted,
    RaceBoard,
    RacePlan,
    RowsDone,
    StageStarted,
    StageTimed,
    finish_line,
    run_race,
    save_race_csv,
)
from radbench.inference.benchmarking.schedule import Schedule
from radbench.inference.errors import BackendError, Cancelled
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.threads import compute_threads

CT = Path(get_testdata_file("CT_small.dcm"))
SMALL = RacePlan("small", (("vectorized", Schedule(1, 3)), ("numba", Schedule(1, 2)), ("naive", Schedule(0, 1))))


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def scan():
    return load_scan(CT)


@pytest.fixture(scope="module")
def raced(model, scan):
    events = []
    result = run_race(model, scan, plan=SMALL, report=events.append)
    return result, events


def test_each_lane_reports_its_stages_in_pipeline_order_one_backend_after_another(raced):
    result, events = raced
    lanes = [e.backend for e in events if isinstance(e, LaneStarted)]
    assert lanes == ["vectorized", "numba", "naive"] == list(result.lanes)
    for name, schedule in SMALL.lanes:
        mine = [e for e in events if getattr(e, "backend", None) == name
                or (isinstance(e, LaneFinished) and e.lane.backend == name)]
        first, last = events.index(mine[0]), events.index(mine[-1])
        assert events[first:last + 1] == mine  # no other lane's event in between: never two at the same time
        assert isinstance(mine[0], LaneStarted) and isinstance(mine[-1], LaneFinished)
        assert any(isinstance(e, Compiled) for e in mine) == (name == "numba")  # the compile apart, before the runs
        stages = [e for e in mine if isinstance(e, (StageStarted, StageTimed))]
        runs = schedule.warmup + schedule.repeats
        expected = [(kind, stage, run) for run in range(runs) for stage in STAGES
                    for kind in (StageStarted, StageTimed)]
        assert [(type(e), e.stage, e.run) for e in stages] == expected
        assert [e.warmup for e in stages if isinstance(e, StageTimed)] == [
            run < schedule.warmup for run in range(runs) for _ in STAGES]


def test_the_lane_results_are_the_timed_runs_the_events_reported(raced):
    result, events = raced
    for name, lane in result.lanes.items():
        timed = [e.ms for e in events if isinstance(e, StageTimed) and e.backend == name and not e.warmup]
        assert lane.repeats == SMALL.schedule(name).repeats
        assert [ms for run in zip(*(s.samples_ms for s in lane.stages.values())) for ms in run] == timed
        assert lane.total.samples_ms == tuple(map(sum, zip(*(s.samples_ms for s in lane.stages.values()))))
    assert result.frame == 0 and result.path == CT and result.wall_s > 0


def test_the_board_folds_the_events_into_what_the_lanes_show(raced):
    result, events = raced
    board = RaceBoard(SMALL)
    assert all(lane.status == WAITING and lane.total_ms is None for lane in board.lanes.values())
    for event in events:
        lane = board.apply(event)
        if isinstance(event, StageTimed) and not event.warmup:
            assert lane.stage_ms(event.stage) is not None and lane.stage == ""
        if isinstance(event, StageStarted):
            assert lane.stage == event.stage
    finished = RaceBoard.from_result(result)
    for name, lane in board.lanes.items():
        assert lane.status == finished.lanes[name].status == DONE
        assert lane.total_ms == finished.lanes[name].total_ms == result.lanes[name].total.median_ms
        assert all(lane.stage_ms(s) == result.lanes[name].stages[s].median_ms for s in STAGES)


def test_naive_reports_its_rows_and_their_rate_from_its_cancel_checks(model, scan, monkeypatch):
    monkeypatch.setattr(race, "PROGRESS_INTERVAL_S", 0.0)  # every check reported
    events = []
    run_race(model, scan, plan=RacePlan("naive", (("naive", Schedule(0, 1)),)), report=events.append)
    rescale = [e for e in events if isinstance(e, RowsDone) and e.stage == "rescale"]
    assert [e.rows for e in rescale] == list(range(1, scan.pixels.shape[1] + 1))  # one check before each row
    assert all(e.rows_per_s > 0 and not e.warmup for e in rescale)
    started = next(i for i, e in enumerate(events) if isinstance(e, StageStarted) and e.stage == "rescale")
    timed = next(i for i, e in enumerate(events) if isinstance(e, StageTimed) and e.stage == "rescale")
    assert started < events.index(rescale[0]) and events.index(rescale[-1]) < timed


def test_cancel_stops_the_race_inside_a_naive_stage(model, scan, monkeypatch):
    monkeypatch.setattr(race, "PROGRESS_INTERVAL_S", 0.0)
    events = []
    with pytest.raises(Cancelled):
        run_race(model, scan, plan=SMALL, report=events.append,
                 cancel=lambda: any(isinstance(e, RowsDone) and e.rows >= 10 for e in events[-1:]))
    assert isinstance(events[-1], RowsDone) and events[-1].backend == "naive" and events[-1].rows == 10


def test_a_backend_that_cannot_run_fails_loudly_and_none_takes_its_place(model, scan):
    events = []
    with pytest.raises(BackendError, match="no backend named 'turbo'"):
        run_race(model, scan, plan=RacePlan("bad", (("vectorized", Schedule(0, 1)), ("turbo", Schedule(0, 1)))),
                 report=events.append)
    assert {getattr(e, "backend", "vectorized") for e in events} == {"vectorized"}


def test_the_demo_preset_says_how_often_each_backend_runs():
    assert DEMO.backends == ("vectorized", "numba", "naive")
    assert DEMO.schedule("naive") == Schedule(0, 1, "one run takes seconds")
    assert DEMO.schedule("vectorized").repeats >= 5 and DEMO.schedule("numba").repeats >= 5
    assert DEMO.describe() == ("vectorized: 1 warm-up + 9 timed runs; numba: 1 warm-up + 9 timed runs; "
                               "naive: 1 timed run, no warm-up (one run takes seconds)")


def test_the_finish_says_the_speedups_in_words(raced):
    result, _ = raced
    lines = result.finish_lines()
    assert [line.split(":")[0] for line in lines] == ["vectorized", "numba", "numba"]
    assert lines[0].endswith(" naive") and lines[1].endswith(" naive") and lines[2].endswith(" vectorized")
    assert finish_line("numba", "naive", 640.4) == "numba: 640× faster than naive"
    assert finish_line("numba", "vectorized", 3.41) == "numba: 3.4× faster than vectorized"
    assert finish_line("numba", "vectorized", 0.5) == "numba: 2× slower than vectorized"
    assert finish_line("numba", "vectorized", None) == "numba: about as fast as vectorized"


def test_the_csv_holds_every_stage_and_total_of_every_lane(raced, tmp_path):
    result, _ = raced
    save_race_csv(result, tmp_path / "race.csv")
    with open(tmp_path / "race.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["backend"], r["stage"]) for r in rows] == [
        (name, stage) for name in result.lanes for stage in (*STAGES, "preprocessing total")]
    numba = next(r for r in rows if r["backend"] == "numba" and r["stage"] == "equalize")
    spread = result.lanes["numba"].stages["equalize"]
    assert numba["file"] == "CT_small.dcm" and numba["frame"] == "1" and numba["runs"] == "2"
    assert numba["warmups"] == "1" and float(numba["median_ms"]) == pytest.approx(spread.median_ms, abs=1e-4)
    assert [float(x) for x in numba["samples_ms"].split()] == pytest.approx(spread.samples_ms, abs=1e-4)
    assert {(r["backend"], r["numba_threads"]) for r in rows} == {  # Numba's setting on its rows only
        ("vectorized", ""), ("naive", ""), ("numba", str(numba_module.get_num_threads()))}


def test_the_numba_lane_names_the_threads_it_raced_on(model, scan):
    one = RacePlan("one", (("numba", Schedule(0, 1)),))
    with compute_threads(1):
        events = []
        result = run_race(model, scan, plan=one, report=events.append)
    started = next(e for e in events if isinstance(e, LaneStarted))
    assert started.threads == result.lanes["numba"].threads == 1
    board = RaceBoard.from_result(result)
    assert board.lanes["numba"].name == "numba (1 thread)"
    assert "numba&nbsp;(1&nbsp;thread)" in lanes_html(board)
