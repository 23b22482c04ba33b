"""``radbench batch`` on real folders: every input gets exactly one row, nothing is lost, nothing leaks."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from test_batch_hostile import uncompressed_bomb

from radbench.app.cli import main
from radbench.inference.batch import columns, escape_cell
from radbench.inference.model import Model

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RADBENCH = Path(sys.executable).parent / "radbench"


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folder(tmp_path) -> Path:
    """Real scans in nested folders, a DICOM without extension, and things that are not scans."""
    root = tmp_path / "export"
    (root / "series" / "deeper").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "series" / "IM0001")  # no extension
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "series" / "deeper" / "mr.dcm")
    shutil.copy(SAMPLES / "tibia_cr_rg3_8bit_440px.png", root / "tibia.png")
    (root / "notes.txt").write_text("=HYPERLINK(\"http://example.com\")")
    (root / "empty.dcm").write_bytes(b"")
    (root / "truncated.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:2000])
    (root / "scan_folder.dcm").mkdir()  # a directory named like a scan: not an input
    os.symlink(root / "gone.dcm", root / "broken_link.dcm")
    return root


def test_every_file_gets_one_row_with_its_status_and_reason(folder, tmp_path):
    out = tmp_path / "results.csv"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1"]) == 0
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert set(rows) == {"IM0001", "mr.dcm", "tibia.png", "notes.txt", "empty.dcm", "truncated.dcm",
                         "broken_link.dcm"}
    assert {n for n, r in rows.items() if r["status"] == "ok"} == {"IM0001", "mr.dcm", "tibia.png"}
    assert rows["notes.txt"]["status"] == "skipped" and rows["notes.txt"]["error"]
    assert rows["broken_link.dcm"]["status"] == "error" and "broken symbolic link" in rows["broken_link.dcm"]["error"]
    for name in ("empty.dcm", "truncated.dcm"):
        assert rows[name]["status"] in ("error", "skipped") and rows[name]["error"]
    ct = rows["IM0001"]
    assert ct["label"] == "" and ct["withheld"].startswith("withheld: the model was trained on chest CR/DX")
    assert "modality CT" in ct["ood_warning"]
    assert float(ct["prob_NORMAL"]) + float(ct["prob_PNEUMONIA"]) == pytest.approx(1.0, abs=1e-5)
    assert float(ct["decode_ms"]) > 0 and float(ct["equalize_ms"]) > 0 and ct["decoder"]
    assert list(_rows(out)[0]) == columns(Model().card.labels)


def test_strict_makes_error_rows_fail_the_run(folder, tmp_path):
    assert main(["batch", str(folder), "--out", str(tmp_path / "r.csv"), "--workers", "1", "--strict"]) == 1
    assert main(["batch", str(tmp_path / "absent"), "--out", str(tmp_path / "r2.csv")]) == 2


def test_no_patient_values_unless_asked_and_formulas_are_escaped(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "=Doe^Jane", "PID-4711-SECRET", "ACC-0815-SECRET"
    ds.PatientBirthDate = "19700101"
    ds.save_as(root / "planted.dcm")
    plain, phi = tmp_path / "plain.csv", tmp_path / "phi.csv"
    assert main(["batch", str(root), "--out", str(plain), "--json", str(tmp_path / "plain.json"),
                 "--workers", "1"]) == 0
    for path in (plain, tmp_path / "plain.json"):
        text = path.read_text()
        for secret in ("Doe^Jane", "PID-4711-SECRET", "ACC-0815-SECRET", "19700101"):
            assert secret not in text
    assert main(["batch", str(root), "--out", str(phi), "--workers", "1", "--include-phi"]) == 0
    text = phi.read_text()
    assert "'=Doe^Jane" in text and "PID-4711-SECRET" in text  # asked for, and escaped for spreadsheets
    assert _rows(phi)[0]["PatientName"] == "'=Doe^Jane"


@pytest.mark.parametrize("value, expected", [("=1+1", "'=1+1"), ("+x", "'+x"), ("-x", "'-x"), ("@x", "'@x"),
                                             ("plain", "plain"), (-0.5, -0.5), ("", "")])
def test_escape_cell(value, expected):
    assert escape_cell(value) == expected


def test_resume_keeps_finished_rows_and_does_the_rest(folder, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1"]) == 0
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])  # as if killed mid-row
    kept = [r for r in _rows(out) if r["size_bytes"]]  # a broken link has no identity to check: redone
    assert len(kept) == 2
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1", "--resume"]) == 0
    rows = _rows(out)
    assert rows[:2] == kept
    assert sorted(r["path"] for r in rows) == sorted(r["path"] for r in _rows_of(full))


def _rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines(keepends=True)))


def test_two_workers_give_the_same_rows_as_one(folder, tmp_path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["batch", str(folder), "--out", str(one), "--workers", "1"]) == 0
    assert main(["batch", str(folder), "--out", str(two), "--workers", "2", "--json", str(tmp_path / "two.json")]) == 0

    def key(rows):
        return {r["path"]: (r["status"], r["label"], r["prob_NORMAL"]) for r in rows}
    assert key(_rows(one)) == key(_rows(two))
    document = json.loads((tmp_path / "two.json").read_text())
    assert document["summary"]["files"] == 7 and len(document["rows"]) == 7
    assert document["notice"] == "For education, not for clinical use."


def test_the_console_script_prints_a_summary(folder, tmp_path):
    result = subprocess.run([str(RADBENCH), "batch", str(folder), "--out", str(tmp_path / "r.csv"), "--workers",
                             "2"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "7 files: 3 ok" in result.stderr and "files/s" in result.stderr and "Traceback" not in result.stderr


#: ``radbench batch`` whose CSV sink, once it has written ``sys.argv[1]`` rows, says so on stdout and waits for stdin.
_BATCH_THAT_PAUSES = """
import signal
import sys
from radbench.app.cli import main
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, though a background job ignores it
from radbench.inference.batch import CsvSink
pause_after, write = int(sys.argv[1]), CsvSink.write
def write_then_pause(self, row):
    write(self, row)
    if len(self.rows) == pause_after:
        print(len(self.rows), flush=True)
        sys.stdin.read()
CsvSink.write = write_then_pause
sys.exit(main(sys.argv[2:]))
"""


def test_a_killed_batch_leaves_valid_rows_and_resume_completes_it(tmp_path):
    import select
    import signal

    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        shutil.copy(get_testdata_file("CT_small.dcm"), root / f"ct_{i:02d}.dcm")
    out = tmp_path / "r.csv"
    arguments = ["batch", str(root), "--out", str(out), "--workers", "1"]
    process = subprocess.Popen([sys.executable, "-c", _BATCH_THAT_PAUSES, "5", *arguments], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    select.select([process.stdout], [], [], 600)  # a hang guard only
    assert process.stdout.readline() == "5\n"  # the run has written 5 rows and is waiting: kill it there
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdin.close()
    process.stdout.close()
    before = [r for r in _rows_of(out.read_text()) if r.get("mtime_ns")]
    assert len(before) == 5
    assert all(r["status"] == "ok" for r in before)
    result = subprocess.run([str(RADBENCH), *arguments, "--resume"], capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in root.iterdir())  # each exactly once
    assert rows[: len(before)] == before


def test_after_ctrl_c_the_summary_counts_only_the_files_that_finished(tmp_path):
    import signal

    root = tmp_path / "many"
    root.mkdir()
    for i in range(12):
        shutil.copy(get_testdata_file("CT_small.dcm"), root / f"ct_{i:02d}.dcm")
    out, json_out = tmp_path / "r.csv", tmp_path / "r.json"
    process = subprocess.Popen([sys.executable, "-c", _BATCH_THAT_PAUSES, "3", "batch", str(root), "--out", str(out),
                                "--json", str(json_out), "--workers", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "3\n"  # 3 rows written, the run waits: Ctrl-C there
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 130, stderr
    assert "interrupted: 12 files: 3 ok" in stderr and "; 3 processed in " in stderr and "Traceback" not in stderr
    summary = json.loads(json_out.read_text())["summary"]
    assert summary["processed_this_run"] == 3 and len(_rows(out)) == 3


def test_a_dask_cluster_writes_the_same_rows_as_the_local_pool(folder, tmp_path):
    from distributed import LocalCluster

    uncompressed_bomb(folder / "bomb.dcm")
    local, dask = tmp_path / "local.csv", tmp_path / "dask.csv"
    assert main(["batch", str(folder), "--out", str(local), "--workers", "2", "--memory-limit", "256M"]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main(["batch", str(folder), "--out", str(dask), "--scheduler", cluster.scheduler_address,
                     "--memory-limit", "256M"]) == 0

    def key(rows):
        return {r["path"]: (r["status"], r["error"], r["label"], r["prob_NORMAL"]) for r in rows}
    assert key(_rows(local)) == key(_rows(dask))
    assert {Path(r["path"]).name: r["error"] for r in _rows(dask)}["bomb.dcm"] == \
        "decoder exceeded the memory limit (0.25 GiB)"


def test_a_file_removed_during_the_run_becomes_an_error_row(folder):
    from radbench.inference.batch import BatchConfig, discover, run_batch

    files = discover(folder)
    victim = next(p for p in files if p.name == "tibia.png")
    victim.unlink()  # gone between the folder walk and its turn
    rows = {Path(r["path"]).name: r for r in run_batch(files, BatchConfig(None, "vectorized"))}
    assert len(rows) == len(files)
    assert rows["tibia.png"]["status"] == "error" and "No such file" in rows["tibia.png"]["error"]


def test_fast_decode_reads_jpeg_2000_at_a_reduced_level_and_the_column_says_which_rows(tmp_path, capsys):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(SAMPLES / "chest_cr_rg1_j2k_lossless.dcm", root / "chest.dcm")
    shutil.copy(SAMPLES / "ct_small_128px.dcm", root / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small_jp2klossless.dcm"), root / "small_j2k.dcm")  # 64 x 64: no coarser level
    fast, full = tmp_path / "fast.csv", tmp_path / "full.csv"
    assert main(["batch", str(root), "--out", str(fast), "--json", str(tmp_path / "fast.json"), "--workers", "1",
                 "--fast-decode"]) == 0
    summary_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["batch", str(root), "--out", str(full), "--workers", "1"]) == 0
    rows, reference = ({Path(r["path"]).name: r for r in _rows(path)} for path in (fast, full))
    assert rows["chest.dcm"]["fast_decode"] == "1/8" and rows["chest.dcm"]["decoder"] == "pillow"  # 245 x 231
    assert rows["ct.dcm"]["fast_decode"] == "no: not JPEG 2000"
    assert rows["small_j2k.dcm"]["fast_decode"] == "no: no coarser level covers the model input"
    assert {r["fast_decode"] for r in reference.values()} == {""}
    assert rows["chest.dcm"]["label"] == reference["chest.dcm"]["label"]
    assert abs(float(rows["chest.dcm"]["prob_NORMAL"]) - float(reference["chest.dcm"]["prob_NORMAL"])) < 0.1
    assert rows["small_j2k.dcm"]["prob_NORMAL"] == reference["small_j2k.dcm"]["prob_NORMAL"]  # decoded in full
    assert "1 file fast-decoded" in summary_line and "time per stage summed over them" in summary_line
    summary = json.loads((tmp_path / "fast.json").read_text())["summary"]
    assert summary["fast_decoded"] == 1 and summary["stage_seconds"]["decode"] > 0
    assert set(summary["stage_seconds"]) >= {"decode", "rescale", "equalize", "infer"}


def test_a_forced_decoder_is_named_in_every_row_and_a_file_it_cannot_decode_is_an_error_row(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(SAMPLES / "mr_shoulder_mr2_j2k_lossless.dcm", root / "mr.dcm")
    shutil.copy(get_testdata_file("JPEG-LL.dcm"), root / "lossless.dcm")
    out = tmp_path / "r.csv"
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--decoder", "pylibjpeg"]) == 0
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert (rows["mr.dcm"]["status"], rows["mr.dcm"]["decoder"]) == ("ok", "pylibjpeg")
    assert (rows["lossless.dcm"]["status"], rows["lossless.dcm"]["decoder"]) == ("ok", "pylibjpeg")
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--decoder", "pillow"]) == 0
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert rows["mr.dcm"]["decoder"] == "pillow"
    assert rows["lossless.dcm"]["status"] == "error"
    assert rows["lossless.dcm"]["error"].startswith("decoder pillow cannot read JPEG Lossless")
    assert rows["lossless.dcm"]["error"].endswith("the decoders for it here are gdcm, pylibjpeg")


def test_workers_share_the_cpus_by_default_and_decoders_run_on_one_thread_each(tmp_path, capsys):
    from radbench.inference.batch import share_of_cpus
    from radbench.inference.machine import usable_cpus

    root = tmp_path / "in"
    root.mkdir()
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(SAMPLES / "mr_shoulder_mr2_j2k_lossless.dcm", root / name)
    out = tmp_path / "r.csv"
    assert main(["batch", str(root), "--out", str(out), "--workers", str(usable_cpus())]) == 0
    assert share_of_cpus(usable_cpus()) == 1 and share_of_cpus(1) == usable_cpus()
    for row in _rows(out):
        assert (row["decoder"], row["decoder_threads"], row["onnxruntime_threads"]) == ("pylibjpeg", "1", "1")
    assert "note:" not in capsys.readouterr().err  # no oversubscription to warn about
