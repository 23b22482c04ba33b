"""Threads: one switch (inference.threads.compute_threads) for Numba's kernels and ONNX Runtime's infer, the
``--threads`` option of predict, batch and bench, and every timing output naming the threads it ran on."""

from __future__ import annotations

import argparse
import csv
import io
import json
import threading
from pathlib import Path

import numba
import pytest

from radbench.app.bench_command import add_parser as add_bench_parser
from radbench.app.bench_command import run_bench
from radbench.app.cli import main
from radbench.inference.batch import BatchConfig, process_file
from radbench.inference.machine import usable_cpus
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline
from radbench.inference.threads import (
    DEFAULT_ONNX_THREADS,
    Threads,
    ThreadsError,
    compute_threads,
    current_threads,
    thread_limit,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT = SAMPLES / "ct_small_128px.dcm"
LIMIT = thread_limit()
#: The most threads a command may use here: --threads above it is capped.
MOST = min(LIMIT, usable_cpus())
needs_two = pytest.mark.skipif(MOST < 2, reason="needs 2 CPUs that Numba may use to tell 1 thread from 2")


@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.fixture(autouse=True)
def numba_at_its_default():
    """Every test starts and must end with Numba at its default on this thread (nothing leaks)."""
    assert numba.get_num_threads() == LIMIT
    yield
    assert numba.get_num_threads() == LIMIT


# ----------------------------------------------------------------- the switch


def test_compute_threads_sets_numba_and_onnx_runtime_for_the_block_and_restores_them():
    with compute_threads(1) as threads:
        assert threads == Threads(1, 1) == current_threads()
        assert numba.get_num_threads() == 1
        with compute_threads(LIMIT) as inner:
            assert numba.get_num_threads() == LIMIT and inner.onnxruntime == LIMIT
        assert numba.get_num_threads() == 1 and current_threads().onnxruntime == 1  # the outer block's, again
    assert numba.get_num_threads() == LIMIT and current_threads().onnxruntime == DEFAULT_ONNX_THREADS


def test_the_settings_are_restored_after_an_exception_too():
    with pytest.raises(RuntimeError), compute_threads(1):
        raise RuntimeError("a failed run")
    assert numba.get_num_threads() == LIMIT and current_threads().onnxruntime == DEFAULT_ONNX_THREADS


def test_no_count_means_the_defaults_numba_on_every_thread_it_may_use_and_onnx_runtime_on_one():
    with compute_threads(1), compute_threads(None) as threads:
        assert threads == Threads(LIMIT, DEFAULT_ONNX_THREADS)
        assert numba.get_num_threads() == LIMIT
    assert LIMIT == numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize("count", [0, -1, LIMIT + 1, 2.0, "2", True])
def test_a_count_numba_cannot_run_is_refused_naming_the_allowed_range(count):
    with pytest.raises(ThreadsError) as error, compute_threads(count):
        pass
    assert str(error.value) == (f"threads must be a whole number from 1 to {LIMIT} (Numba's NUMBA_NUM_THREADS "
                                f"here), not {count!r}")


def test_the_setting_belongs_to_the_thread_that_made_it():
    seen = {}

    def other():
        seen["numba"], seen["onnx"] = numba.get_num_threads(), current_threads().onnxruntime

    with compute_threads(1):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == {"numba": LIMIT, "onnx": DEFAULT_ONNX_THREADS}  # a new thread starts at the defaults


# ----------------------------------------------------------------- runs


@pytest.mark.parametrize("count", sorted({1, LIMIT}))
def test_a_run_infers_and_preprocesses_on_the_threads_set_and_says_so(model, count):
    pipeline, during = Pipeline(model, "numba"), []

    def cancel() -> bool:  # called between stages, on the thread that runs them
        during.append((numba.get_num_threads(), model.threads))
        return False

    with compute_threads(count):
        prediction = pipeline.run(CT, cancel=cancel)
        assert model.session_for().get_session_options().intra_op_num_threads == count
    assert during and set(during) == {(count, count)}
    assert prediction.threads == Threads(count, count)
    assert model.session_for().get_session_options().intra_op_num_threads == DEFAULT_ONNX_THREADS


def test_a_backend_without_numba_kernels_reports_only_onnx_runtime(model):
    with compute_threads(1):
        prediction = Pipeline(model, "vectorized").run(CT)
    assert prediction.threads == Threads(None, 1)
    assert prediction.threads.describe() == "ONNX Runtime 1 thread (no Numba kernels)"


def test_a_batch_row_says_which_threads_its_times_ran_on():
    with compute_threads(LIMIT):  # the row's own setting wins over the caller's
        row = process_file(CT, BatchConfig(None, "numba", threads=1))
        assert numba.get_num_threads() == LIMIT
    assert row["status"] == "ok" and (row["numba_threads"], row["onnxruntime_threads"]) == (1, 1)
    row = process_file(CT, BatchConfig(None, "vectorized"))
    assert (row["numba_threads"], row["onnxruntime_threads"]) == ("", DEFAULT_ONNX_THREADS)


@pytest.mark.slow
def test_numba_kernels_really_run_on_that_many_threads():
    import numpy as np
    from numba import njit, prange

    @njit(parallel=True)
    def distinct_threads(n):  # how many of Numba's threads took part in a parallel loop
        ids = np.zeros(n, dtype=np.int64)
        for i in prange(n):
            ids[i] = numba.get_thread_id()
        return len(np.unique(ids))

    with compute_threads(1):
        assert distinct_threads(100_000) == 1
    assert 1 <= distinct_threads(100_000) <= LIMIT


# ----------------------------------------------------------------- the option


def _refused(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", [["predict", str(CT)], ["batch", "."]])
@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", ""])
def test_predict_and_batch_refuse_a_bad_thread_count_in_words(capsys, command, value):
    err = _refused(capsys, *command, "--threads", value)
    assert f"argument --threads: needs a whole number of at least 1 (got {value!r})" in err


@pytest.mark.parametrize("value", ["0", "1,0", "one,two", "1,,2", "", "-1"])
def test_bench_refuses_a_bad_thread_list_in_words(capsys, value):
    err = _refused(capsys, "bench", "--threads", value)
    assert f"argument --threads: needs whole numbers of at least 1 separated by commas, such as 1,2 (got {value!r})" \
           in err


def _bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_bench_reads_a_thread_list_in_increasing_order_without_repeats():
    assert _bench_args("--threads", "2,1,2").threads == (1, 2)
    assert _bench_args("--threads", "1").threads == (1,)
    assert _bench_args().threads is None


def test_every_command_documents_threads_and_batch_says_each_worker_uses_them(capsys):
    for command in ("predict", "batch", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--threads" in text and "ONNX Runtime" in text and "Numba" in text, command
        if command == "batch":
            assert "every worker uses N, so --workers W runs up to W x N threads" in text


def test_predict_runs_on_the_threads_asked_for_and_says_so(capsys):
    assert main(["predict", str(CT), "--backend", "numba", "--threads", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["threads"] == {"numba": 1, "onnxruntime": 1}
    assert main(["predict", str(CT), "--backend", "numba", "--threads", "1"]) == 0
    assert "  threads: Numba 1 thread, ONNX Runtime 1 thread" in capsys.readouterr().out.splitlines()
    assert main(["predict", str(CT), "--backend", "numba", "--json"]) == 0  # the defaults, as before --threads
    assert json.loads(capsys.readouterr().out)["threads"] == {"numba": LIMIT, "onnxruntime": DEFAULT_ONNX_THREADS}


def test_too_many_threads_are_capped_with_a_note_naming_the_most(capsys):
    assert main(["predict", str(CT), "--backend", "numba", "--threads", "999", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["threads"] == {"numba": MOST, "onnxruntime": MOST}
    why = "the CPUs this process may use" if usable_cpus() <= LIMIT else "Numba's NUMBA_NUM_THREADS"
    assert f"note: --threads 999 capped at {MOST}, {why}" in captured.err.splitlines()


@pytest.mark.slow
def test_batch_workers_run_on_the_threads_asked_for_and_the_summary_names_them(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / CT.name).write_bytes(CT.read_bytes())
    out = tmp_path / "r.csv"
    assert main(["batch", str(folder), "--backend", "numba", "--threads", "1", "--workers", "1", "--out", str(out),
                 "--json", str(tmp_path / "r.json")]) == 0
    row = next(csv.DictReader(out.open(encoding="utf-8")))
    assert (row["numba_threads"], row["onnxruntime_threads"]) == ("1", "1")  # measured in the worker process
    assert "by 1 worker, each on Numba 1 thread, ONNX Runtime 1 thread" in capsys.readouterr().err
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["workers"] == 1 and summary["threads"] == {"numba": 1, "onnxruntime": 1}


@needs_two
def test_bench_with_two_thread_counts_shows_the_jit_and_the_parallel_rungs_apart(tmp_path):
    out, err, target = io.StringIO(), io.StringIO(), tmp_path / "b.json"
    args = _bench_args(str(CT), "--backends", "vectorized,numba", "--threads", "1,2", "--repeat", "2", "--warmup",
                       "0", "--no-fresh-compile", "--json", str(target))
    assert run_bench(args, out, err) == 0, err.getvalue()
    text = out.getvalue()
    lines = [line.strip() for line in text.splitlines()]
    header = next(line for line in lines if line.startswith("stage"))
    assert [column.strip() for column in header.split("  ") if column.strip()] == [
        "stage", "vectorized", "numba (1 thread)", "numba (2 threads)"]
    jit = next(line for line in lines if line.startswith("JIT-compile"))
    parallel = next(line for line in lines if line.startswith("parallelize"))
    assert "vectorized -> numba (1 thread)" in jit and "JIT and parallel gains together" not in text
    assert "numba (1 thread) -> 2 threads" in parallel and parallel.endswith(("x", "x (noise)"))
    after = lines[lines.index(parallel) + 1]
    assert after.startswith("per stage: rescale ") and "normalize" in after
    assert "note: vectorized ran only in the 1-thread pass: Numba's threads do not apply to it" in text
    assert "note: Numba kernel calls by the threads they ran on" in text and "2-thread pass: " in text
    assert "timed on 1 and 2 (--threads)" in text and "intra-op threads 1 and 2" in text
    document = json.loads(target.read_text(encoding="utf-8"))
    threads = {(r["backend"], r["threads"]) for r in document["records"]}
    assert threads == {("vectorized", 1), ("numba", 1), ("numba", 2), ("onnxruntime-1thread", 1),
                       ("onnxruntime-2threads", 2)}
    assert document["threads"] == [1, 2]
    rungs = {r["rung"]: r for r in document["ladder"][0]["rungs"]}
    assert rungs["JIT-compile"]["after"] == "numba (1 thread)" and rungs["parallelize"]["after"] == "2 threads"
    gain = rungs["parallelize"]["gains"][0]
    assert gain["stage"] == "preprocess_total"
    assert gain["ratio"] == pytest.approx(gain["before_ms"] / gain["after_ms"], rel=1e-3)
    note = rungs["parallelize"]["note"]
    second = next(p for p in document["passes"] if p["threads"] == 2)
    assert second["backends"] == ["numba"] and sum(second["kernel_calls_by_threads"].values()) > 0
    if set(second["kernel_calls_by_threads"]) == {"1"}:  # a small image's kernels all run on one thread
        assert note == ("no kernel call ran on more threads than in the 1-thread pass (a small image, or other "
                        "processes holding CPUs): this ratio is run-to-run noise, not a parallel gain")
    else:
        fewer = second["kernel_calls_by_threads"].get("1", 0)
        assert (f"{fewer} of {sum(second['kernel_calls_by_threads'].values())} kernel calls ran on fewer than 2 "
                "threads" in note) == (fewer > 0)
        assert ("slower on 2 threads" in note) == (gain["ratio"] < 1)  # then it names what it can detect


@pytest.mark.parametrize("name", ["ct_small_128px.dcm", "chest_cr_rg1_j2k_lossless.dcm"])
def test_bench_without_threads_says_whether_its_jit_rung_holds_a_parallel_gain_too(name, tmp_path):
    """The JIT rung names the parallel gain only where a kernel call really ran on several threads (never on the
    small CT; on the 3.6 Mpx chest film when a second CPU was free)."""
    out, err, target = io.StringIO(), io.StringIO(), tmp_path / "b.json"
    args = _bench_args(str(SAMPLES / name), "--backends", "vectorized,numba", "--repeat", "1", "--warmup", "0",
                       "--no-fresh-compile", "--json", str(target))
    assert run_bench(args, out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert f"numba ({LIMIT} thread{'s' * (LIMIT != 1)})" in text and "parallelize" not in text
    calls = json.loads(target.read_text(encoding="utf-8"))["passes"][0]["kernel_calls_by_threads"]
    together = f"note: numba ran on {LIMIT} threads: JIT and parallel gains together (--threads 1,N separates them)"
    alone = (f"note: numba was set to {LIMIT} threads, but every kernel call ran on 1 (a small image, or other "
             "processes holding CPUs): the JIT gain alone")
    assert (together in text, alone in text) == ((True, False) if set(calls) != {"1"} else (False, LIMIT > 1))
    if name.startswith("ct"):
        assert set(calls) == {"1"}
    assert f"timed on {LIMIT} (the default)" in text
