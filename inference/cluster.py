"""``radbench batch --scheduler``: the batch's rows from a Dask cluster of worker processes started apart
(``dask scheduler``, ``dask worker tcp://...``), on this machine or others.

:func:`cluster_rows` connects with a short time limit, checks every worker before the first task (RadBench's
version, the model file's SHA-256, the backend loads: :func:`identity`), then hands out one task per file, a
bounded number at a time, and yields each file's row once. Paths are absolute; with ``ship_files`` each file's
bytes travel with its task (at most :data:`MAX_SHIPPED_BYTES` per file and in flight together, read as tasks are
handed out, so the client holds no more than that), for workers that do not share the client's filesystem.
A worker lost mid-run has its tasks run again elsewhere by the scheduler (a file that keeps killing workers is
an error row); a worker that joins later is checked by its first task. An unreachable scheduler or a worker that
differs raises ``RadBenchError`` with one line, a scheduler lost mid-run :class:`SchedulerLost` (the rows yielded
so far stand, and ``--resume`` does the rest). Rows carry the ``worker`` that made them (not a CSV column: the
summary counts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import socket
import stat
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import replace
from pathlib import Path

from radbench import __version__
from radbench.inference.backends import get_backend
from radbench.inference.batch import BatchConfig, failed_row, process_file
from radbench.inference.errors import RadBenchError
from radbench.inference.model import DEFAULT_MODEL_PATH
from radbench.inference.wording import counted

#: Seconds to reach the scheduler, and then for a first worker to be there.
CONNECT_TIMEOUT_S = 5.0
#: Seconds each worker may take to answer the check before the first task (it loads the backend).
CHECK_TIMEOUT_S = 60.0
#: ``--ship-files``: the most bytes one file, and all the files in flight together, may hold.
MAX_SHIPPED_BYTES = 256 * 1024**2
#: Tasks in flight per worker thread: enough to keep every thread busy between two answers.
TASKS_PER_THREAD = 2


class SchedulerLost(RadBenchError):
    """The scheduler went away mid-run: the rows yielded so far stand; the files not done have no row."""


class WorkerMismatch(Exception):
    """A worker's :func:`identity` differs from the client's (raised in a task, reported by the client)."""


def identity(config: BatchConfig) -> dict[str, str]:
    """What the client and every worker must agree on: RadBench's version, the SHA-256 of the model file
    (``config.model_path``, else the bundled model) and whether the backend loads here."""
    try:
        get_backend(config.backend)
        backend = "available"
    except RadBenchError as exc:
        backend = f"unavailable ({exc})"
    return {"RadBench": __version__, "model": _model_digest(config.model_path), "backend": backend}


def _model_digest(model_path: str | None) -> str:
    path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
    try:
        with path.open("rb") as f:
            return "sha256 " + hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        return f"not readable at {path} ({exc.strerror or exc})"


def differences(here: dict[str, str], there: dict[str, str]) -> list[str]:
    """What differs between two identities, in words ("model sha256 1f2e3d4c5b6a here, 9a8b7c6d5e4f there")."""
    def short(value: str) -> str:
        return value[:19] if value.startswith("sha256 ") else value

    return [f"{key} {short(here[key])} here, {short(there.get(key, 'unknown'))} there"
            for key in here if here[key] != there.get(key)]


_IDENTITIES: dict[BatchConfig, dict[str, str]] = {}  # per worker process and configuration


def _worker_identity(config: BatchConfig) -> dict[str, str]:
    if config not in _IDENTITIES:
        _IDENTITIES[config] = identity(config)
    return _IDENTITIES[config]


def check_worker(config: BatchConfig) -> dict[str, str]:
    """The check task run on each worker before the first file: its :func:`identity`."""
    return _worker_identity(config)


def run_task(path: str, config: BatchConfig, ceiling_bytes: int | None, expected: dict[str, str],
             shipped: tuple[bytes, int, int] | None = None) -> tuple[dict, str]:
    """A file's row and the worker that made it. ``shipped``: the file's bytes, size and mtime on the client, written
    to a temporary file of the worker's; the row then names the client's path and file. Raises
    :class:`WorkerMismatch` on a worker that differs from ``expected`` (one that joined after the check)."""
    from distributed import get_worker

    here = _worker_identity(config)
    if here != expected:
        raise WorkerMismatch("; ".join(differences(expected, here)))
    if shipped is None:
        return process_file(path, config, ceiling_bytes), get_worker().address
    data, size, mtime_ns = shipped
    folder = tempfile.mkdtemp(prefix="radbench-shipped-", dir=get_worker().local_directory)
    copy = Path(folder, Path(path).name)  # the same name: loaders may go by its extension
    try:
        copy.write_bytes(data)
        row = process_file(copy, config, ceiling_bytes)
    except OSError as exc:  # the worker's disk, not the file
        row = failed_row(path, config, f"the worker could not store the shipped file ({exc.strerror or exc})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    row = {key: value.replace(str(copy), path) if isinstance(value, str) else value for key, value in row.items()}
    return {**row, "path": path, "size_bytes": size, "mtime_ns": mtime_ns}, get_worker().address


def cluster_rows(files: Sequence[Path], config: BatchConfig, scheduler: str, ceiling_bytes: int | None,
                 ship_files: bool = False) -> Iterator[dict]:
    """One row per file, in completion order, from the Dask cluster at ``scheduler``; see the module's docstring."""
    try:
        from distributed import Client
    except ImportError:
        raise RadBenchError("--scheduler needs Dask: pip install 'radbench[distributed]'") from None
    if config.model_path:  # absolute; the bundled model as each worker's own bundled model (the check compares them)
        model = os.path.abspath(config.model_path)
        config = replace(config, model_path=None if Path(model).resolve() == DEFAULT_MODEL_PATH.resolve() else model)
    _check_reachable(scheduler)
    with _quiet_dask():
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, ValueError, TimeoutError: any of them means unreachable
            raise RadBenchError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); is `dask scheduler` "
                                "running there?") from None
        try:
            expected = _check_workers(client, config, scheduler)
            yield from _stream(client, files, config, ceiling_bytes, expected, ship_files, scheduler)
        except (OSError, CancelledError) as exc:  # a call to the scheduler failed: it is gone
            raise SchedulerLost(f"lost the Dask scheduler at {scheduler} ({type(exc).__name__})") from None
        finally:
            with contextlib.suppress(Exception):  # a client whose scheduler is gone may fail to close politely
                client.close(timeout=CONNECT_TIMEOUT_S)


def _check_reachable(scheduler: str) -> None:
    """``RadBenchError`` at once for an address that is not one, a TCP port where nothing listens (Dask's own
    connect would retry until its time limit) or a plain TCP server that is not a Dask scheduler."""
    from distributed.comm.addressing import parse_address, parse_host_port

    unreachable = f"cannot reach the Dask scheduler at {scheduler}"
    try:
        protocol, location = parse_address(scheduler)
        if protocol in ("tcp", "tls"):
            socket.create_connection(parse_host_port(location), timeout=CONNECT_TIMEOUT_S).close()
    except ValueError as exc:
        raise RadBenchError(f"{unreachable}: not an address like tcp://HOST:PORT ({exc})") from None
    except OSError as exc:
        raise RadBenchError(f"{unreachable} ({exc.strerror or exc}); is `dask scheduler` running there?") from None
    if protocol != "tcp":  # the Client brings the security settings a TLS handshake needs
        return
    try:
        answer = asyncio.run(asyncio.wait_for(_identify(scheduler), CONNECT_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - whatever a server that is not a scheduler makes Dask's protocol raise
        answer = {"type": f"no answer in Dask's protocol ({type(exc).__name__})"}
    if answer.get("type") != "Scheduler":
        raise RadBenchError(f"{unreachable}: the server there is not a Dask scheduler ({answer.get('type')})")


async def _identify(address: str) -> dict:
    from distributed.core import rpc

    async with rpc(address, timeout=CONNECT_TIMEOUT_S) as scheduler:
        return await scheduler.identity()


@contextlib.contextmanager
def _quiet_dask():
    """Dask's own log lines (lost connections, retries, tracebacks) kept off the run's stderr: the run says in
    one line what went wrong, and each row what happened to its file. Dask's configuration gives some of its
    loggers levels of their own, so each is silenced."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name == "distributed" or name.startswith("distributed.")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _check_workers(client, config: BatchConfig, scheduler: str) -> dict[str, str]:
    """The client's identity, once every worker present has shown the same (a worker that leaves meanwhile is not
    waited for); else ``RadBenchError`` naming the worker and what differs."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise RadBenchError(f"no Dask worker is connected to the scheduler at {scheduler}: start one with "
                            f"`dask worker {scheduler}`") from None
    expected = identity(config)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    checks = {address: client.submit(check_worker, config, workers=[address], allow_other_workers=False, pure=False)
              for address in workers}
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while checks:
        if not any(future.done() for future in checks.values()):
            time.sleep(0.1)
        present = set(client.scheduler_info(n_workers=-1)["workers"])
        for address, future in list(checks.items()):
            if future.done():
                _compare(address, future, expected)
            elif address not in present:  # it left: its tasks will go to the others
                future.cancel()
            elif time.monotonic() < deadline:
                continue
            else:
                raise RadBenchError(f"Dask worker {address} did not answer RadBench's check within "
                                    f"{CHECK_TIMEOUT_S:.0f} s")
            del checks[address]
    return expected


def _compare(address: str, check, expected: dict[str, str]) -> None:
    try:
        found = check.result()
    except Exception as exc:  # noqa: BLE001 - whatever stops a worker from answering stops the run
        raise RadBenchError(f"Dask worker {address} cannot run RadBench ({type(exc).__name__}: {exc}); install "
                            "the same RadBench there") from None
    if found != expected:
        raise RadBenchError(f"Dask worker {address} differs from this client: {'; '.join(differences(expected, found))}"
                            ". Install the same RadBench and model on every worker, or stop that one")


def _stream(client, files: Sequence[Path], config: BatchConfig, ceiling_bytes: int | None, expected: dict[str, str],
            ship_files: bool, scheduler: str) -> Iterator[dict]:
    """Tasks handed out a window at a time (and, shipping, at most :data:`MAX_SHIPPED_BYTES` in flight), rows
    yielded as they finish; outstanding tasks are cancelled when the generator is closed."""
    from distributed import as_completed

    window = _window(client)
    queue = [str(p) for p in reversed(files)]
    running = as_completed(loop=client.loop)
    path_of, bytes_of = {}, {}

    def room() -> bool:
        shipping = sum(bytes_of.values())
        return running.count() < window and (not shipping or shipping + _size(queue[-1]) <= MAX_SHIPPED_BYTES)

    try:
        while queue or running.count():
            while queue and room():
                path = queue.pop()
                shipped = _ship(path, config) if ship_files else None
                if isinstance(shipped, dict):  # the client already knows the file's row (unreadable, too large)
                    yield shipped
                    continue
                with warnings.catch_warnings():  # the bytes travel in the task on purpose: see MAX_SHIPPED_BYTES
                    warnings.simplefilter("ignore", UserWarning)
                    future = client.submit(run_task, path, config, ceiling_bytes, expected, shipped, pure=False)
                path_of[future.key], bytes_of[future.key] = path, len(shipped[0]) if shipped else 0
                running.add(future)
            if not running.count():  # every file left was answered here
                continue
            future = next(running)
            path = path_of.pop(future.key)
            bytes_of.pop(future.key)
            yield _row(future, path, config, scheduler, len(queue) + running.count())
            if queue:
                window = _window(client, window)  # workers may have joined or left
    finally:
        with contextlib.suppress(Exception):
            client.cancel(list(running.futures), force=True)


def _window(client, current: int = 2) -> int:
    """How many tasks to keep in flight: :data:`TASKS_PER_THREAD` per worker thread now connected (``current`` if
    the scheduler does not answer: the next task's result says why)."""
    try:
        return max(2, TASKS_PER_THREAD * sum(client.nthreads().values()))
    except (OSError, CancelledError):
        return current


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return 0


def _ship(path: str, config: BatchConfig) -> tuple[bytes, int, int] | dict:
    """The task's ``shipped`` argument for ``path`` read here, or the file's row if it cannot be shipped (not a
    regular file, unreadable: the row a worker would give; too large)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return process_file(path, config)  # its error row, without opening anything
    if not stat.S_ISREG(info.st_mode):
        return process_file(path, config)
    if info.st_size > MAX_SHIPPED_BYTES:
        return failed_row(path, config, f"too large to ship to a worker ({info.st_size / 1024**2:.0f} MiB; "
                                        f"--ship-files sends at most {MAX_SHIPPED_BYTES // 1024**2} MiB): put it "
                                        "where the workers can read it and run without --ship-files")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return failed_row(path, config, f"cannot read the file ({exc.strerror or exc})")
    return data, info.st_size, info.st_mtime_ns


def _row(future, path: str, config: BatchConfig, scheduler: str, left: int) -> dict:
    """The row of a finished task; ``RadBenchError`` when the run cannot go on (scheduler lost, a worker that
    differs or cannot import RadBench)."""
    from distributed import KilledWorker

    lost = SchedulerLost(f"lost the Dask scheduler at {scheduler} mid-run with {counted(left + 1, 'file')} not done")
    if future.status == "cancelled":  # the client cancels its tasks when it loses the scheduler
        raise lost
    try:
        row, worker = future.result()
    except (CancelledError, OSError):  # a task never raises these (process_file does not): the connection does
        raise lost from None
    except WorkerMismatch as exc:
        raise RadBenchError(f"a Dask worker that joined during the run differs from this client: {exc}. Install the "
                            "same RadBench and model on every worker, or stop that one") from None
    except ImportError as exc:
        raise RadBenchError(f"a Dask worker cannot run RadBench ({exc}); install the same RadBench there") from None
    except KilledWorker:
        return failed_row(path, config, "worker process died (Dask gave up after the workers running it died)")
    except Exception as exc:  # noqa: BLE001 - a failed task costs one row, not the run
        return failed_row(path, config, f"Dask task failed ({type(exc).__name__}: {exc})")
    return {**row, "worker": worker}
