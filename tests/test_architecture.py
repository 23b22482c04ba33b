"""Layering rules: the headless core never loads Qt (nor torch), so the CLI, batch and training can use it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_all_of_inference_loads_no_qt_and_no_torch():
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        import radbench.inference
        names = [m.name for m in pkgutil.walk_packages(radbench.inference.__path__, "radbench.inference.")]
        for name in names:
            importlib.import_module(name)
        import radbench.app.cli, radbench.app.predict_command
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "torch"))
        print(len(names), loaded)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    count, loaded = result.stdout.strip().split(" ", 1)
    assert int(count) >= 8  # the walk really found the package's modules
    assert loaded == "[]"
