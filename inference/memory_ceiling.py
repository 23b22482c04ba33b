"""A memory ceiling and a time limit for work on untrusted files: defence in depth against decoder bombs.

The loader refuses images whose header declares too much, but a decoder can still allocate more than any
header says (a crafted codestream, a library bug). :func:`address_space_limit` caps how much address space
the process may add while one file is decoded and preprocessed, so the allocation fails (``MemoryError``)
instead of the machine swapping or the OOM killer picking a victim. :func:`run_in_child` runs one call in a
fresh process under that cap and a time limit, so a decoder that aborts, dies or hangs costs one call.

The cap is ``RLIMIT_AS`` (address space), not ``RLIMIT_DATA``: it counts every way a decoder can grow (brk,
anonymous and file mappings, thread stacks) on every Linux kernel, while ``RLIMIT_DATA`` counts only
private writable mappings and only since Linux 4.7. Its drawback, that Numba's LLVM and ONNX Runtime
reserve far more address space than they use, is avoided by measuring the current size (``VmSize``) on
entry and allowing ``extra_bytes`` on top. The limit is per process: it is exact with one file at a time per
process (batch workers, :func:`run_in_child`); threads that run files concurrently share it. It is enforced
on Linux only: macOS ignores ``RLIMIT_AS`` and Windows has no ``resource`` module, so there the context
manager does nothing (the time limit and the separate process still protect the caller).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import connection

from radbench.inference.errors import RadBenchError
from radbench.inference.machine import physical_memory

try:
    import resource
except ImportError:  # Windows
    resource = None

#: The largest default ceiling: more than the pipeline needs for the largest image the loader accepts.
CEILING_CAP = 16 * 1024**3
_SHIELDED = {signal.SIGINT, signal.SIGTERM}
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class MemoryCeilingError(RadBenchError):
    """Work on one file needed more memory than its ceiling allowed (or its process died trying)."""


class TimeLimitError(RadBenchError):
    """Work on one file took longer than its time limit; its process was ended."""


def memory_limit_message(ceiling_bytes: int) -> str:
    return f"decoder exceeded the memory limit ({ceiling_bytes / 1024**3:.3g} GiB)"


def time_limit_message(seconds: float) -> str:
    return f"took longer than the {seconds:g} s limit"


def default_ceiling_bytes(workers: int = 1) -> int:
    """Physical memory / (workers + 1), at most :data:`CEILING_CAP` (16 GiB).

    Every worker gets an equal share and one share is left for the parent process and the rest of the system.
    """
    return min(physical_memory() // (max(1, workers) + 1), CEILING_CAP)


def parse_size(text: str) -> int:
    """``"512M"``, ``"4G"``, ``"1.5GiB"``, ``"800000000"`` -> bytes (binary units); ``ValueError`` otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a size such as 512M or 4G")
    return int(float(match[1]) * _UNITS[match[2]])


def caused_by_memory(exc: BaseException) -> bool:
    """``exc`` is a ``MemoryError`` or was raised while handling one (the loader rewraps them)."""
    while exc is not None:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def address_space_limit(extra_bytes: int | None) -> Iterator[None]:
    """Let this process grow by at most ``extra_bytes`` of address space inside the block, then restore the limit.

    A soft ``RLIMIT_AS`` of the current size plus ``extra_bytes`` (never above a lower limit already in
    force): allocations past it fail with ``MemoryError``. ``None``, or a platform without ``resource`` or
    ``/proc``, makes it a no-op.
    """
    current = _address_space_bytes() if resource is not None and extra_bytes is not None else None
    if current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = min(x for x in (current + extra_bytes, soft, hard) if x != resource.RLIM_INFINITY)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def start_shielded(process: multiprocessing.Process) -> None:
    """Start ``process`` with SIGINT and SIGTERM blocked in it: Ctrl-C, or a SIGTERM sent to the whole process
    group, reaches only the parent, which ends its children itself (the mask is inherited across exec)."""
    if not hasattr(signal, "pthread_sigmask"):
        process.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SHIELDED)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_in_child(fn: Callable, *args, ceiling_bytes: int, timeout_s: float | None = None):
    """``fn(*args)`` in a fresh spawned process that may grow by ``ceiling_bytes``; its (pickled) result.

    ``fn`` must be a top-level function and ``args`` picklable. An exception in the child is raised here
    (one that does not pickle becomes a ``RadBenchError`` with its text); a ``MemoryError`` (also rewrapped)
    or a child killed by a signal raises :class:`MemoryCeilingError`; past ``timeout_s`` the child is killed
    and :class:`TimeLimitError` raised.
    """
    context = _child_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(sender, fn, args, ceiling_bytes), daemon=True)
    start_shielded(child)
    sender.close()
    try:
        if not connection.wait([receiver, child.sentinel], timeout_s):
            raise TimeLimitError(time_limit_message(timeout_s))
        try:
            kind, value = receiver.recv()
        except EOFError:
            child.join()
            if child.exitcode is not None and child.exitcode > 0:
                raise RadBenchError(f"the child process exited with code {child.exitcode}") from None
            raise MemoryCeilingError(memory_limit_message(ceiling_bytes)) from None
    finally:
        child.kill()
        child.join()
        receiver.close()
    if kind == "memory":
        raise MemoryCeilingError(memory_limit_message(ceiling_bytes))
    if kind == "raised":
        raise value
    return value


def _child_context() -> multiprocessing.context.BaseContext:
    """Children forked from a fork server that has imported the loaders already (a few ms each, against about
    0.5 s for a fresh interpreter); a fresh spawned interpreter where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["radbench.inference.loading"])
    return context


def _child_main(sender, fn: Callable, args: tuple, ceiling_bytes: int) -> None:
    try:
        with address_space_limit(ceiling_bytes):
            outcome = ("value", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        outcome = ("memory", None) if caused_by_memory(exc) else ("raised", _picklable(exc))
    sender.send(outcome)


def _picklable(exc: BaseException) -> BaseException:
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception that does not survive pickling
        return RadBenchError(str(exc) or type(exc).__name__)
