"""``radbench bench`` and inference.benchmarking on real files: records, interleaving, totals, speedups, the library
reference, ONNX Runtime sessions, Numba compile labels, JSON output and bad files."""

from __future__ import annotations

import argparse
import io
import json
from itertools import product
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radbench.app.bench_command import add_parser, run_bench
from radbench.inference.backends import get_backend
from radbench.inference.backends.contract import STAGES
from radbench.inference.benchmarking import reference_pipeline
from radbench.inference.benchmarking.file_bench import DEFAULT_BACKENDS, FUSED, TOTAL_STAGE, bench_file, speedups
from radbench.inference.benchmarking.numba_compile import (
    CompileTime,
    cache_source,
    compile_in_fresh_processes,
    compile_in_process,
)
from radbench.inference.benchmarking.onnx_latency import INFER_STAGE, infer_latency, ort_sessions
from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import (
    LARGE_FRAME_PIXELS,
    LARGE_NAIVE_REPEATS,
    Run,
    Schedule,
    run_order,
    schedule,
)
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.onnx_runtime import NO_SPINNING
from radbench.inference.preprocessing import PreprocessSpec, preprocess

CT_SMALL = get_testdata_file("CT_small.dcm")
SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"

#: CT_small is 128 x 128 like the model input, so both resizes are the identity and every stage computes the
#: same function: the only differences are roundings (our float32 intermediates vs the reference's float64),
#: each at most 2**-24 relative on [0, 1], i.e. <= 2.1e-7 after dividing by the card's std 0.29; a few of
#: them stay below 1e-6 (measured: 4.2e-7). One pixel counted in a different histogram bin would already
#: shift the equalized image by 1 / 16384 = 6.1e-5, i.e. 2.1e-4 after normalizing, far above this bound.
ROUNDING_TOLERANCE = 1e-6
#: Where the frame is shrunk, skimage's resize (Gaussian anti-aliasing, bilinear, reflected edges) differs
#: from exact area averaging by design: measured mean |diff| 0.0026 on the 440 px tibia (max 0.10). A wrong
#: window, inversion or normalization would differ by order 1 everywhere.
RESIZE_MEAN_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.fixture(scope="module")
def ct_scan():
    return load_scan(CT_SMALL)


@pytest.fixture(scope="module")
def ct_bench(model, ct_scan):
    return bench_file(ct_scan, model.card, repeats=2, warmup=1)


def test_records_cover_every_backend_and_stage_with_ordered_statistics(ct_bench):
    assert ct_bench.backends == DEFAULT_BACKENDS
    assert ct_bench.stages == (*STAGES, TOTAL_STAGE)
    pairs = [(r.backend, r.stage) for r in ct_bench.records]
    assert pairs == list(product(DEFAULT_BACKENDS, (*STAGES, TOTAL_STAGE)))
    for r in ct_bench.records:
        assert r.file == CT_SMALL and r.repeats == 2
        assert 0 < r.min_ms <= r.median_ms <= r.p90_ms


def test_preprocess_total_is_the_sum_of_the_stages_of_each_run(model, ct_scan, ct_bench):
    for backend in DEFAULT_BACKENDS:  # every run's total is at least the sum of the stage minima
        total = ct_bench.record(backend, TOTAL_STAGE)
        assert total.min_ms >= sum(ct_bench.record(backend, s).min_ms for s in STAGES) - 1e-9
    single = bench_file(ct_scan, model.card, backends=("vectorized",), repeats=1, warmup=0)
    assert single.record("vectorized", TOTAL_STAGE).median_ms == pytest.approx(
        sum(single.record("vectorized", s).median_ms for s in STAGES), rel=1e-12)


def test_backends_run_interleaved_in_the_order_given(model, ct_scan):
    order = ("reference", "numba", "naive", "vectorized")
    bench = bench_file(ct_scan, model.card, backends=order, repeats=2, warmup=1)
    assert bench.run_order == tuple(Run(r, name, r == 0) for r in range(3) for name in order)
    assert bench.backends == order


def test_naive_is_capped_on_large_frames_and_says_so():
    large, small = LARGE_FRAME_PIXELS + 1, LARGE_FRAME_PIXELS
    capped = schedule("naive", large, 20, 2)
    assert (capped.warmup, capped.repeats) == (0, LARGE_NAIVE_REPEATS) and "naive" in capped.note
    assert schedule("naive", small, 20, 2) == schedule("numba", large, 20, 2) == Schedule(2, 20)
    assert schedule("naive", large, 2, 2) == Schedule(2, 2)  # already few repeats: nothing to cap
    assert schedule("numba", large, 20, 2).note == ""
    order = run_order({"naive": capped, "numba": schedule("numba", large, 4, 2)})
    assert [(r.round, r.backend, r.warmup) for r in order] == [
        (0, "numba", True), (1, "numba", True),
        (2, "naive", False), (2, "numba", False), (3, "naive", False), (3, "numba", False),
        (4, "naive", False), (4, "numba", False), (5, "numba", False)]


def test_speedups_are_ratios_of_the_medians(ct_bench):
    found = {(s.backend, s.baseline): s.ratio for s in speedups(ct_bench)}
    expected = {(b, base) for b in DEFAULT_BACKENDS for base in ("naive", "vectorized", "reference") if b != base}
    assert set(found) == expected
    for (backend, baseline), ratio in found.items():
        assert ratio == pytest.approx(ct_bench.record(baseline, TOTAL_STAGE).median_ms
                                      / ct_bench.record(backend, TOTAL_STAGE).median_ms, rel=1e-12)
    numba = {s.baseline: s.ratio for s in speedups(ct_bench, stage="equalize") if s.backend == "numba"}
    assert numba["naive"] == pytest.approx(ct_bench.record("naive", "equalize").median_ms
                                           / ct_bench.record("numba", "equalize").median_ms, rel=1e-12)


def test_registered_backends_agree_and_the_reference_is_within_rounding_without_resize(ct_bench):
    assert ct_bench.max_abs_diff["naive"] == ct_bench.max_abs_diff["numba"] == ct_bench.max_abs_diff["vectorized"] == 0
    assert 0 < ct_bench.max_abs_diff["reference"] <= ROUNDING_TOLERANCE


def test_reference_differs_from_vectorized_only_by_its_resize_when_shrinking(model):
    scan = load_scan(SAMPLES / "tibia_cr_rg3_8bit_440px.png")
    card = model.card
    spec = PreprocessSpec.from_card(card, scan)
    ours = preprocess(scan.grey_frame(), spec, get_backend("vectorized"))
    theirs = preprocess(scan.grey_frame(), spec, reference_pipeline.as_backend())
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    assert np.abs(theirs - ours).mean() <= RESIZE_MEAN_TOLERANCE
    bench = bench_file(scan, card, backends=("vectorized", "reference"), repeats=1, warmup=0)
    assert bench.max_abs_diff["reference"] == pytest.approx(float(np.abs(theirs - ours).max()))
    assert bench.max_abs_diff["reference"] > ROUNDING_TOLERANCE  # the anti-aliased resize is reported, not hidden


def test_onnx_sessions_do_not_spin_and_latency_is_timed_per_thread_count(model, ct_bench):
    sessions = ort_sessions(model.path)
    assert list(sessions) == ["onnxruntime-1thread", "onnxruntime-2threads"]
    for session in sessions.values():
        options = session.get_session_options()
        assert {k: options.get_session_config_entry(k) for k in NO_SPINNING} == NO_SPINNING
    assert [s.get_session_options().intra_op_num_threads for s in sessions.values()] == [1, 2]
    records = infer_latency(sessions, ct_bench.tensor, "f.dcm", repeats=3, warmup=1)
    assert [(r.backend, r.stage, r.repeats) for r in records] == [
        ("onnxruntime-1thread", INFER_STAGE, 3), ("onnxruntime-2threads", INFER_STAGE, 3)]
    assert all(0 < r.min_ms <= r.median_ms <= r.p90_ms for r in records)


@pytest.mark.parametrize("hits, misses, source", [
    (0, 7, "compiled"), (7, 0, "loaded from on-disk cache"), (0, 0, "already in memory"),
    (5, 2, "mixed (5 kernels loaded from on-disk cache, 2 compiled)")])
def test_numba_cache_counters_name_what_numba_did(hits, misses, source):
    assert cache_source(hits, misses) == source


def test_a_second_numba_warm_up_in_process_is_already_in_memory_and_takes_no_time():
    compile_in_process("float64")  # compiled, loaded or already warm, depending on what ran before
    assert compile_in_process("float64") == CompileTime("float64", 0.0, "already in memory")


def test_numba_cold_compile_and_cache_load_in_fresh_processes():
    """Slow (a real cold compile, ~15 s on 2 cores): the only check that the labels match what happened."""
    cold, cached = compile_in_fresh_processes(["uint16", "int16", "uint16"])
    assert [c.dtype for c in cold] == [c.dtype for c in cached] == ["uint16", "int16", "uint16"]
    # int16 compiles its own rescale kernel; the repeated uint16 finds everything compiled in its process
    assert [c.source for c in cold] == ["compiled", "compiled", "already in memory"]
    assert [c.source for c in cached] == ["loaded from on-disk cache"] * 2 + ["already in memory"]
    assert all(c.ms > 0 for c in cold[:2] + cached[:2]) and cold[2].ms == cached[2].ms == 0


def parse(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_parser_defaults_and_backend_choice():
    args = parse([])
    assert args.files == [] and args.backends == DEFAULT_BACKENDS and args.json is None
    assert parse(["--backends", "numba, reference,numba"]).backends == ("numba", "reference")
    for bad in (["--backends", "numba,fast"], ["--repeat", "0"], ["--warmup", "-1"]):
        with pytest.raises(SystemExit):
            parse(bad)


def test_bad_file_gives_an_error_line_and_exit_1_while_good_files_report(tmp_path):
    data = Path(CT_SMALL).read_bytes()
    broken = tmp_path / "truncated.dcm"
    broken.write_bytes(data[: len(data) // 2])
    good = [CT_SMALL, str(SAMPLES / "ct_small_128px.dcm")]
    target = tmp_path / "out" / "bench.json"
    target.parent.mkdir()
    out, err = io.StringIO(), io.StringIO()
    args = parse([good[0], str(broken), good[1], "--repeat", "2", "--no-fresh-compile", "--json", str(target)])
    assert run_bench(args, out, err) == 1
    assert f"error: {broken}: pixel data truncated" in err.getvalue()
    text = out.getvalue()
    for file in good:
        assert f"{file}  [128 x 128 int16, frame 1 of 1]" in text
    for needle in ("preprocess_total", " vs naive", "max |diff|", "onnxruntime-2threads", "Numba compile",
                   "this process, first warm-up, int16", "Environment: CPU", "scikit-image",
                   "session.intra_op.allow_spinning=0", "get_num_threads()"):
        assert needle in text
    assert [p.name for p in target.parent.iterdir()] == ["bench.json"]  # no temporary file left behind
    document = json.loads(target.read_text(encoding="utf-8"))
    assert {"environment", "compile", "records"} <= set(document)
    assert document["compile"]["in_process"][0]["dtype"] == "int16"
    keys = {(r["file"], r["backend"], r["stage"]) for r in document["records"]}
    stages = (*STAGES, TOTAL_STAGE)
    expected = {(f, b, s) for f in good for b, s in product(DEFAULT_BACKENDS, stages)}
    expected |= {(f, f"onnxruntime-{n}", INFER_STAGE) for f in good for n in ("1thread", "2threads")}
    assert keys == expected and len(document["records"]) == len(expected)
    assert all(set(r) == {"file", "backend", "stage", "median_ms", "p10_ms", "p90_ms", "min_ms", "repeats",
                          "samples_ms", "threads"} for r in document["records"])
    assert all(len(r["samples_ms"]) == r["repeats"] and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
               for r in document["records"])
    assert [e["file"] for e in document["errors"]] == [str(broken)]
    ds = pydicom.dcmread(CT_SMALL)
    for secret in (str(ds.PatientName), str(ds.PatientID)):
        assert secret not in text and secret not in target.read_text(encoding="utf-8")


def test_the_fused_numba_path_is_its_own_bar_with_the_same_numbers(ct_scan, model):
    bench = bench_file(ct_scan, model.card, backends=("numba", FUSED), repeats=2, warmup=1)
    assert {r.stage for r in bench.records if r.backend == FUSED} == {"fused", "preprocess_total"}
    assert bench.record(FUSED, "fused").median_ms > 0
    assert bench.max_abs_diff[FUSED] == 0.0  # bit-identical to the staged numba kernels


def test_memory_option_measures_each_backend_in_a_fresh_process(tmp_path):
    from radbench.app.bench_command import add_parser, run_bench

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    args = parser.parse_args(["bench", get_testdata_file("CT_small.dcm"), "--backends", "vectorized,numba",
                              "--repeat", "1", "--no-fresh-compile", "--memory", "--json", str(tmp_path / "b.json")])
    assert run_bench(args, out, err) == 0, err.getvalue()
    assert "Peak memory" in out.getvalue() and "x the decoded image" in out.getvalue()
    memory = json.loads((tmp_path / "b.json").read_text())["memory"]
    assert [m["backend"] for m in memory] == ["vectorized", "numba"]
    assert all(m["decoded_bytes"] == 128 * 128 * 2 and m["peak_above_baseline_bytes"] >= 0 for m in memory)


def test_a_speedup_whose_ranges_overlap_is_marked_as_noise(ct_bench):
    """Only where the two p10-p90 ranges overlap; the text marks those ratios and says what the mark means."""
    same, apart = Record.of("f", "a", TOTAL_STAGE, [1.0, 2.0, 3.0]), Record.of("f", "b", TOTAL_STAGE, [2.5, 3.5, 4.5])
    assert same.overlaps(apart) and apart.overlaps(same)
    assert not same.overlaps(Record.of("f", "c", TOTAL_STAGE, [3.5, 4.0, 9.0]))
    for s in speedups(ct_bench):
        base, mine = ct_bench.record(s.baseline, TOTAL_STAGE), ct_bench.record(s.backend, TOTAL_STAGE)
        assert s.within_noise == (base.p10_ms <= mine.p90_ms and mine.p10_ms <= base.p90_ms)
    from radbench.app.bench_command import _speedup_lines

    text = "\n".join(_speedup_lines(ct_bench, 1))
    noisy = [s for s in speedups(ct_bench) if s.within_noise]
    assert ("(noise) = the two p10-p90 ranges overlap" in text) == bool(noisy)
    assert text.count("x (noise) vs ") == len(noisy)


def test_json_and_plot_paths_are_checked_before_any_timing(tmp_path):
    for option, name in (("--json", "b.json"), ("--plot", "b.png")):
        out, err = io.StringIO(), io.StringIO()
        args = parse([CT_SMALL, option, str(tmp_path / "missing" / name), "--no-fresh-compile"])
        assert run_bench(args, out, err) == 1
        assert out.getvalue() == ""  # nothing timed
        assert err.getvalue() == (f"radbench bench: {tmp_path / 'missing' / name}: {tmp_path / 'missing'} does not "
                                   "exist (folders are not created)\n")


def test_the_fused_path_alone_says_where_its_compile_went():
    out, err = io.StringIO(), io.StringIO()
    assert run_bench(parse([CT_SMALL, "--backends", FUSED, "--repeat", "1", "--no-fresh-compile"]), out, err) == 0
    assert (f"Numba compile: not measured ({FUSED} compiled its kernels in its untimed warm-up, never inside its "
            "stage time; add numba to --backends to time Numba's compile)") in out.getvalue()
