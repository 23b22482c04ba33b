"""Peak memory of loading and preprocessing one file with one backend, measured in a fresh process.

The child, ``python -m radbench.inference.benchmarking.memory FILE BACKEND [DECODER]``, imports everything (the
decoder plugins included) and warms the backend up on tiny images, which compiles Numba's kernels and starts its thread
pool, then hands the C allocator's free memory back to the system (``malloc_trim``): its resident size then is the
baseline, free pages that loading could reuse unseen not included. On Linux it resets the kernel's high-water mark of
its resident size (``/proc/self/clear_refs``, "5"), loads the file (with DECODER if given) and reads the mark
(``VmHWM`` in ``/proc/self/status``): the loading peak; resets it again, preprocesses the default frame with the scan
held and reads it again: the preprocessing peak.
Both are above the same baseline and count what tracemalloc cannot see: Numba's, NumPy's and the decoders' native
allocations, and memory the C allocator keeps mapped after a free.

The file is loaded for the first time in the process, as a command-line run loads it. Checked on 2 cores: a
warm-up that also preprocesses a 256 x 256 or 1024 x 1024 frame changes the preprocessing peaks by under 0.1
decoded image; loading the same JPEG 2000 file once before lowers its loading peak by about 0.5 (OpenJPEG's code
pages and the C allocator's first growth).

Where the mark cannot be reset, the process's lifetime high-water mark (``ru_maxrss``) is all there is: importing
may already have set it above anything loading and preprocessing reach, and then the figure is only an upper bound
(``censored``).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from radbench.inference.benchmarking.file_bench import stage_backend
from radbench.inference.loading import decoder_plugins, load_scan, release_free_memory
from radbench.inference.model import Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess

#: How the child measured: the high-water mark reset before each part, or the lifetime one.
RESET_HIGH_WATER, LIFETIME_HIGH_WATER = "clear_refs", "ru_maxrss"
_CLEAR_REFS, _STATUS = "/proc/self/clear_refs", "/proc/self/status"
_RESET_SLACK = 1024**2  # after a reset the mark may exceed the resident size by the kernel's counter batching


@dataclass(frozen=True)
class MemoryPeak:
    file: str
    backend: str
    decoded_bytes: int
    peak_above_baseline_bytes: int  # the larger of the two parts below (or, unreset, of both together)
    censored: bool  # the high-water mark was already set before loading: the true peak is at most this
    load_peak_bytes: int | None = None  # above the baseline; None unless the mark could be reset
    preprocess_peak_bytes: int | None = None  # above the baseline, the loaded scan held
    resident_after_load_bytes: int | None = None  # above the baseline: the scan and what loading left mapped
    measured_by: str = LIFETIME_HIGH_WATER
    decoder: str | None = None  # which decoder loaded the file (the one forced, or the fastest for its syntax)

    @property
    def ratio(self) -> float:
        """Peak above the baseline in units of the decoded image's size."""
        return self.times(self.peak_above_baseline_bytes)

    def times(self, nbytes: int) -> float:
        """``nbytes`` in units of the decoded image's size."""
        return nbytes / max(1, self.decoded_bytes)


def memory_peak(path: str | Path, backend: str, decoder: str | None = None) -> MemoryPeak:
    """Measure one (file, backend) in a fresh interpreter, loading with ``decoder`` if given (as
    :func:`inference.loading.load_scan` takes it); ``RuntimeError`` if the child fails."""
    result = subprocess.run([sys.executable, "-m", "radbench.inference.benchmarking.memory", str(path), backend,
                             *([decoder] if decoder else [])],
                            capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement of {backend} on {path} failed: {result.stderr.strip()[-500:]}")
    return peak_from_child(str(path), backend, json.loads(result.stdout.strip().splitlines()[-1]))


def peak_from_child(file: str, backend: str, m: dict) -> MemoryPeak:
    """The child's figures (:func:`_measure`) as a :class:`MemoryPeak`."""
    if m["measured_by"] == RESET_HIGH_WATER:
        load, processing = (max(0, m[key] - m["baseline"]) for key in ("load_peak", "preprocess_peak"))
        return MemoryPeak(file, backend, m["decoded"], max(load, processing), censored=False, load_peak_bytes=load,
                          preprocess_peak_bytes=processing,
                          resident_after_load_bytes=max(0, m["after_load"] - m["baseline"]),
                          measured_by=RESET_HIGH_WATER, decoder=m.get("decoder"))
    return MemoryPeak(file, backend, m["decoded"], max(0, m["peak"] - m["baseline"]), censored=m["peak"] == m["before"],
                      measured_by=LIFETIME_HIGH_WATER, decoder=m.get("decoder"))


def reset_high_water() -> bool:
    """Reset this process's high-water mark of resident memory to its resident size; False where Linux's
    ``/proc/self/clear_refs`` is missing, refuses the write or ignores it."""
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        status = resident_status()
    except (OSError, KeyError, ValueError):
        return False
    return status["VmHWM"] <= status["VmRSS"] + _RESET_SLACK


def resident_status() -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (its high-water mark) of this process, in bytes."""
    found = {}
    with open(_STATUS, encoding="ascii", errors="replace") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024  # "12345 kB"
    return {"VmRSS": found["VmRSS"], "VmHWM": found["VmHWM"]}


def _measure(path: str, name: str, decoder: str | None = None) -> dict[str, int | str]:
    """The child's work: resident sizes and high-water marks around loading ``path`` (with ``decoder`` if given)
    and preprocessing it after warming up, the decoded image's size, in bytes (see the module's docstring), and the
    decoder that loaded it."""
    card, backend = Model().card, stage_backend(name)
    decoder_plugins()  # imports every decoder plugin, as loading a compressed file would
    for dtype in ("uint8", "uint16", "int16", "float32"):
        backend.warm_up(dtype)  # tiny images: compiled kernels and started thread pools, no large block freed yet
    gc.collect()
    release_free_memory()
    if reset_high_water():
        baseline = resident_status()["VmRSS"]
        scan = load_scan(path, decoder=decoder)
        loaded = resident_status()
        reset_high_water()
        preprocess(scan.grey_frame(), PreprocessSpec.from_card(card, scan), backend)
        return {"measured_by": RESET_HIGH_WATER, "baseline": baseline, "load_peak": loaded["VmHWM"],
                "after_load": loaded["VmRSS"], "preprocess_peak": resident_status()["VmHWM"],
                "decoded": scan.pixels.nbytes, "decoder": scan.decoder}
    return _measure_lifetime(path, card, backend, decoder)


def _measure_lifetime(path: str, card, backend, decoder: str | None) -> dict[str, int | str]:
    """Without a reset: the lifetime high-water mark before and after, above the resident size before (Linux's
    ``/proc/self/status`` is still needed for that)."""
    import resource  # Unix only, like /proc: imported where it is used, so the parent imports this module anywhere

    def high_water() -> int:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere

    baseline, before = resident_status()["VmRSS"], high_water()
    scan = load_scan(path, decoder=decoder)
    preprocess(scan.grey_frame(), PreprocessSpec.from_card(card, scan), backend)
    return {"measured_by": LIFETIME_HIGH_WATER, "baseline": baseline, "before": before, "peak": high_water(),
            "decoded": scan.pixels.nbytes, "decoder": scan.decoder}


if __name__ == "__main__":
    print(json.dumps(_measure(*sys.argv[1:4])))
