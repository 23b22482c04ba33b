"""``radbench bench --plot`` and ``radbench batch --plot``: the app's own timing chart (:class:`TimingChart`, the
Compare view's and the Batch window's), rendered offscreen to a PNG or SVG file.

The widget rather than a plotting library, so that the pictures in the README are the app's: the same log axis,
whiskers, shared stages, speedup table and captions. Qt starts on its offscreen platform in the command's own process
(no display needed). A picture is :data:`PLOT_WIDTH` pixels wide and as tall as its content; a bench over several
files stacks one chart per file. Every chart is titled with what its numbers belong to (file, repeats, backend) and
the machine stamp.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QIODevice, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QWidget

from radbench.app.bench_command import agreement_lines
from radbench.app.timing_chart import BASELINES, TimingChart
from radbench.inference.atomic_file import write_atomically
from radbench.inference.benchmarking.compare import PREPROCESSING_TOTAL, Spread
from radbench.inference.benchmarking.environment import PACKAGES, environment, load_average
from radbench.inference.benchmarking.file_bench import PEERS, TOTAL_STAGE
from radbench.inference.benchmarking.runner import NUMBA_BACKENDS, Benchmark, FileResult
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.pipeline import PIPELINE_STAGES
from radbench.inference.threads import Threads

#: Width of every picture, in pixels.
PLOT_WIDTH = 1000
MARGIN_PX = 12  # around the picture; three times that between two files' charts
_APP: list[QApplication] = []  # the offscreen application, kept alive while the process draws


def save_bench_plot(benchmark: Benchmark, path: str | Path, warmup: int) -> QSize:
    """Each benchmarked file's stages per backend (medians, p10-p90 whiskers, decode and infer shared), stacked, to
    ``path`` (.png or .svg); returns the picture's size."""
    _application()
    before, after = benchmark.environment["load_average"]
    stamp = f"{_machine_stamp(benchmark.environment)}, load average (1, 5, 15 min) {before} before, {after} after"
    charts = [_bench_chart(result, benchmark, warmup, stamp) for result in benchmark.results]
    return _save(charts, path)


def save_batch_plot(summary: Mapping, path: str | Path) -> QSize:
    """A batch's time per stage summed over its files and its rate, as the Batch window draws it, to ``path``;
    ``summary``: ``radbench batch``'s (stage seconds, files/s, backend, workers and their threads)."""
    _application()
    chart = TimingChart()
    seconds = summary["stage_seconds"]
    chart.show_batch({s: seconds[s] * 1e3 for s in PIPELINE_STAGES if s in seconds}, summary["processed_this_run"],
                     summary["backend"], Threads(**summary["threads"]), summary["files_per_s"],
                     seconds.get("compile", 0.0) * 1e3)
    workers, scheduler = summary["workers"], summary.get("scheduler")
    where = f" of the Dask cluster at {scheduler}" if scheduler else ""
    _add_subtitle(chart, f"radbench batch, {workers} worker{'s' * (workers != 1)}{where}, {summary['wall_s']:.1f} s "
                         f"wall-clock · {_machine_stamp(environment())}, load average (1, 5, 15 min) {load_average()} "
                         f"at the end · {NOT_FOR_CLINICAL_USE}")
    return _save([chart], path)


def _machine_stamp(env: Mapping[str, object]) -> str:
    """"AMD EPYC, 2 cores (2 usable), Linux-6.1-x86_64, Python 3.11.7, numpy 2.4.6, ...": the environment stamp in
    one line (packages not installed left out)."""
    packages = ", ".join(f"{p} {env[p]}" for p in PACKAGES if env.get(p) not in (None, "not installed"))
    return (f"{env['cpu']}, {env['cores']} cores ({env['usable_cores']} usable), {env['platform']}, Python "
            f"{env['python']}, {packages}")


def _bench_chart(result: FileResult, benchmark: Benchmark, warmup: int, stamp: str) -> TimingChart:
    """One file's chart: every backend of every thread pass (a further pass's Numba backends named with their
    threads), decode and infer shared."""
    bench = result.bench
    latency = bench.latency[0] if bench.latency else None  # infer on the fewest intra-op threads
    onnx = result.latency_threads.get(latency.backend, 1) if latency else 1
    results: dict[str, dict[str, Spread]] = {}
    runs: dict[str, Threads | None] = {}
    for p in result.passes():
        for name in p.bench.backends:
            first = p.bench is bench
            label = name if first else f"{name} ({p.threads} thread{'s' * (p.threads != 1)})"
            results[label] = {_category(r.stage): Spread(r.samples_ms) for r in p.bench.records if r.backend == name}
            runs[label] = Threads(p.threads if first and name in NUMBA_BACKENDS else None, onnx)
    shared = {"decode": Spread(result.decode.samples_ms)} if result.decode else {}
    if latency:
        shared["infer"] = Spread(latency.samples_ms)
    repeats = max(r.repeats for r in bench.records)
    peers = [b for b in PEERS if b in results]  # speedups over the outside yardsticks, else naive and vectorized
    compiled = next((c for c in benchmark.compile.in_process if c.dtype == bench.dtype), None)
    chart = TimingChart()
    chart.show_spreads(results, shared, f"{html.escape(Path(bench.file).name)} [{bench.shape[0]} x {bench.shape[1]} "
                       f"{bench.dtype}, frame {bench.frame + 1} of {bench.frame_count}]: ms per stage",
                       runs, compiled, peers or BASELINES, notes=_bench_notes(result, repeats, warmup), repeats=repeats)
    _add_subtitle(chart, f"radbench bench, median of {repeats} repeat{'s' * (repeats != 1)} after {warmup} "
                         f"warm-up{'s' * (warmup != 1)}, backends interleaved; whiskers p10–p90 · {stamp} · "
                         f"{NOT_FOR_CLINICAL_USE}")
    return chart


def _bench_notes(result: FileResult, repeats: int, warmup: int) -> Sequence[str]:
    bench = result.bench
    method = (f"<b>Median of {repeats} repeats after {warmup} warm-up{'s' * (warmup != 1)}, backends interleaved "
              "round by round</b>; whiskers span p10–p90 of the repeats."
              + "".join(f" Note: {html.escape(n)}." for n in bench.notes))
    decode = result.decode
    shared = ("Grey: shared stages, the same for every backend, drawn once: "
              + (f"decode ({html.escape(decode.backend)} on {result.decoder_threads} thread"
                 f"{'s' * (result.decoder_threads != 1)}, {decode.repeats} loads)" if decode else "")
              + (", infer (ONNX Runtime, batch 1)" if bench.latency else "")
              + f". {PREPROCESSING_TOTAL.capitalize()}: the five stages of a run (numba-fused: its one stage).")
    return (method, "<br>".join(html.escape(line) for line in agreement_lines(result)), shared)


def _category(stage: str) -> str:
    """A bench stage as the chart names it."""
    return PREPROCESSING_TOTAL if stage == TOTAL_STAGE else stage


def _add_subtitle(chart: TimingChart, text: str) -> None:
    chart.title.setText(f"{chart.title.text()}<br><span style='font-size: 11px; font-weight: normal;'>"
                        f"{html.escape(text)}</span>")


def _application() -> QApplication:
    """The running QApplication, or one started on the offscreen platform (the command line has no window)."""
    if not _APP:
        _APP.append(QApplication.instance() or QApplication([sys.argv[0], "-platform", "offscreen"]))
    return _APP[0]


def _save(charts: Sequence[TimingChart], path: str | Path) -> QSize:
    """The charts stacked in one picture, :data:`PLOT_WIDTH` wide and each as tall as it needs, written atomically."""
    page = QWidget()
    page.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    page.setAutoFillBackground(True)
    top = MARGIN_PX
    for chart in charts:
        chart.setParent(page)
        height = chart.height_for(PLOT_WIDTH - 2 * MARGIN_PX)
        chart.setGeometry(MARGIN_PX, top, PLOT_WIDTH - 2 * MARGIN_PX, height)
        top += height + 3 * MARGIN_PX
    page.resize(PLOT_WIDTH, top - 2 * MARGIN_PX)
    page.show()
    QCoreApplication.processEvents()  # lays the charts out and fits their axis labels
    QCoreApplication.processEvents()
    size = page.size()
    data = _svg(page) if str(path).lower().endswith(".svg") else _png(page)
    page.close()
    write_atomically(path, lambda file: file.write(data), binary=True)
    return size


def _png(page: QWidget) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not page.grab().save(buffer, "PNG"):
        raise OSError("Qt could not encode the PNG")
    return bytes(buffer.data())


def _svg(page: QWidget) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(page.size())
    generator.setResolution(96)  # CSS pixels: a browser draws it PLOT_WIDTH pixels wide
    generator.setViewBox(QRect(0, 0, page.width(), page.height()))
    generator.setTitle("RadBench timing chart")
    painter = QPainter(generator)
    page.render(painter, QPoint())
    painter.end()
    return bytes(buffer.data())
