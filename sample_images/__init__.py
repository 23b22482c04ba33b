"""Small real scans bundled with RadBench (package data; provenance and licenses in README.md)."""

from importlib.resources import files
from pathlib import Path

#: The folder holding the bundled scans, in a source tree or an installed package alike.
SAMPLE_DIR = Path(str(files(__name__)))


def sample_files() -> list[Path]:
    """Every bundled sample scan, sorted by name."""
    return sorted(p for p in SAMPLE_DIR.iterdir() if p.is_file() and p.suffix.lower() in (".dcm", ".png"))
