"""No patient-identifying DICOM value leaves RadBench unless asked: batch CSV and JSON, predict output,
heatmap and view exports, the GUI's tag list. Checked over real corpus files and files with planted values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radbench.app.cli import main

RADBENCH = Path(sys.executable).parent / "radbench"
CORPUS = ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "emri_small.dcm",
          "MR_small_RLE.dcm", "US1_J2KR.dcm", "RG3_J2KI.dcm", "OBXXXX1A.dcm"]
KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
            "ReferringPhysicianName")
PLANTED = {"PatientName": "Plantedname^Zelda", "PatientID": "PID-93847561", "PatientBirthDate": "19311231",
           "AccessionNumber": "ACC77331122", "InstitutionName": "Secret General Hospital",
           "ReferringPhysicianName": "Doctor^Quincy^Planted"}


def _existing(name: str) -> Path | None:
    try:
        return Path(get_testdata_file(name))
    except Exception:  # noqa: BLE001 - a corpus file this pydicom-data version lacks
        return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, set[str]]:
    """Corpus files plus copies with planted identifiers; returns the folder and every identifying value."""
    root = tmp_path_factory.mktemp("phi")
    secrets = set(PLANTED.values())
    for name in CORPUS:
        path = _existing(name)
        if path is None:
            continue
        shutil.copy(path, root / name)
        ds = dcmread(path, stop_before_pixels=True)
        secrets |= {str(ds.get(k)) for k in KEYWORDS if len(str(ds.get(k, "")).strip()) >= 5}
        planted = dcmread(path)
        for keyword, value in PLANTED.items():
            setattr(planted, keyword, value)
        planted.save_as(root / f"planted_{name}")
    return root, secrets


def test_batch_csv_and_json_hold_no_identifying_value(folder, tmp_path):
    root, secrets = folder
    csv_path, json_path = tmp_path / "r.csv", tmp_path / "r.json"
    assert main(["batch", str(root), "--out", str(csv_path), "--json", str(json_path), "--workers", "1"]) == 0
    for path in (csv_path, json_path):
        text = path.read_text()
        leaked = sorted(s for s in secrets if s in text and s not in str(root))
        assert not leaked, f"{path.name} leaks {leaked}"


def test_include_phi_is_the_only_way_in(folder, tmp_path):
    root, _ = folder
    out = tmp_path / "phi.csv"
    assert main(["batch", str(root), "--out", str(out), "--workers", "1", "--include-phi"]) == 0
    text = out.read_text()
    assert PLANTED["PatientID"] in text and PLANTED["AccessionNumber"] in text


def test_predict_output_and_heatmap_export_hold_no_identifying_value(folder, tmp_path):
    root, _secrets = folder
    planted = root / "planted_CT_small.dcm"
    result = subprocess.run([str(RADBENCH), "predict", "--json", "--heatmap", str(tmp_path / "h.png"), str(planted)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr + (tmp_path / "h.png").read_bytes().decode("latin-1")
    assert not [s for s in PLANTED.values() if s in text]


def test_view_export_holds_no_identifying_value(folder, tmp_path, qtbot):
    from radbench.app.viewer import ScanViewer
    from radbench.inference.loading import load_scan

    viewer = ScanViewer()
    qtbot.addWidget(viewer)
    viewer.set_scan(load_scan(folder[0] / "planted_CT_small.dcm"))
    viewer.export_png(tmp_path / "v.png", "For education, not for clinical use.")
    data = (tmp_path / "v.png").read_bytes().decode("latin-1")
    assert not [s for s in PLANTED.values() if s in data]
