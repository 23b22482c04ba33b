"""``radbench profile``: a real cProfile run, a .prof that pstats reads, a Chrome trace with ONNX Runtime's operators,
and a clear error for a bad file."""

from __future__ import annotations

import json
import pstats
from pathlib import Path

from pydicom.data import get_testdata_file

from radbench.app.cli import main
from radbench.inference.pipeline import PIPELINE_STAGES

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def test_profile_writes_a_readable_prof_and_prints_the_top_functions(tmp_path, capsys):
    out = tmp_path / "run.prof"
    assert main(["profile", get_testdata_file("CT_small.dcm"), "--backend", "naive", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cumulative" in printed and "pipeline.py" in printed and str(out) in printed
    functions = {name for _, _, name in pstats.Stats(str(out)).stats}
    assert {"run", "equalize", "resize"} <= functions  # the naive backend's stage functions were profiled


def test_profile_gives_no_label_for_a_scan_outside_the_models_domain(tmp_path, capsys):
    assert main(["profile", str(SAMPLES / "ct_small_128px.dcm"), "--out", str(tmp_path / "x.prof"), "--top", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "no verdict (" in first and "PNEUMONIA" not in first and "NORMAL" not in first


def test_profile_of_a_bad_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM" * 10)
    assert main(["profile", str(bad), "--out", str(tmp_path / "x.prof")]) == 1
    err = capsys.readouterr().err
    assert "bad.dcm" in err and "Traceback" not in err


def test_trace_has_a_span_per_stage_and_the_onnx_operators_on_the_same_clock(tmp_path, capsys):
    out = tmp_path / "trace.json"
    assert main(["profile", str(SAMPLES / "chest_pediatric_normal.dcm"), "--trace", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    events = json.loads(out.read_text())["traceEvents"]
    spans = {e["name"]: e for e in events if e.get("cat") == "stage"}
    assert list(spans) == list(PIPELINE_STAGES)
    assert all(e["ph"] == "X" and e["dur"] > 0 for e in spans.values())
    operators = [e for e in events if e.get("cat") == "Node"]
    assert operators and any(e["name"].startswith("Conv ") for e in operators)
    infer = spans["infer"]
    run = next(e for e in events if e["name"] == "model_run")  # ONNX Runtime's run lies inside our infer stage
    assert infer["ts"] <= run["ts"] and run["ts"] + run["dur"] <= infer["ts"] + infer["dur"] + 50  # µs of slack
    assert all(infer["ts"] <= e["ts"] <= infer["ts"] + infer["dur"] for e in operators)
    assert not (tmp_path / "run.prof").exists()


def test_trace_to_a_missing_folder_or_of_a_bad_file_is_one_clear_line(tmp_path, capsys):
    assert main(["profile", str(SAMPLES / "chest_pediatric_normal.dcm"), "--trace",
                 str(tmp_path / "missing" / "t.json")]) == 2
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM" * 10)
    assert main(["profile", str(bad), "--trace", str(tmp_path / "t.json")]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "bad.dcm" in err and "Traceback" not in err
    assert not (tmp_path / "t.json").exists()
