"""``radbench profile``: a real cProfile run, a .prof that pstats reads, and a clear error for a bad file."""

from __future__ import annotations

import pstats

from pydicom.data import get_testdata_file

from radbench.app.cli import main


def test_profile_writes_a_readable_prof_and_prints_the_top_functions(tmp_path, capsys):
    out = tmp_path / "run.prof"
    assert main(["profile", get_testdata_file("CT_small.dcm"), "--backend", "naive", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cumulative" in printed and "pipeline.py" in printed and str(out) in printed
    functions = {name for _, _, name in pstats.Stats(str(out)).stats}
    assert {"run", "equalize", "resize"} <= functions  # the naive backend's stage functions were profiled


def test_profile_of_a_bad_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM" * 10)
    assert main(["profile", str(bad), "--out", str(tmp_path / "x.prof")]) == 1
    err = capsys.readouterr().err
    assert "bad.dcm" in err and "Traceback" not in err
