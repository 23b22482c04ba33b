"""``radbench predict --backend numba`` announces a cold compile on stderr before it starts, and only then: with a
fresh, empty NUMBA_CACHE_DIR in a subprocess, then again with the cache that run wrote. A cold run compiles only the
kernels its frame's dtype and preprocessing call, one signature each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from radbench.inference.benchmarking.numba_compile import FIRST_DTYPE_COMPILE_S, NEXT_DTYPE_COMPILE_S

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT = SAMPLES / "ct_small_128px.dcm"  # int16, a window preset
PNG = SAMPLES / "tibia_cr_rg3_8bit_440px.png"  # uint8, no window: the image's own range
RADBENCH = shutil.which("radbench", path=str(Path(sys.executable).parent)) or "radbench"


def test_predict_says_it_compiles_before_a_cold_compile_and_not_before_a_cache_load(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def predict() -> subprocess.CompletedProcess:
        return subprocess.run([RADBENCH, "predict", "--backend", "numba", str(CT)], env=env, capture_output=True,
                              text=True, timeout=600, check=False)

    cold = predict()
    assert cold.returncode == 0, cold.stderr
    about = round(FIRST_DTYPE_COMPILE_S)
    assert f"compiling Numba kernels (first use, about {about} s)…" in cold.stderr.splitlines()
    assert "  numba compile: cold compile, " in cold.stdout
    cached = predict()
    assert cached.returncode == 0, cached.stderr
    assert "compiling" not in cached.stderr
    assert "  numba compile: on-disk cache load, " in cached.stdout


def test_a_cold_run_compiles_only_what_its_dtype_and_preprocessing_call(tmp_path):
    """The CT (int16) compiles nine kernels, one signature each: rescale's for int16, the float32 stages, the checks;
    not the raw-value window, not the fused path. A PNG (uint8) next adds only rescale's uint8 signature, announced as
    such."""
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}

    def predict(path: Path) -> subprocess.CompletedProcess:
        result = subprocess.run([RADBENCH, "predict", "--backend", "numba", str(path)], env=env, capture_output=True,
                                text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr
        return result

    def compiled() -> dict[str, int]:
        """Kernel -> signatures in the cache (one .nbc file each)."""
        found: dict[str, int] = {}
        for data in cache.rglob("*.nbc"):
            kernel = data.name.split("-")[0]
            found[kernel] = found.get(kernel, 0) + 1
        return found

    predict(CT)
    assert compiled() == dict.fromkeys(["stages._rescale", "stages._window", "stages._bit_ranges", "stages._histogram",
                                        "stages._equalize", "stages._resample_columns", "stages._resample_rows",
                                        "stages._normalize", "inputs._exponent_max"], 1)
    png = predict(PNG)
    about = max(1, round(NEXT_DTYPE_COMPILE_S))
    assert f"compiling Numba kernels (first use, about {about} s)…" in png.stderr.splitlines()
    assert compiled()["stages._rescale"] == 2 and sum(compiled().values()) == 10
