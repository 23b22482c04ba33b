"""Peak memory of loading and preprocessing one file with one backend, measured in a fresh process.

The child, ``python -m radbench.inference.benchmarking.memory FILE BACKEND``, imports everything and warms the
backend up first, notes its resident size (the baseline), then loads the file and runs the five compute stages;
the peak is the process's high-water mark (ru_maxrss), which also counts Numba's and the decoders' native
allocations that tracemalloc cannot see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from radbench.inference.benchmarking.file_bench import stage_backend
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess


@dataclass(frozen=True)
class MemoryPeak:
    file: str
    backend: str
    decoded_bytes: int
    peak_above_baseline_bytes: int
    censored: bool  # the high-water mark was already set before loading: the true peak is at most this

    @property
    def ratio(self) -> float:
        """Peak above the baseline in units of the decoded image's size."""
        return self.peak_above_baseline_bytes / max(1, self.decoded_bytes)


def memory_peak(path: str | Path, backend: str) -> MemoryPeak:
    """Measure one (file, backend) in a fresh interpreter; ``RuntimeError`` if the child fails."""
    result = subprocess.run([sys.executable, "-m", "radbench.inference.benchmarking.memory", str(path), backend],
                            capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement of {backend} on {path} failed: {result.stderr.strip()[-500:]}")
    m = json.loads(result.stdout.strip().splitlines()[-1])
    return MemoryPeak(str(path), backend, m["decoded"], max(0, m["peak"] - m["baseline"]),
                      censored=m["peak"] == m["before"])


def _measure(path: str, name: str) -> dict[str, int]:
    """The child's work: resident size after warming up, high-water marks before and after loading and
    preprocessing ``path``, and the decoded image's size, in bytes."""
    import resource  # Unix only, like /proc: imported where it is used, so the parent imports this module anywhere

    card, backend = Model().card, stage_backend(name)
    for dtype in ("uint8", "uint16", "int16", "float32"):
        backend.warm_up(dtype)

    def high_water() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    with open("/proc/self/statm", encoding="ascii") as statm:
        baseline = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    before = high_water()
    scan = load_scan(path)
    preprocess(scan.grey_frame(), PreprocessSpec.from_card(card, scan), backend)
    return {"baseline": baseline, "before": before, "peak": high_water(), "decoded": scan.pixels.nbytes}


if __name__ == "__main__":
    print(json.dumps(_measure(*sys.argv[1:3])))
