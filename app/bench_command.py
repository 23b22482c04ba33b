"""``radbench bench``: time every preprocessing stage per backend, Numba's compile and ONNX Runtime's latency."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from typing import TextIO

from radbench.app.argument_types import DECODER_HELP, PLOT_HELP, capped_threads, count, counts, plot_file
from radbench.app.samples import sample_files
from radbench.inference.atomic_file import OutputError, check_output
from radbench.inference.benchmarking.environment import PACKAGES
from radbench.inference.benchmarking.file_bench import (
    DEFAULT_BACKENDS,
    DIFFERS_BY_DESIGN,
    FUSED,
    KNOWN_BACKENDS,
    TOTAL_STAGE,
    YARDSTICK,
    FileBench,
    speedups,
)
from radbench.inference.benchmarking.memory import MemoryPeak, memory_peak
from radbench.inference.benchmarking.numba_compile import CompileReport, CompileTime, describe
from radbench.inference.benchmarking.runner import (
    NUMBA_BACKENDS,
    Benchmark,
    FileError,
    FileResult,
    ladder,
    run_benchmark,
    write_json,
)
from radbench.inference.benchmarking.schedule import LARGE_FRAME_PIXELS, LARGE_NAIVE_REPEATS
from radbench.inference.errors import RadBenchError
from radbench.inference.loading.decoders import DECODER_NAMES
from radbench.inference.model import NOT_FOR_CLINICAL_USE


def add_parser(commands) -> None:
    bench = commands.add_parser("bench", help="time every preprocessing stage per backend, Numba's compile and "
                                              "ONNX Runtime's latency")
    bench.add_argument("files", nargs="*", metavar="FILE", help="scans to time (default: the bundled samples)")
    bench.add_argument("--backends", type=_backend_list, default=",".join(DEFAULT_BACKENDS),
                       help=f"comma-separated, run interleaved in this order (default: {','.join(DEFAULT_BACKENDS)}; "
                            "add numba-fused for the fused Numba path, timed as one stage, and opencv for the "
                            "OpenCV peer, pip install 'radbench[peers]')")
    bench.add_argument("--repeat", type=count(1), default=10,
                       help=f"timed runs per backend (default 10; naive runs at most {LARGE_NAIVE_REPEATS} "
                            f"on frames over {LARGE_FRAME_PIXELS / 1e6:g} Mpx)")
    bench.add_argument("--warmup", type=count(0), default=1, help="untimed runs per backend first (default 1)")
    bench.add_argument("--json", metavar="OUT.json", default=None, help="also write every record as JSON")
    bench.add_argument("--plot", type=plot_file, metavar="OUT.png|OUT.svg", default=None,
                       help=PLOT_HELP + ": per file, every backend's median per stage with p10-p90 whiskers, titled "
                            "with the file, the repeats and the machine stamp")
    bench.add_argument("--memory", action="store_true",
                       help="also measure each backend's peak memory of loading and preprocessing each file, "
                            "in fresh processes")
    bench.add_argument("--no-fresh-compile", action="store_true",
                       help="skip timing Numba's cold compile and cache load in fresh processes (saves about 5-10 s)")
    bench.add_argument("--decoder", choices=DECODER_NAMES, default=None, metavar="NAME", help=DECODER_HELP)
    bench.add_argument("--decoders", action="store_true",
                       help="instead of the stages, time every installed decoder on each file (default: the bundled "
                            "samples and pydicom's and pydicom-data's test files of every compressed transfer "
                            "syntax), pinned to one CPU and then on its own threads, each checked against pydicom's "
                            "pixels; --repeat decodes each (default 10), --json writes the table")
    bench.add_argument("--threads", type=counts(1), default=None, metavar="N[,N...]",
                       help="Numba thread counts to time, e.g. 1,2: one pass per count (the first, at the lowest, "
                            "times every backend; later ones only numba and numba-fused, as the others do not use "
                            "Numba's threads), then the parallel gain as its own rung of the optimization ladder, "
                            "apart from the JIT gain; also ONNX Runtime's latency threads (default: one pass on "
                            "Numba's default, every CPU this process may use; latency on 1 and 2 threads; counts "
                            "above the usable CPUs are capped, with a note)")


def run_bench(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print a table per file as it finishes, then compile times and the environment; 1 if any file failed."""
    out, err = out or sys.stdout, err or sys.stderr

    def report(item: FileResult | FileError) -> None:
        if isinstance(item, FileError):
            print(f"{'skipped' if item.skipped else 'error'}: {item}", file=err, flush=True)
        else:
            print(file_table(item), file=out, flush=True)

    if args.decoders and args.plot:
        print("radbench bench: --plot draws the stages' timings; --decoders has no plot", file=err)
        return 1
    try:
        for path in (args.json, args.plot):
            if path:
                check_output(path)  # before the minutes of timing
    except OutputError as exc:
        print(f"radbench bench: {exc}", file=err)
        return 1
    if args.decoders:
        return _run_decoders(args, out, err)
    threads = tuple(dict.fromkeys(capped_threads(n, err) for n in args.threads)) if args.threads else None
    try:
        benchmark = run_benchmark(args.files or sample_files(), backends=args.backends, repeats=args.repeat,
                                  warmup=args.warmup, fresh_compile=not args.no_fresh_compile, threads=threads,
                                  decoder=args.decoder, report=report)
    except (RadBenchError, OutputError) as exc:
        print(f"radbench bench: {exc}", file=err)
        return 1
    if args.memory:
        benchmark = dataclasses.replace(benchmark, memory=_memory(benchmark, args.backends, args.decoder, out, err))
    print(compile_text(benchmark.compile, args.backends), file=out)
    print(environment_text(benchmark.environment), file=out)
    before, after = benchmark.environment["load_average"]
    print(f"  load average (1, 5, 15 min) before {before}, after {after}", file=out)
    status = _write_json(benchmark, args.json, out, err) if args.json else 0
    if args.plot and benchmark.files:
        status = _write_plot(benchmark, args, out, err) or status
    elif args.plot:
        print(f"radbench bench: {args.plot} not written: no file was benchmarked", file=err)
    failed = sum(not e.skipped for e in benchmark.errors)
    if benchmark.errors:
        print(f"{len(benchmark.files)} benchmarked, {failed} failed, {len(benchmark.errors) - failed} skipped",
              file=err)
    return 1 if failed or not benchmark.files else status


def file_table(result: FileResult) -> str:
    """Stage rows x backend columns of median (p90 / min) ms (a Numba backend's column per thread count, named with
    it), then repeats, speedups, the optimization ladder, tensor agreement, latency."""
    bench = result.bench
    rows, cols = bench.shape
    columns = {_column(b, p.threads): (p.bench, b) for p in result.passes() for b in p.bench.backends}
    cells = {(label, r.stage): f"{_ms(r.median_ms)} ({_ms(r.p90_ms)} / {_ms(r.min_ms)})"
             for label, (pass_bench, backend) in columns.items() for r in pass_bench.records if r.backend == backend}
    width = max(len(c) for c in [*cells.values(), *columns]) + 2
    lines = [f"{bench.file}  [{rows} x {cols} {bench.dtype}, frame {bench.frame + 1} of {bench.frame_count}]",
             *_decode_lines(result),
             "  ms per run: median (p90 / min)",
             f"  {'stage':<18}" + "".join(f"{label:<{width}}" for label in columns)]
    for stage in bench.stages:
        lines.append(f"  {stage:<18}" + "".join(f"{cells.get((label, stage), '-'):<{width}}" for label in columns))
    lines.append(f"  {'repeats':<18}" + "".join(f"{b.record(name, TOTAL_STAGE).repeats:<{width}}"
                                                  for b, name in columns.values()))
    lines += [f"  note: {note}" for note in bench.notes]
    lines += _thread_notes(result)
    lines += _speedup_lines(bench, result.threads)
    lines += _ladder_lines(result)
    lines += [f"  {line}" for line in agreement_lines(result)]
    lines.append("  ONNX Runtime infer, batch 1, ms median (p90 / min): "
                 + ", ".join(f"{r.backend} {_ms(r.median_ms)} ({_ms(r.p90_ms)} / {_ms(r.min_ms)})"
                             for r in bench.latency))
    return "\n".join(lines)


def agreement_lines(result: FileResult) -> list[str]:
    """How far each backend's model input lies from the vectorized backend's (max |diff|), whether its label agrees,
    and why each peer differs by design (they are approximate)."""
    bench, lines = result.bench, []
    diffs = ", ".join(f"{_column(name, p.threads) if p.bench is not bench else name} {diff:.3g}"
                      for p in result.passes() for name, diff in p.bench.max_abs_diff.items() if name != YARDSTICK)
    if diffs:
        lines.append(f"model input vs {YARDSTICK}, max |diff|: {diffs}")
    if bench.labels and bench.withheld:  # outside the model's domain: agreement only, as a prediction would say
        differ = [name for name, label in bench.labels.items() if label != bench.labels.get(YARDSTICK)]
        lines.append(f"label on the model input: {bench.withheld}; every backend's model input gets the same "
                     f"decision" if not differ else f"label on the model input: {bench.withheld}; the decision "
                     f"of {', '.join(differ)} DIFFERS from {YARDSTICK}'s")
    elif bench.labels:
        ours = bench.labels.get(YARDSTICK)
        others = {name: label for name, label in bench.labels.items() if name != YARDSTICK}
        agree = [name for name, label in others.items() if label == ours]
        said = [f"{', '.join(agree)} {'agrees' if len(agree) == 1 else 'agree'}"] if agree else []
        said += [f"{name} says {label}, DIFFERS" for name, label in others.items() if label != ours]
        lines.append(f"label on the model input: {YARDSTICK} {ours}" + "".join(f"; {part}" for part in said)
                     + f". {NOT_FOR_CLINICAL_USE}")
    return lines + [f"{peer} differs by design: {why}" for peer, why in DIFFERS_BY_DESIGN.items()
                    if peer in bench.max_abs_diff]


def _decode_lines(result: FileResult) -> list[str]:
    """Loading the file, timed apart from the stages (the same for every backend)."""
    d = result.decode
    if d is None:
        return []
    return [f"  decode (shared by every backend): {d.backend} on {_threads(result.decoder_threads)}, "
            f"{_ms(d.median_ms)} ms median ({_ms(d.p90_ms)} / {_ms(d.min_ms)}) over {d.repeats} loads"]


def _run_decoders(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``--decoders``: the decoder table, file by file, then the environment stamp (and the JSON)."""
    from radbench.inference.benchmarking.decoders import (
        as_dicts,
        corpus_files,
        decoder_versions,
        time_decoders,
    )
    from radbench.inference.benchmarking.environment import environment, load_average

    before = load_average()
    timings = time_decoders(args.files or corpus_files(), repeats=args.repeat, warmup=args.warmup,
                            report=lambda found: print(decoder_table(found), file=out, flush=True))
    env = {**environment(()), "decoders": decoder_versions(), "load_average": [before, load_average()]}
    print(environment_text(env), file=out)
    print("  decoders: " + ", ".join(f"{p} {v}" for p, v in env["decoders"].items()), file=out)
    print(f"  load average (1, 5, 15 min) before {before}, after {env['load_average'][1]}; ms are wall-clock medians, "
          "CPU ms the process's CPU time; * marks RadBench's default under each condition", file=out)
    if args.json:
        from radbench.inference.atomic_file import write_atomically

        try:
            write_atomically(args.json, lambda f: json.dump({"environment": env, "decoders": as_dicts(timings)}, f,
                                                            indent=1))
        except OSError as exc:
            print(f"radbench bench: {args.json}: cannot write the JSON ({exc.strerror or exc})", file=err)
            return 1
        print(f"JSON written to {args.json}", file=out)
    return 0 if timings else 1


def decoder_table(timings) -> str:
    """One file's decoders: median ms (CPU ms) pinned to one CPU and on their own threads, the pixels' check; ``*``
    marks RadBench's default under each condition."""
    if not timings:
        return ""
    from radbench.inference.benchmarking.decoders import ONE_CPU, OWN_THREADS

    first = timings[0]
    cells = {(t.decoder, t.condition): t for t in timings}
    names = list(dict.fromkeys(t.decoder for t in timings))
    lines = [f"{first.file}  [{first.syntax}, {first.size}]",
             f"  {'decoder':<15}{ONE_CPU + ': ms (CPU ms)':<26}{OWN_THREADS + ': ms (CPU ms, threads)':<38}pixels"]
    for name in names:
        one, own = cells[(name, ONE_CPU)], cells[(name, OWN_THREADS)]
        lines.append(f"  {name:<15}{_timing_cell(one, False):<26}{_timing_cell(own, True):<38}{one.pixels}")
    return "\n".join(lines)


def _timing_cell(t, threads: bool) -> str:
    if t.median_ms is None:
        return "-"
    extra = f", {t.threads}" if threads else ""
    return f"{_ms(t.median_ms)} ({_ms(t.cpu_ms)}{extra}){' *' if t.default else ''}"


def compile_text(report: CompileReport, backends: tuple[str, ...] = ()) -> str:
    """Numba's warm-up times and what Numba did during each (compile or on-disk cache load)."""
    if not report.in_process and FUSED in backends:
        return (f"Numba compile: not measured ({FUSED} compiled its kernels in its untimed warm-up, never inside its "
                "stage time; add numba to --backends to time Numba's compile)")
    if not report.in_process:
        return "Numba compile: not measured (numba not benchmarked)"
    lines = ["Numba compile (never inside a stage time):"]
    lines += _compile_lines("this process, first warm-up", report.in_process)
    lines += _compile_lines("fresh process, empty NUMBA_CACHE_DIR", report.fresh_cold)
    lines += _compile_lines("another fresh process, reusing that cache", report.fresh_cached)
    if report.fresh_error:
        lines.append(f"  fresh processes: {report.fresh_error}")
    elif not report.fresh_cold:
        lines.append("  fresh processes: not measured")
    return "\n".join(lines)


def environment_text(env: Mapping[str, object]) -> str:
    """The environment stamp: CPU, versions, Numba and ONNX Runtime thread settings."""
    ort = env["onnxruntime_sessions"]
    settings = ", ".join(f"{k}={v}" for k, v in ort.items() if k.startswith("session."))
    timed = env.get("numba_threads_timed")
    return "\n".join([
        f"Environment: CPU {env['cpu']}, {env['cores']} cores ({env['usable_cores']} usable), {env['platform']}",
        f"  Python {env['python']}, " + ", ".join(f"{p} {env[p]}" for p in PACKAGES),
        (f"  Numba threads: NUMBA_NUM_THREADS={env['NUMBA_NUM_THREADS']} (config {env['numba_config_threads']}), "
         f"get_num_threads() {env['numba_get_num_threads']} by default, threading layer "
         f"{env['numba_threading_layer']}"
         + (f"; timed on {' and '.join(map(str, timed))} "
            f"({'--threads' if env.get('threads_option') else 'the default'})" if timed else "")),
        (f"  ONNX Runtime sessions: {ort['provider']}, intra-op threads "
         f"{' and '.join(map(str, ort['intra_op_threads']))}, inter-op {ort['inter_op_threads']}, "
         f"{ort['execution_mode']}, {settings}"),
    ])


def _column(backend: str, threads: int) -> str:
    """A column's name: a backend on Numba's threads says how many ("numba (2 threads)")."""
    return f"{backend} ({_threads(threads)})" if backend in NUMBA_BACKENDS else backend


def _threads(count: int) -> str:
    return f"{count} thread{'s' * (count != 1)}"


def _thread_notes(result: FileResult) -> list[str]:
    """How the thread passes ran: on how many threads Numba's kernel calls really ran, and, with several passes,
    which backends each timed."""
    used = [f"{p.threads}-thread pass: " + ", ".join(f"{_threads(n)} x {calls}" for n, calls in
                                                       sorted(p.kernel_threads.items(), reverse=True))
            for p in result.passes() if p.kernel_threads]
    lines = [f"  note: Numba kernel calls by the threads they ran on (fewer than set for a small image or next to "
             f"busy processes): {'; '.join(used)}"] if used else []
    (rows, cols), (height, width) = result.bench.shape, result.bench.tensor.shape[-2:]
    if "vectorized" in result.bench.backends and rows < height and cols < width:
        lines.append(f"  note: the frame is smaller than the model input ({rows} x {cols} < {height} x {width}): "
                     "vectorized's resize enlarges it with matrix products on OpenBLAS's own threads, which neither "
                     "Numba's threads nor --threads set (next to busy processes they can slow that stage)")
    if not result.more:
        return lines
    others = [b for b in result.bench.backends if b not in NUMBA_BACKENDS]
    later = ", ".join(f"{_threads(p.threads)}" for p in result.more)
    lines.append(f"  note: Numba's backends timed again on {later}, each count in a pass of its own after the "
                 f"{result.threads}-thread pass (not interleaved with it)")
    if others:
        them = "it" if len(others) == 1 else "them"
        lines.append(f"  note: {' and '.join(others)} ran only in the {result.threads}-thread pass: Numba's threads do "
                     f"not apply to {them}")
    return lines


_NOISE = " (noise)"
_NOISE_MEANS = "(noise) = the two p10-p90 ranges overlap: within run-to-run noise"


def _speedup_lines(bench: FileBench, threads: int) -> list[str]:
    ratios: dict[str, list[str]] = {}
    for s in speedups(bench):
        ratios.setdefault(_column(s.backend, threads), []).append(f"{s.ratio:.3g}x{_NOISE * s.within_noise} "
                                                                  f"vs {s.baseline}")
    if not ratios:
        return []
    width = max(12, *(len(name) + 2 for name in ratios))
    legend = f"; {_NOISE_MEANS}" if any(s.within_noise for s in speedups(bench)) else ""
    lines = [f"  speedup on {TOTAL_STAGE} (baseline median / backend median; above 1 = faster{legend}):"]
    return lines + [f"    {name:<{width}}{', '.join(text)}" for name, text in ratios.items()]


def _ladder_lines(result: FileResult) -> list[str]:
    """One gain per rung: vectorize, JIT-compile, parallelize, each on the total and per stage."""
    rungs = ladder(result)
    if not rungs:
        return []
    steps = [f"{r.before} -> {r.after}" for r in rungs]
    width = max(len(step) for step in steps) + 2
    legend = f"; {_NOISE_MEANS}" if any(g.within_noise for r in rungs for g in r.gains) else ""
    lines = [f"  optimization ladder on {TOTAL_STAGE}, one gain per rung (median before / median after; above 1 = "
             f"faster{legend}):"]
    for rung, step in zip(rungs, steps):
        lines.append(f"    {rung.name:<13}{step:<{width}}{rung.total.ratio:.3g}x{_NOISE * rung.total.within_noise}")
        if len(rung.gains) > 2:  # a single stage (the fused path's) says nothing the total does not
            lines.append(f"    {'':<13}per stage: " + ", ".join(f"{g.stage} {g.ratio:.3g}x{_NOISE * g.within_noise}"
                                                                 for g in rung.gains[1:]))
        if rung.note:
            lines.append(f"    {'':<13}note: {rung.note}")
    return lines


def _compile_lines(label: str, times: tuple[CompileTime, ...]) -> list[str]:
    return [f"  {label}, {c.dtype}: {describe(c.ms, c.source)}" for c in times]


def _memory(benchmark: Benchmark, backends: list[str], decoder: str | None, out: TextIO, err: TextIO
            ) -> tuple[MemoryPeak, ...]:
    """Peak memory above the baseline, per file and backend (not the fused path), loading with ``decoder`` as the
    timed runs did (``None``: the default), printed as it comes."""
    peaks = []
    for bench in benchmark.files:
        print(f"Peak memory of loading + preprocessing {bench.file} (fresh process each, above its resident size "
              "after warming up):", file=out)
        censored = False
        for backend in (b for b in backends if b != FUSED):
            try:
                peak = memory_peak(bench.file, backend, decoder)
            except RuntimeError as exc:
                print(f"error: {exc}", file=err)
                continue
            peaks.append(peak)
            censored |= peak.censored
            print(f"  {backend:<12}{_memory_line(peak)}", file=out)
        if censored:
            print(f"  {_CENSORED_NOTE}", file=out)
    return tuple(peaks)


_CENSORED_NOTE = ("(at most): this system cannot reset a process's high-water mark of memory (Linux's "
                  "/proc/self/clear_refs), so imports may have set it before loading: the true peak may be lower")


def _memory_line(peak: MemoryPeak) -> str:
    """The peak in MiB and in decoded images, then (when measured apart) loading's and preprocessing's peaks."""
    line = (f"{peak.peak_above_baseline_bytes / 2**20:8.1f} MiB = {peak.ratio:.1f} x the decoded image "
            f"({peak.decoded_bytes / 2**20:.1f} MiB)")
    if peak.decoder:
        line += f", decoded by {peak.decoder}"
    if peak.censored:
        return line + " (at most)"
    if peak.load_peak_bytes is None or peak.preprocess_peak_bytes is None:
        return line
    left = peak.resident_after_load_bytes or 0
    return (line + f": loading {peak.times(peak.load_peak_bytes):.1f} x (then {peak.times(left):.1f} x resident), "
            f"preprocessing {peak.times(peak.preprocess_peak_bytes):.1f} x")


def _write_json(benchmark: Benchmark, path: str, out: TextIO, err: TextIO) -> int:
    try:
        write_json(benchmark, path)
    except OSError as exc:
        print(f"radbench bench: {path}: cannot write the JSON ({exc.strerror or exc})", file=err)
        return 1
    print(f"JSON written to {path}", file=out)
    return 0


def _write_plot(benchmark: Benchmark, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from radbench.app.timing_plots import save_bench_plot  # Qt only when a picture is asked for

    try:
        size = save_bench_plot(benchmark, args.plot, args.warmup)
    except OSError as exc:
        print(f"radbench bench: {args.plot}: cannot write the plot ({exc.strerror or exc})", file=err)
        return 1
    print(f"Plot written to {args.plot} ({size.width()} x {size.height()} px)", file=out)
    return 0


def _ms(value: float) -> str:
    for limit, digits in ((100, 0), (10, 1), (0.1, 2)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"


def _backend_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in KNOWN_BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {','.join(KNOWN_BACKENDS)} (got {text!r})")
    return names
