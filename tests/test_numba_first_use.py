"""``radbench predict --backend numba`` announces a cold compile on stderr before it starts, and only then: with a
fresh, empty NUMBA_CACHE_DIR in a subprocess, then again with the cache that run wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CT = Path(__file__).resolve().parent.parent / "sample_images" / "ct_small_128px.dcm"
RADBENCH = shutil.which("radbench", path=str(Path(sys.executable).parent)) or "radbench"


def test_predict_says_it_compiles_before_a_cold_compile_and_not_before_a_cache_load(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def predict() -> subprocess.CompletedProcess:
        return subprocess.run([RADBENCH, "predict", "--backend", "numba", str(CT)], env=env, capture_output=True,
                              text=True, timeout=600, check=False)

    cold = predict()
    assert cold.returncode == 0, cold.stderr
    assert "compiling Numba kernels (first use, about 16 s)…" in cold.stderr.splitlines()
    assert "  numba compile: cold compile, " in cold.stdout
    cached = predict()
    assert cached.returncode == 0, cached.stderr
    assert "compiling" not in cached.stderr
    assert "  numba compile: on-disk cache load, " in cached.stdout
