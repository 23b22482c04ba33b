"""The environment stamp every benchmark result is printed with: CPU, cores, versions and thread settings."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from radbench.inference.benchmarking.onnx_latency import ORT_THREADS
from radbench.inference.machine import usable_cpus
from radbench.inference.onnx_runtime import CPU_PROVIDER, NO_SPINNING

PACKAGES = ("numpy", "numba", "onnxruntime", "pydicom", "scikit-image", "opencv-python-headless")


def environment(ort_threads: Iterable[int] = ORT_THREADS) -> dict[str, object]:
    """CPU, versions, and Numba's and the benchmark's ONNX Runtime sessions' thread settings."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised (no parallel kernel ran)"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: _version(package) for package in PACKAGES},
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "unset"),
        "numba_config_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_get_num_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "onnxruntime_sessions": {"provider": CPU_PROVIDER, "intra_op_threads": list(ort_threads),
                                 "inter_op_threads": 1, "execution_mode": "sequential", **NO_SPINNING},
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` gives them ("unknown" elsewhere)."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
