"""Output files: one rule for every command, checked before any work; symbolic links followed, devices, pipes and
folders refused, missing folders refused, modes from the umask. Tests run as root here, so "unwritable" is made
so that root is refused too: a path under a regular file, or in /proc."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from test_batch import _BATCH_THAT_PAUSES

from radbench.app.cli import main
from radbench.inference.atomic_file import OutputError, check_output, write_atomically

CT = get_testdata_file("CT_small.dcm")
MISSING = "does not exist (folders are not created)"


@pytest.fixture
def scans(tmp_path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(CT, root / "ct.dcm")
    return root


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _leftovers(*folders: Path) -> list[str]:
    return [p.name for folder in folders for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_is_followed_and_its_target_replaced_in_the_target_folder(tmp_path):
    links, targets = tmp_path / "links", tmp_path / "targets"
    links.mkdir()
    targets.mkdir()
    (targets / "r.json").write_text("old")
    (links / "r.json").symlink_to(targets / "r.json")
    write_atomically(links / "r.json", lambda f: f.write("new"))
    assert (links / "r.json").is_symlink() and (targets / "r.json").read_text() == "new"
    (links / "dangling.json").symlink_to(targets / "later.json")  # a link to a name not yet written
    write_atomically(links / "dangling.json", lambda f: f.write("made"))
    assert (links / "dangling.json").is_symlink() and (targets / "later.json").read_text() == "made"
    assert _leftovers(links, targets) == []


def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask):
    new, replaced = tmp_path / "new.csv", tmp_path / "replaced.csv"
    replaced.write_text("old")
    replaced.chmod(0o600)
    for path in (new, replaced):
        write_atomically(path, lambda f: f.write("x"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    umask(0o077)
    write_atomically(new, lambda f: f.write("y"))
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    write_atomically(tmp_path / "profile.prof", lambda f: f.write(b"\x00binary"), binary=True)
    assert (tmp_path / "profile.prof").read_bytes() == b"\x00binary"


def test_folders_devices_and_pipes_are_refused_without_being_touched(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a folder"), (fifo, "a named pipe (FIFO)"), (Path("/dev/full"), "a character device"),
                       (Path("/dev/null"), "a character device")):
        with pytest.raises(OutputError) as refused:
            write_atomically(path, lambda f: f.write("x"))
        assert str(refused.value) == f"{path}: is {kind}, not a regular file (outputs are written as regular files)"
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_missing_and_unwritable_folders_are_refused_even_for_root(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = {tmp_path / "missing" / "r.csv": f"{tmp_path / 'missing'} {MISSING}",
             a_file / "r.json": f"{a_file} is not a folder",
             Path("/proc/radbench-test.json"): "cannot create files in /proc (No such file or directory)"}
    for path, reason in cases.items():
        with pytest.raises(OutputError) as refused:
            check_output(path)
        assert str(refused.value) == f"{path}: {reason}"
        assert refused.value.strerror == reason  # what an OSError handler prints
    assert not (tmp_path / "missing").exists()
    assert check_output(tmp_path / "new.csv") == tmp_path / "new.csv" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("unwritable", ["under_a_file", "proc"])
def test_batch_refuses_an_unwritable_json_before_processing_anything(scans, tmp_path, capsys, unwritable):
    (tmp_path / "a_file").write_text("")
    json_path = tmp_path / "a_file" / "r.json" if unwritable == "under_a_file" else Path("/proc/radbench-r.json")
    out = tmp_path / "r.csv"
    assert main(["batch", str(scans), "--out", str(out), "--json", str(json_path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"radbench batch: {json_path}: ") and "Traceback" not in err
    assert not out.exists() and not Path(f"{out}.lock").exists()  # nothing processed, nothing written


def test_batch_refuses_a_pipe_or_folder_as_its_csv(scans, tmp_path, capsys):
    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    assert main(["batch", str(scans), "--out", str(fifo)]) == 2
    assert main(["batch", str(scans), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    why = "not a regular file (outputs are written as regular files)"
    assert err == [f"radbench batch: {fifo}: is a named pipe (FIFO), {why}",
                   f"radbench batch: {tmp_path}: is a folder, {why}"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_missing_folders_are_refused_alike_by_batch_profile_and_predict(scans, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["batch", str(scans), "--out", str(missing / "r.csv")]) == 2
    assert main(["batch", str(scans), "--out", str(tmp_path / "r.csv"), "--json", str(missing / "r.json")]) == 2
    assert main(["profile", CT, "--out", str(missing / "run.prof")]) == 2
    assert main(["predict", CT, "--heatmap", str(missing / "heat.png")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"radbench batch: {missing / 'r.csv'}: {missing} {MISSING}",
                   f"radbench batch: {missing / 'r.json'}: {missing} {MISSING}",
                   f"radbench profile: {missing / 'run.prof'}: {missing} {MISSING}",
                   f"radbench: {missing / 'heat.png'}: {missing} {MISSING}"]
    assert not missing.exists() and not (tmp_path / "r.csv").exists()


def test_batch_writes_its_csv_and_json_through_symbolic_links(scans, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "r.csv").symlink_to(results / "r.csv")
    (tmp_path / "r.json").symlink_to(results / "r.json")
    assert main(["batch", str(scans), "--out", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json"),
                 "--workers", "1"]) == 0
    assert (tmp_path / "r.csv").is_symlink() and (tmp_path / "r.json").is_symlink()
    with (results / "r.csv").open(newline="", encoding="utf-8") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["ok"]
    assert json.loads((results / "r.json").read_text())["summary"]["files"] == 1
    assert sorted(p.name for p in results.iterdir()) == ["r.csv", "r.json"]  # no lock or temporary file left


def test_profile_writes_through_a_symbolic_link(tmp_path, capsys):
    (tmp_path / "run.prof").symlink_to(tmp_path / "real.prof")
    assert main(["profile", CT, "--out", str(tmp_path / "run.prof")]) == 0
    assert (tmp_path / "run.prof").is_symlink() and (tmp_path / "real.prof").stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_json_that_cannot_be_written_at_the_end_is_one_line_and_exit_2(scans, tmp_path):
    """The JSON's folder vanishes while the batch runs: the run ends with one line, exit 2 and a complete CSV."""
    shutil.copy(CT, scans / "ct2.dcm")
    gone, out = tmp_path / "gone", tmp_path / "r.csv"
    gone.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _BATCH_THAT_PAUSES, "1", "batch", str(scans), "--out", str(out),
                                "--json", str(gone / "r.json"), "--workers", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "1\n"  # one row written, the run waits: remove the JSON's folder
    gone.rmdir()
    stderr = process.communicate("go on", timeout=120)[1]
    assert process.returncode == 2, stderr
    assert stderr.splitlines()[0] == f"radbench batch: {gone / 'r.json'}: cannot write the JSON ({gone} {MISSING})"
    assert "Traceback" not in stderr
    with out.open(newline="", encoding="utf-8") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["ok", "ok"]
