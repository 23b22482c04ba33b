"""What RadBench says: decoders' warnings and prints in the file's row (never unnamed on stderr, never with a
patient's value), exit statuses, and help texts and README synopses that agree with the parser."""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import data_store
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radbench.app.cli import build_parser, main
from radbench.inference.loading import load_scan
from radbench.inference.loading.noise import captured_noise

ROOT = Path(__file__).resolve().parent.parent
RADBENCH = Path(sys.executable).parent / "radbench"
SECRET_UID = "1.2.826.0.1.4711.SECRET"


def _rows(path: Path) -> dict[str, dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return {Path(row["path"]).name: row for row in csv.DictReader(f)}


def _planted_uid(path: Path) -> Path:
    """CT_small whose SOP Instance UID is invalid (letters): pydicom warns, quoting the identifying value."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.warns(UserWarning):
        ds.SOPInstanceUID = SECRET_UID
    ds.save_as(path)
    return path


def test_captured_noise_holds_c_prints_and_warnings_with_quoted_values_hidden(tmp_path):
    planted = _planted_uid(tmp_path / "planted.dcm")
    with captured_noise() as noise:
        load_scan(get_testdata_file("JPEG-lossy.dcm"))  # GDCM's libjpeg prints to file descriptor 2
        load_scan(planted)
    assert noise == ["Invalid value for VR UI: '…'.", "Unsupported JPEG data precision 12",
                     "Invalid SOS parameters for sequential JPEG"]


def test_batch_puts_what_decoders_say_in_the_files_row_not_on_stderr(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(get_testdata_file("JPEG-lossy.dcm"), root / "lossy12.dcm")
    _planted_uid(root / "planted.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "mr.dcm")
    out = tmp_path / "r.csv"
    result = subprocess.run([str(RADBENCH), "batch", str(root), "--out", str(out), "--workers", "1"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("done: 3 files: 3 ok")
    rows = _rows(out)
    assert rows["lossy12.dcm"]["decoder"] == "gdcm-direct"
    assert rows["lossy12.dcm"]["warning"] == ("Unsupported JPEG data precision 12; Invalid SOS parameters for "
                                              "sequential JPEG")
    assert rows["planted.dcm"]["warning"] == "Invalid value for VR UI: '…'."
    assert rows["mr.dcm"]["warning"] == ""
    assert SECRET_UID not in out.read_text()


def test_predict_on_only_skipped_files_exits_0(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a scan")
    assert main(["predict", str(tmp_path / "notes.txt"), str(get_testdata_file("DICOMDIR"))]) == 0
    err = capsys.readouterr().err
    assert "skipped: " not in err and "0 classified, 0 failed, 2 skipped (not scans)" in err


def test_a_non_scan_named_alone_says_why_it_was_skipped(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a scan")
    assert main(["predict", str(tmp_path / "notes.txt")]) == 0
    assert f"skipped: {tmp_path / 'notes.txt'}: not a DICOM or image file" in capsys.readouterr().err


def _commands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: parser for name, parser in action.choices.items() if name != "gui"}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def test_every_option_has_help_naming_its_default():
    for command, parser in _commands().items():
        for action in _options(parser):
            default = action.default
            shown = ",".join(default) if isinstance(default, tuple) else format(default, "g") \
                if isinstance(default, float) else str(default)
            assert action.help, (command, action.option_strings)
            if default not in (None, False):
                assert f"default: {shown}" in action.help or f"default {shown}" in action.help, (command, action.help)


def test_readme_synopses_list_exactly_the_options_of_each_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command, parser in _commands().items():
        section = readme.split(f"## `radbench {command}`", 1)[1]
        synopsis = section.split("```", 2)[1]
        assert synopsis.lstrip().startswith(f"radbench {command}"), command
        assert set(re.findall(r"--[a-z-]+", synopsis)) == {a.option_strings[0] for a in _options(parser)}, command
        for action in _options(parser):
            if action.choices and "--backend" in action.option_strings:
                assert f"--backend {'|'.join(action.choices)}" in synopsis, command


def test_heatmap_files_are_named_as_the_readme_says(tmp_path):
    from radbench.app.predict_command import _heatmap_paths

    paths = _heatmap_paths(str(tmp_path), ["scans/chest.dcm", "scans/knee.png"])
    assert [p.name for p in paths.values()] == ["chest.dcm_heatmap.png", "knee.png_heatmap.png"]
    assert "(`chest.dcm` →\n`chest.dcm_heatmap.png`)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("root", [Path(pydicom.data.__file__).parent / "test_files",
                                  Path(data_store.__file__).parent / "data"], ids=["pydicom", "pydicom-data"])
def test_a_batch_over_the_whole_corpus_prints_no_line_that_names_no_file(tmp_path, root):
    out = tmp_path / "r.csv"
    result = subprocess.run([str(RADBENCH), "batch", str(root), "--out", str(out), "--workers", "2"],
                            capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["path"] for row in rows) == sorted(str(p) for p in root.rglob("*") if p.is_file())
    names = [str(root), str(out)]
    assert [line for line in result.stderr.splitlines() if not any(name in line for name in names)] == []
    assert any(row["warning"] for row in rows)  # the corpus does make pydicom warn: it went to the rows
