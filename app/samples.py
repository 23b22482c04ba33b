"""The sample scans bundled with RadBench: the repository's ``sample_images/``, installed as the package data of
``radbench.sample_images``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: What counts as a sample scan in that folder (it also holds a README and the package's ``__init__.py``).
SAMPLE_SUFFIXES = (".dcm", ".png")


def _sample_dir() -> Path:
    """The folder, found without importing the package, so that no ``__pycache__`` appears among the scans."""
    spec = importlib.util.find_spec("radbench.sample_images")
    return Path(next(iter(spec.submodule_search_locations)))


SAMPLE_DIR = _sample_dir()


def sample_files() -> list[Path]:
    """Every bundled sample scan, sorted by name."""
    return sorted(p for p in SAMPLE_DIR.iterdir() if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES)
