"""``radbench bench --plot`` and ``radbench batch --plot``: the app's timing chart rendered offscreen to a file, the
size the command says, every backend's bar drawn in its colour."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from PySide6.QtGui import QColor, QImage

from radbench.app.bench_command import add_parser, run_bench
from radbench.app.cli import main
from radbench.app.timing_chart import COLOURS, SHARED_COLOUR, TimingChart
from radbench.app.timing_plots import PLOT_WIDTH
from radbench.inference.threads import Threads

CT = get_testdata_file("CT_small.dcm")
SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RADBENCH = shutil.which("radbench", path=str(Path(sys.executable).parent)) or "radbench"


def _bench(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_bench(parser.parse_args(["bench", *argv]), out, err)
    return code, out.getvalue(), err.getvalue()


def _colours(image: QImage) -> set[str]:
    """The colours of the picture's pixels, sampled every 2 px (bars are at least 6 px thick)."""
    return {image.pixelColor(x, y).name() for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)}


def test_bench_plot_draws_every_backend_of_one_file_at_the_size_it_prints(qapp, tmp_path):
    out = tmp_path / "bench.png"
    code, text, _ = _bench(CT, "--backends", "naive,vectorized,numba,opencv", "--repeat", "2", "--no-fresh-compile",
                           "--plot", str(out))
    image = QImage(str(out))
    assert code == 0 and not image.isNull()
    assert image.width() == PLOT_WIDTH and 800 < image.height() < 1600  # 8 rows of 4 bars, the caption
    assert f"Plot written to {out} ({image.width()} x {image.height()} px)" in text
    drawn = _colours(image)
    assert {QColor(COLOURS[b]).name() for b in ("naive", "vectorized", "numba", "opencv")} <= drawn
    assert QColor(SHARED_COLOUR).name() in drawn  # decode and infer, once


def test_bench_plot_stacks_a_chart_per_file_and_writes_svg(qapp, tmp_path):
    one, two = tmp_path / "one.svg", tmp_path / "two.svg"
    for target, files in ((one, [CT]), (two, [CT, str(SAMPLES / "ct_small_128px.dcm")])):
        assert _bench(*files, "--backends", "vectorized,numba", "--repeat", "1", "--no-fresh-compile", "--plot",
                      str(target))[0] == 0
    svg = two.read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and f'viewBox="0 0 {PLOT_WIDTH} ' in svg
    assert "CT_small.dcm" in svg and "ct_small_128px.dcm" in svg and "median of 1 repeat after 1 warm-up" in svg
    heights = [int(p.read_text(encoding="utf-8").split('viewBox="0 0 ')[1].split()[1].rstrip('"')) for p in (one, two)]
    assert heights[1] > 1.9 * heights[0]


def test_bench_plot_refuses_a_format_it_cannot_write_and_a_missing_folder_before_timing(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _bench(CT, "--plot", str(tmp_path / "bench.jpg"))
    assert "needs a file name ending in .png or .svg" in capsys.readouterr().err
    code, text, err = _bench(CT, "--plot", str(tmp_path / "missing" / "bench.png"))
    assert code == 1 and text == "" and "missing does not exist (folders are not created)" in err
    code, text, err = _bench(CT, "--decoders", "--plot", str(tmp_path / "decoders.png"))
    assert code == 1 and text == "" and "--decoders has no plot" in err


def test_batch_plot_draws_the_time_per_stage_summed_over_the_files(qapp, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("ct_small_128px.dcm", "tibia_cr_rg3_8bit_440px.png"):
        shutil.copy(SAMPLES / name, folder / name)
    out = tmp_path / "batch.png"
    assert main(["batch", str(folder), "--out", str(tmp_path / "rows.csv"), "--workers", "1", "--plot", str(out)]) == 0
    image = QImage(str(out))
    assert image.width() == PLOT_WIDTH and 350 < image.height() < 800  # 11 rows of one bar, the caption
    assert f"plot: {out} ({image.width()} x {image.height()} px)" in capsys.readouterr().err
    assert {QColor(COLOURS["vectorized"]).name(), QColor(SHARED_COLOUR).name()} <= _colours(image)


def test_the_batch_chart_names_its_files_rate_and_workers_warm_ups(qtbot):
    chart = TimingChart()
    qtbot.addWidget(chart)
    chart.show_batch({"decode": 900.0, "rescale": 12.0, "infer": 40.0}, 3, "numba", Threads(1, 1), 2.5, 1500.0)
    assert chart.title.text() == "Time per stage summed over 3 files (numba, 2.50 files/s)"
    assert chart.values()["numba"]["rescale"] == 12.0 and chart.values()["shared"]["decode"] == 900.0
    assert "Numba's warm-ups in the workers (compile or cache load): 1.5 s summed, in no total." in chart.caption.text()
    chart.show_batch({"decode": 0.0}, 1, "numba", Threads(1, 1))
    assert chart.title.text() == "Time per stage: no file was classified." and chart.values() == {}


def test_the_console_script_draws_without_a_display(tmp_path):
    """No QT_QPA_PLATFORM, no DISPLAY: the command starts Qt offscreen itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "bench.png"
    result = subprocess.run([RADBENCH, "bench", CT, "--backends", "vectorized", "--repeat", "1", "--no-fresh-compile",
                             "--plot", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert image.width() == PLOT_WIDTH and f"({image.width()} x {image.height()} px)" in result.stdout
