"""``radbench batch`` against hostile input and hostile runs: decoder bombs, dying and hanging workers, file
names that are not UTF-8, two writers, SIGTERM, damaged CSVs, pipes, sockets, devices and over-long paths."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radbench.app.cli import main
from radbench.inference.batch import decode_text, encode_text
from radbench.inference.errors import ScanError
from radbench.inference.loading import load_scan
from radbench.inference.memory_ceiling import MemoryCeilingError, TimeLimitError, run_in_child
from radbench.inference.wording import counted

RADBENCH = Path(sys.executable).parent / "radbench"
CT = get_testdata_file("CT_small.dcm")
TIBIA = Path(__file__).resolve().parent.parent / "sample_images" / "tibia_cr_rg3_8bit_440px.png"
MIB = 1024**2


def uncompressed_bomb(path: Path, side: int = 12000) -> Path:
    """An uncompressed DICOM the loader's header checks accept on any machine with 4 GiB or more (12000 x 12000
    uint16: 288 MB decoded, about 2 GB to process) that cannot be read within 256 MiB; the pixel data is a
    sparse hole, so it takes no disk."""
    ds = dcmread(CT)
    del ds.PixelData
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.save_as(path, enforce_file_format=True)
    length = side * side * 2
    with path.open("ab") as f:
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))  # (7FE0,0010) OW, explicit VR LE
        f.truncate(f.tell() + length)
    return path


def _slow_png(path: Path, side: int = 3000) -> Path:
    """A valid 3000 x 3000 grey PNG: the naive backend's Python loops take many seconds on it."""
    Image.fromarray((np.add.outer(np.arange(side), np.arange(side)) % 251).astype(np.uint8)).save(path)
    return path


def _radbench(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(RADBENCH), "batch", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _by_name(path: Path) -> dict[str, dict]:
    return {Path(decode_text(r["path"])).name: r for r in _rows(path)}


def _wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _row_count(path: Path) -> int:
    return len(_rows(path)) if path.exists() else 0


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


def _group(pgid: int) -> list[str]:
    """Command lines of the live (not zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[2] == str(pgid) and fields[0] != "Z":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError):
            continue
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_a_decoder_bomb_is_one_error_row_under_the_memory_limit(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    uncompressed_bomb(root / "bomb.dcm")
    shutil.copy(CT, root / "ct.dcm")
    shutil.copy(TIBIA, root / "tibia.png")
    out = tmp_path / "r.csv"
    # in a fresh interpreter, so that RUSAGE_CHILDREN's high-water mark is this run's alone
    measure = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
    result = subprocess.run([sys.executable, "-c", measure, str(RADBENCH), "batch", str(root), "--out", str(out),
                             "--memory-limit", "256M", "--workers", "2"],
                            capture_output=True, text=True, timeout=120, check=False)
    code, peak = map(int, result.stdout.split())
    assert code == 0, result.stderr
    rows = _by_name(out)
    assert set(rows) == {"bomb.dcm", "ct.dcm", "tibia.png"}
    assert rows["bomb.dcm"]["status"] == "error"
    assert rows["bomb.dcm"]["error"] == "decoder exceeded the memory limit (0.25 GiB)"
    assert rows["ct.dcm"]["status"] == rows["tibia.png"]["status"] == "ok"
    assert "Traceback" not in result.stderr
    assert peak < 768 * MIB  # measured: 0.2 GiB; without the limit the bomb's worker peaks at 2 GiB


@pytest.fixture
def slow_between_two_cts(tmp_path) -> Path:
    """A folder of a CT, a PNG that the naive backend takes seconds over, and another CT."""
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(CT, root / "a_ct.dcm")
    _slow_png(root / "b_slow.png")
    shutil.copy(CT, root / "c_ct.dcm")
    return root


def test_a_file_over_the_time_limit_is_one_error_row_and_the_run_goes_on(slow_between_two_cts, tmp_path):
    root, out = slow_between_two_cts, tmp_path / "r.csv"
    result = _radbench(root, "--out", out, "--workers", "1", "--backend", "naive", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    rows = _by_name(out)
    assert rows["b_slow.png"]["status"] == "error"
    assert rows["b_slow.png"]["error"] == "took longer than the 1 s limit"
    assert rows["a_ct.dcm"]["status"] == rows["c_ct.dcm"]["status"] == "ok"  # c: done by a fresh worker


def test_a_worker_killed_mid_file_costs_that_file_one_row(slow_between_two_cts, tmp_path):
    root, out = slow_between_two_cts, tmp_path / "r.csv"
    run = subprocess.Popen([str(RADBENCH), "batch", str(root), "--out", str(out), "--workers", "1", "--backend",
                            "naive"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for(lambda: _row_count(out) == 1, "the first row")
        worker = next(pid for pid, cmd in _children(run.pid) if "spawn_main" in cmd)
        start = _cpu_ticks(worker)
        _wait_for(lambda: _cpu_ticks(worker) > start + 20, "the worker to be busy with b_slow.png")
        os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer would
        stderr = run.communicate(timeout=120)[1]
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    rows = _by_name(out)
    assert len(_rows(out)) == 3
    assert rows["b_slow.png"]["status"] == "error"
    assert rows["b_slow.png"]["error"] == "worker process died (signal 9, SIGKILL)"
    assert rows["c_ct.dcm"]["status"] == "ok"


NAMES = [b"scan_\xff\xfe.dcm", "line\u2028sep.dcm".encode(), "nel\u0085.dcm".encode(), b"cr\r.dcm",
         b"back\\slash.dcm"]


def test_names_that_are_not_utf8_or_break_lines_round_trip_and_resume(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for name in NAMES:
        shutil.copy(CT, os.path.join(os.fsencode(root), name))
    out, document = tmp_path / "r.csv", tmp_path / "r.json"
    result = _radbench(root, "--out", out, "--json", document)
    assert result.returncode == 0, result.stderr
    text = out.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert len(text.splitlines()) == 1 + len(NAMES)  # no raw CR, NEL or LINE SEPARATOR inside a row
    rows = _rows(out)
    assert {os.fsencode(decode_text(r["path"])) for r in rows} == {os.path.join(os.fsencode(root), n) for n in NAMES}
    assert all(r["status"] == "ok" for r in rows)
    assert "\\xff\\xfe" in text and "\\u2028" in text and "\\u0085" in text and "\\u000d" in text
    saved = json.loads(document.read_bytes().decode("utf-8"))
    assert sorted(r["path"] for r in saved["rows"]) == sorted(r["path"] for r in rows)
    again = _radbench(root, "--out", out, "--json", document, "--resume")
    assert again.returncode == 0, again.stderr
    assert f"{len(NAMES)} files already done" in again.stderr
    assert json.loads(document.read_text())["summary"]["processed_this_run"] == 0
    assert _rows(out) == rows


@pytest.mark.parametrize("text", ["plain/ascii.dcm", "a\\xff\\b", "\udcff\udcfe", "\r\n\t\x00\x85\u2028\u2029",
                                  "\\\\u000d", "ünï/cödé €"])
def test_encode_text_is_printable_and_reversible(text):
    encoded = encode_text(text)
    assert encoded.isprintable() or encoded == ""
    encoded.encode("utf-8")  # no lone surrogates left
    assert decode_text(encoded) == text


def test_a_second_writer_is_refused_and_sigterm_ends_the_run_cleanly(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        shutil.copy(CT, root / f"a_ct_{i}.dcm")
    _slow_png(root / "z_slow.png")
    out = tmp_path / "r.csv"
    command = [str(RADBENCH), "batch", str(root), "--out", str(out), "--workers", "2", "--backend", "naive"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for(lambda: _row_count(out) >= 1, "the first row")
        second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 2
        assert second.stderr == f"radbench batch: {out} is being written by another radbench run (pid {first.pid})\n"
        os.killpg(first.pid, signal.SIGTERM)  # the whole group, as a service manager does
        stderr = first.communicate(timeout=60)[1]
    finally:
        first.kill()
    assert first.returncode == 143, stderr
    assert "interrupted: 4 files" in stderr and "Traceback" not in stderr
    rows = _rows(out)
    assert 1 <= len(rows) < 4 and all(r["status"] == "ok" for r in rows)
    assert not Path(f"{out}.lock").exists()
    _wait_for(lambda: not _group(first.pid), "the run's processes to end", timeout=20)


def test_resume_reads_damaged_and_spreadsheet_edited_csvs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "in"
    root.mkdir()
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        shutil.copy(CT, root / name)
    out = tmp_path / "r.csv"
    assert main(["batch", "in", "--out", "r.csv"]) == 0  # relative here, absolute below: one row per file
    first = _rows(out)
    assert all(r["path"].startswith(str(root)) for r in first)
    header = list(first[0])

    def resume() -> tuple[int, str]:
        capsys.readouterr()
        code = main(["batch", str(root), "--out", str(out), "--resume"])
        return code, capsys.readouterr().err

    code, err = resume()
    assert code == 0 and "3 files already done" in err
    assert _rows(out) == first
    with out.open("w", encoding="utf-8-sig", newline="") as f:  # as a spreadsheet saves it back
        writer = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerows([header, *(r.values() for r in first)])
    code, err = resume()
    assert code == 0 and "3 files already done" in err
    assert _rows(out) == first

    a, b, c = (list(r.values()) for r in first)
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerows([header, [*a[:3], "STALE", *a[4:]], b[:-2], [*c, "extra"], [a[0][:-5] + "\0.dcm", *a[1:]], a])
    out.write_text(lines.getvalue() + '"' + c[0][:12])  # the last row cut inside a quoted field
    code, err = resume()
    assert code == 0 and "Traceback" not in err
    assert "1 file already done" in err and "2 damaged rows dropped" in err
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(r["path"] for r in first)
    assert next(r for r in rows if r["path"] == a[0])["label"] == first[0]["label"]  # the last row of a.dcm won
    out.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    code, err = resume()
    assert code == 2
    assert err == f"radbench batch: {out}: cannot resume: not a RadBench CSV (not UTF-8 text)\n"


def _deep_file(root: Path) -> str:
    """A file under nested folders whose path is longer than PATH_MAX (4096), built with dir_fd."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(18):
            os.mkdir("d" * 250, dir_fd=fd)
            fd, parent = os.open("d" * 250, os.O_RDONLY, dir_fd=fd), fd
            os.close(parent)
        os.close(os.open("deep.dcm", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)
    return os.path.join(root, *["d" * 250] * 18, "deep.dcm")


def test_discovery_reports_special_files_and_long_paths_and_skips_its_own_outputs(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(TIBIA, root / "good.png")
    os.mkfifo(root / "x.dcm")  # opening it would block forever
    os.symlink("/dev/zero", root / "zero.dcm")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "s.dcm"))
    deep = _deep_file(root)
    out, document = root / "results.csv", root / "results.json"  # outputs inside the input folder
    try:
        result = _radbench(root, "--out", out, "--json", document, "--workers", "64", timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"--workers 64 capped at the {counted(len(os.sched_getaffinity(0)), 'usable CPU')}" in result.stderr
        rows = _rows(out)
        by_name = {Path(decode_text(r["path"])).name: r for r in rows}
        assert by_name["good.png"]["status"] == "ok"
        assert by_name["x.dcm"]["error"] == "not a regular file: a named pipe (FIFO)"
        assert by_name["s.dcm"]["error"] == "not a regular file: a socket"
        assert by_name["zero.dcm"]["error"] == "not a regular file: a character device"
        too_long = [r for r in rows if len(r["path"]) >= 4096]
        assert len(too_long) == 1 and deep.startswith(too_long[0]["path"])
        assert too_long[0]["status"] == "error" and "File name too long" in too_long[0]["error"]
        assert len(rows) == 5
        again = _radbench(root, "--out", out, "--json", document, "--resume", timeout=60)
        assert again.returncode == 0, again.stderr
        assert sorted(r["path"] for r in _rows(out)) == sorted(r["path"] for r in rows)  # no results.* rows
    finally:
        server.close()
        shutil.rmtree(root / ("d" * 250))


def test_a_glob_cannot_leave_the_folder_and_workers_must_be_positive(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    shutil.copy(TIBIA, tmp_path / "x" / "outside.png")
    (tmp_path / "in" / "deeper").mkdir(parents=True)
    out = tmp_path / "r.csv"
    assert main(["batch", str(tmp_path / "in" / "deeper"), "--glob", "../../x/*", "--out", str(out)]) == 2
    assert "a pattern must stay inside" in capsys.readouterr().err
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exit_:
            main(["batch", str(tmp_path / "in"), "--workers", bad])
        assert exit_.value.code == 2
        assert "--workers" in capsys.readouterr().err


def test_run_in_child_returns_the_result_or_raises_what_happened(tmp_path):
    in_process = load_scan(CT)
    assert np.array_equal(run_in_child(load_scan, CT, ceiling_bytes=1024 * MIB).pixels, in_process.pixels)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(ScanError) as here:
        load_scan(empty)
    with pytest.raises(ScanError) as there:
        run_in_child(load_scan, empty, ceiling_bytes=1024 * MIB)
    assert (there.value.path, there.value.reason) == (here.value.path, here.value.reason)
    with pytest.raises(MemoryCeilingError, match=r"^decoder exceeded the memory limit \(0.25 GiB\)$"):
        run_in_child(load_scan, uncompressed_bomb(tmp_path / "bomb.dcm"), ceiling_bytes=256 * MIB)
    with pytest.raises(MemoryCeilingError):
        run_in_child(signal.raise_signal, signal.SIGKILL, ceiling_bytes=512 * MIB)  # as the OOM killer would
    with pytest.raises(TimeLimitError, match=r"^took longer than the 0.5 s limit$"):
        run_in_child(time.sleep, 60, ceiling_bytes=512 * MIB, timeout_s=0.5)
