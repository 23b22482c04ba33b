"""Coverage-guided fuzzing of the loaders with atheris, seeded from real files.

    python tests/atheris_loaders.py -max_total_time=300 [CORPUS_DIR]

Every input must load or raise ``ScanError``; anything else is a crash, which atheris saves as
``crash-<hash>`` in the working directory: keep it in ``tests/fuzz_regressions/`` (the fuzz tests replay
that folder). The test suite runs this briefly (tests/test_fuzz_loaders.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from radbench.inference.errors import ScanError
    from radbench.inference.loading import load_scan

_SCRATCH = Path(tempfile.mkdtemp(prefix="radbench-atheris-")) / "input"


def test_one_input(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    try:
        load_scan(_SCRATCH, max_bytes=64 * 2**20)
    except ScanError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
