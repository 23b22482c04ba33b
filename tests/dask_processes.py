"""A real Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` as separate processes on localhost,
on free ports, each worker in a working folder of its own, importing RadBench from this checkout; every process
is ended by its pid at :meth:`Cluster.end`, whatever happened (the ``dask_cluster`` fixture of conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: How long a scheduler or worker may take to start on a busy 2-core machine.
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def radbench_env(pythonpath: Path | None = None) -> dict[str, str]:
    """The environment of a worker: this checkout (or ``pythonpath``) first on its path, so that it imports the
    RadBench the test runs."""
    first = str(pythonpath or ROOT)
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": first + (os.pathsep + rest if rest else "")}


@dataclass
class Cluster:
    """Processes started for one test or module; :meth:`end` kills each by its pid and reaps it."""

    folder: Path
    address: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start_scheduler(self) -> str:
        port = free_port()
        self._start("scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], radbench_env())
        self.address = f"tcp://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self.address
            except OSError:
                if time.monotonic() > deadline or self.processes[-1].poll() is not None:
                    raise RuntimeError(f"the scheduler did not start: {self._log('scheduler')}") from None
                time.sleep(0.1)

    def start_worker(self, name: str, pythonpath: Path | None = None) -> subprocess.Popen:
        """A worker process (no nanny: its pid is the worker's) with one thread, in its own working folder."""
        return self._start(name, [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--no-nanny",
                                  "--nthreads", "1", "--no-dashboard", "--name", name,
                                  "--local-directory", str(self.folder / name)], radbench_env(pythonpath))

    def wait_for_workers(self, count: int) -> dict[str, str]:
        """Worker name -> address, once ``count`` workers are connected."""
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=START_TIMEOUT_S)
            return {info["name"]: address for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        cwd = self.folder / name
        cwd.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def _log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def end(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.kill(process.pid, 9)
            process.wait(30)
