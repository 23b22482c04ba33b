"""The distribution as a user gets it: a wheel under one ``radbench`` namespace, carrying the model and the
samples, that classifies a bundled sample when installed somewhere else and run from another folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(dist.glob("radbench-*.whl"))


@pytest.mark.slow
def test_the_wheel_installs_one_namespace_with_the_model_and_the_samples(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"radbench", wheel.name.split("-py")[0] + ".dist-info"}
    assert {"radbench/models/pneumonia.onnx", "radbench/sample_images/chest_cr_rg1_j2k_lossless.dcm",
            "radbench/sample_images/README.md", "radbench/__main__.py", "radbench/inference/loading/dicom.py",
            "radbench/app/cli.py"} <= set(names)


@pytest.mark.slow
def test_the_installed_wheel_classifies_a_bundled_sample_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies come from this environment's site-packages (a path only: its .pth files, among them
    # the editable install of this checkout, are not run), RadBench itself only from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.run([python, "-c", "import radbench.app.samples as s, radbench.inference.model as m; "
                              "print(s.SAMPLE_DIR); print(m.DEFAULT_MODEL_PATH)"],
                             cwd=elsewhere, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in located)
    sample = Path(located[0]) / "chest_cr_rg1_j2k_lossless.dcm"
    result = subprocess.run([python, "-m", "radbench", "predict", str(sample), "--json"], cwd=elsewhere,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["label"] in ("NORMAL", "PNEUMONIA") and record["model"].startswith("radbench-pneumonia-cnn")
    assert record["notice"] == "For education, not for clinical use."


def test_finding_the_samples_leaves_no_pycache_among_them():
    """``radbench sample_images/*`` must see scans only, so nothing compiles the folder's ``__init__.py``."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    listed = subprocess.run([sys.executable, "-c", "from radbench.app.samples import sample_files as s; "
                             "print(*(p.name for p in s()))"], env=environment, capture_output=True, text=True,
                            check=True).stdout.split()
    assert listed and all(name.endswith((".dcm", ".png")) for name in listed)
    assert not (ROOT / "sample_images" / "__pycache__").exists()
