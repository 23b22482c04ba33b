"""``radbench batch --scheduler`` on a real Dask cluster: a scheduler and workers started as separate processes
(:mod:`dask_processes`), in working folders of their own, as a user would start them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dask_processes import ROOT, Cluster, free_port
from pydicom.data import get_testdata_file

from radbench import __version__
from radbench.app.batch_command import run_batch_command
from radbench.app.cli import build_parser

SAMPLES = ROOT / "sample_images"
RADBENCH = Path(sys.executable).parent / "radbench"


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _chest_films(folder: Path, count: int) -> Path:
    """``folder``, made, holding ``count`` copies of the chest film (about 0.6 s of decoding each)."""
    folder.mkdir()
    for i in range(count):
        shutil.copy(SAMPLES / "chest_cr_rg1_j2k_lossless.dcm", folder / f"film{i}.dcm")
    return folder


def _after_the_first_row(out: Path, action) -> threading.Thread:
    """A started thread that calls ``action()`` once ``out`` holds a row (or after 120 s)."""
    def wait_then_act():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_rows(out) if out.exists() else []) < 1:
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=wait_then_act)
    thread.start()
    return thread


def _batch(*args) -> tuple[int, str]:
    """``radbench batch ARGS`` in this process: its exit status and what it wrote on stderr."""
    err = io.StringIO()
    code = run_batch_command(build_parser().parse_args(["batch", *map(str, args)]), err)
    return code, err.getvalue()


@pytest.fixture
def inputs(tmp_path) -> Path:
    """Three scans and a file that is not one, in ``inputs`` under the test's folder."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(SAMPLES / "tibia_cr_rg3_8bit_440px.png", folder / "tibia.png")
    shutil.copy(SAMPLES / "ct_small_128px.dcm", folder / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), folder / "IM0001")
    (folder / "notes.txt").write_text("not a scan")
    return folder


def test_relative_paths_reach_workers_whose_working_folders_differ(dask_cluster, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _batch("inputs", "--out", "r.csv", "--json", "r.json", "--scheduler", dask_cluster.address)
    assert code == 0, err
    rows = {r["path"]: r for r in _rows(tmp_path / "r.csv")}
    assert set(rows) == {str(p) for p in inputs.iterdir()}  # absolute: the workers' folders hold no input
    assert [r["status"] for r in rows.values()].count("ok") == 3 and rows[str(inputs / "notes.txt")]["error"]
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    workers = dask_cluster.wait_for_workers(2)
    assert set(summary["per_worker"]) <= set(workers.values()) and summary["scheduler"] == dask_cluster.address
    assert sum(w["files"] for w in summary["per_worker"].values()) == 4 and summary["workers"] >= 1
    assert f"by {summary['workers']} Dask worker" in err and "files/s" in err and "Traceback" not in err


def test_ship_files_serves_workers_that_cannot_see_the_folder(dask_cluster, inputs, tmp_path, monkeypatch):
    # /proc/self/cwd is each process's own working folder: the same absolute path names the inputs here and
    # nothing on the workers, as on machines that do not share a filesystem
    monkeypatch.chdir(tmp_path)
    unseen = "/proc/self/cwd/inputs"
    code, err = _batch(unseen, "--out", "plain.csv", "--scheduler", dask_cluster.address)
    assert code == 0, err
    assert {r["status"] for r in _rows(tmp_path / "plain.csv")} == {"error"}
    assert all("No such file" in r["error"] for r in _rows(tmp_path / "plain.csv"))

    code, err = _batch(unseen, "--out", "shipped.csv", "--scheduler", dask_cluster.address, "--ship-files")
    assert code == 0, err
    rows = {r["path"]: r for r in _rows(tmp_path / "shipped.csv")}
    assert set(rows) == {f"{unseen}/{p.name}" for p in inputs.iterdir()}  # the client's paths, not the copies'
    assert [r["status"] for r in rows.values()].count("ok") == 3
    assert rows[f"{unseen}/notes.txt"]["status"] == "skipped"
    for path, row in rows.items():  # the client's file: what --resume compares
        assert row["size_bytes"] == str(os.stat(path).st_size) and row["mtime_ns"] == str(os.stat(path).st_mtime_ns)
        assert "radbench-shipped-" not in "".join(row.values())
    code, err = _batch(unseen, "--out", "shipped.csv", "--scheduler", dask_cluster.address, "--ship-files", "--resume")
    assert code == 0 and "resuming: 4 files already done" in err and "0 processed" in err

    monkeypatch.setattr("radbench.inference.cluster.MAX_SHIPPED_BYTES", os.stat(inputs / "tibia.png").st_size)
    code, err = _batch(unseen, "--out", "bounded.csv", "--scheduler", dask_cluster.address, "--ship-files")
    rows = {Path(r["path"]).name: r for r in _rows(tmp_path / "bounded.csv")}
    assert code == 0 and rows["tibia.png"]["status"] == "ok" and rows["ct.dcm"]["status"] == "error"
    assert rows["ct.dcm"]["error"].startswith("too large to ship to a worker (")

    code, err = _batch(unseen, "--out", "local.csv", "--ship-files")
    assert code == 2 and err == "radbench batch: --ship-files needs --scheduler (local workers read the files " \
                                "themselves)\n"


def test_a_worker_killed_mid_run_loses_no_row_and_duplicates_none(dask_cluster, tmp_path):
    from distributed import Client

    folder = _chest_films(tmp_path / "films", 8)
    victim = dask_cluster.start_worker("victim")
    address = dask_cluster.wait_for_workers(3)["victim"]
    killed: list[str] = []

    def kill_when_busy():
        with Client(dask_cluster.address, set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = client.processing(workers=[address]).get(address, ())
                if files := [key for key in busy if str(key).startswith("run_task")]:  # not the check before them
                    os.kill(victim.pid, 9)
                    killed.extend(files)
                    return
                time.sleep(0.02)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        code, err = _batch(folder, "--out", tmp_path / "r.csv", "--json", tmp_path / "r.json",
                           "--scheduler", dask_cluster.address)
    finally:
        killer.join()
    assert killed, "the victim worker never held a task"
    assert victim.wait(30) == -9
    assert code == 0, err
    paths = [r["path"] for r in _rows(tmp_path / "r.csv")]
    assert sorted(paths) == sorted(str(p) for p in folder.iterdir())  # each file once
    assert {r["status"] for r in _rows(tmp_path / "r.csv")} == {"ok"}
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert sum(w["files"] for w in summary["per_worker"].values()) == 8


def test_an_unreachable_scheduler_is_one_line_and_exit_2_before_any_retry(inputs, tmp_path):
    """The refused connection itself is reported ("Connection refused"), not the timeout that Dask's own connect
    would end with after retrying for 30 s: the address is checked with one plain connection first. How long it
    took is printed, not asserted."""
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = subprocess.run([str(RADBENCH), "batch", str(inputs), "--out", str(tmp_path / "r.csv"),
                             "--scheduler", address], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started  # printed, not asserted
    assert result.returncode == 2
    assert result.stderr == f"radbench batch: cannot reach the Dask scheduler at {address} (Connection refused); " \
                            "is `dask scheduler` running there?\n"
    print(f"unreachable scheduler: exit 2 after {seconds:.1f} s")

    with socket.socket() as server:  # a server that is not a Dask scheduler: it hangs up at once
        server.bind(("127.0.0.1", 0))
        server.listen()
        threading.Thread(target=lambda: [server.accept()[0].close() for _ in range(2)], daemon=True).start()
        code, err = _batch(inputs, "--out", tmp_path / "r.csv", "--scheduler",
                           f"tcp://127.0.0.1:{server.getsockname()[1]}")
    assert code == 2 and err.startswith("radbench batch: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert "the server there is not a Dask scheduler" in err and err.count("\n") == 1
    code, err = _batch(inputs, "--out", tmp_path / "r.csv", "--scheduler", "no-port-here")
    assert code == 2 and "not an address like tcp://HOST:PORT" in err and err.count("\n") == 1


def _other_install(root: Path, model: Path, version: str) -> Path:
    """A folder that, first on a worker's PYTHONPATH, gives it this checkout's code with another bundled model
    and another installed version of RadBench: a worker installed apart from the client."""
    package = root / "radbench"
    (package / "models").mkdir(parents=True)
    for name in ("__init__.py", "__main__.py"):
        shutil.copy(ROOT / "radbench" / name, package / name)
    for name in ("app", "inference", "sample_images"):
        (package / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "models" / "__init__.py", package / "models" / "__init__.py")
    shutil.copy(model, package / "models" / "pneumonia.onnx")
    metadata = root / f"radbench-{version}.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(f"Metadata-Version: 2.1\nName: radbench\nVersion: {version}\n")
    return root


def test_a_worker_with_another_model_and_version_is_refused_before_any_file_or_when_it_joins(
        tmp_path, placeholder_path):
    other = _other_install(tmp_path / "elsewhere", placeholder_path, "0.0.1")
    films = _chest_films(tmp_path / "films", 12)
    out = tmp_path / "joined.csv"
    cluster = Cluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cluster.start_worker("same")
        cluster.wait_for_workers(1)
        joiner = _after_the_first_row(out, lambda: cluster.start_worker("other", pythonpath=other))
        joined_code, joined_err = _batch(films, "--out", out, "--scheduler", cluster.address)
        joiner.join()
        address = cluster.wait_for_workers(2)["other"]
        code, err = _batch(films, "--out", tmp_path / "r.csv", "--scheduler", cluster.address)
    finally:
        cluster.end()
    assert joined_code == 2 and joined_err.count("\n") == 1, joined_err
    assert joined_err.startswith("radbench batch: a Dask worker that joined during the run differs from this "
                                 f"client: RadBench {__version__} here, 0.0.1 there; model sha256 ")
    assert 1 <= len(_rows(out)) < 12 and {r["status"] for r in _rows(out)} == {"ok"}  # none from the other worker

    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"radbench batch: Dask worker {address} differs from this client: "
                          f"RadBench {__version__} here, 0.0.1 there; model sha256 ")
    assert "Install the same RadBench and model on every worker, or stop that one" in err
    assert _rows(tmp_path / "r.csv") == []  # refused before the first file


def test_a_scheduler_lost_mid_run_is_one_line_and_resume_finishes_on_another(dask_cluster, tmp_path):
    folder = _chest_films(tmp_path / "films", 6)
    out = tmp_path / "r.csv"
    doomed = Cluster(tmp_path / "doomed")
    try:
        doomed.start_scheduler()
        doomed.start_worker("lonely")
        doomed.wait_for_workers(1)
        killer = _after_the_first_row(out, lambda: os.kill(doomed.processes[0].pid, 9))  # the scheduler
        code, err = _batch(folder, "--out", out, "--scheduler", doomed.address)
        killer.join()
    finally:
        doomed.end()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"radbench batch: lost the Dask scheduler at {doomed.address} mid-run with ")
    assert err.endswith(" not done; the finished rows are kept: run again with --resume to do the rest\n")
    done = _rows(out)
    assert 1 <= len(done) < 6 and {r["status"] for r in done} == {"ok"}  # no row for a file that was cut off

    code, err = _batch(folder, "--out", out, "--scheduler", dask_cluster.address, "--resume")
    assert code == 0 and f"resuming: {len(done)} file" in err
    assert sorted(r["path"] for r in _rows(out)) == sorted(str(p) for p in folder.iterdir())
    assert {r["status"] for r in _rows(out)} == {"ok"}
