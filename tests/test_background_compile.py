"""``warm_in_subprocess`` (the desktop app's start-up warm-up) compiles in a child process 10 nice levels below the
caller, and ``end_compile_processes`` ends it: that warm-up raises ``CompileEnded``, and later ones still compile."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from radbench.inference.backends import get_backend
from radbench.inference.benchmarking import numba_compile
from radbench.inference.benchmarking.numba_compile import CompileEnded, end_compile_processes, warm_in_subprocess

COMPILER = b"\0radbench.inference.benchmarking.numba_compile\0"  # a compile process's module argument


def _compile_children() -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and COMPILER in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.slow
def test_the_background_compile_runs_below_the_caller_and_ending_it_stops_only_that_warm_up(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba-cache"))  # empty: the child has to compile
    monkeypatch.setattr(numba_compile, "kernels_cached", lambda *args: False)  # this process's dispatchers keep
    backend = get_backend("numba")                                              # their own cache folder
    outcome = []

    def warm_up():
        try:
            outcome.append(warm_in_subprocess(backend, [np.dtype(np.int32)]))
        except CompileEnded as exc:
            outcome.append(exc)

    worker = threading.Thread(target=warm_up)
    worker.start()
    deadline, children = time.monotonic() + 60, []
    while not children and worker.is_alive() and time.monotonic() < deadline:
        children = _compile_children()
        time.sleep(0.01)
    assert children, "no compile process appeared"
    deadline = time.monotonic() + 5  # the caller lowers its priority right after starting it
    while os.getpriority(os.PRIO_PROCESS, children[0]) < os.getpriority(os.PRIO_PROCESS, 0) + 10 and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, children[0]) >= min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    end_compile_processes()
    worker.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], CompileEnded)
    assert numba_compile._run_compile_process([], os.environ) == ()  # a later compile process still runs
