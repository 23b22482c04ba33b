"""Peak memory of loading and preprocessing one file with one backend, measured in a fresh process.

The child imports everything and warms the backend up first, notes its resident size (the baseline), then
loads the file and runs the five compute stages; the peak is the process's high-water mark (ru_maxrss),
which also counts Numba's and the decoders' native allocations that tracemalloc cannot see.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
import json, os, resource, sys
from radbench.inference.benchmark import stage_backend
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.pipeline import preprocess
path, name = sys.argv[1:3]
card, backend = Model().card, stage_backend(name)
for dtype in ("uint8", "uint16", "int16", "float32"):
    backend.warm_up(dtype)
def high_water():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
baseline = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = high_water()
scan = load_scan(path)
preprocess(scan, scan.grey_frame(), backend, (card.input_height, card.input_width), card.mean, card.std,
           card.input_channels, equalize=card.equalize)
print(json.dumps({"baseline": baseline, "before": before, "peak": high_water(), "decoded": scan.pixels.nbytes}))
"""


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
    result = subprocess.run([sys.executable, "-c", _SCRIPT, str(path), backend], capture_output=True, text=True,
                            timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement of {backend} on {path} failed: {result.stderr.strip()[-500:]}")
    m = json.loads(result.stdout.strip().splitlines()[-1])
    return MemoryPeak(str(path), backend, m["decoded"], max(0, m["peak"] - m["baseline"]),
                      censored=m["peak"] == m["before"])
