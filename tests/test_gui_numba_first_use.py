"""The desktop app's first use of Numba, in a subprocess with a fresh, empty NUMBA_CACHE_DIR: the backend list says
it is compiling and for about how long, a numba Run waits for that with "Compiling Numba kernels (first use, about
N s)…" and the busy bar, and afterwards the backend list and the chart show the same figure, named a cold compile.
The compile itself runs in a process of its own, which the app's process loads from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CT = Path(__file__).resolve().parent.parent / "sample_images" / "ct_small_128px.dcm"

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from radbench.app.main_window import MainWindow
    from radbench.app.run_toolbar import WARM_DTYPES
    from radbench.inference.benchmarking.numba_compile import compile_estimate_s, first_use_message, numba_kernels

    app = QApplication([])
    expected = {"estimate": compile_estimate_s(len(WARM_DTYPES)), "message": first_use_message(len(WARM_DTYPES))}

    def wait(condition):
        while not condition():
            app.processEvents()
            time.sleep(0.02)

    window = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
    window.show()
    numba, bar = window.backend.findData("numba"), window.run_toolbar.progress
    seen = {"at_start": window.backend.itemText(numba), "messages": [], **expected}
    window.statusBar().messageChanged.connect(
        lambda text: seen["messages"].append([text, bar.isVisible() and bar.maximum() == 0]))
    window.open_files([sys.argv[2]])
    wait(lambda: window.current_scan is not None)
    window.backend.setCurrentIndex(numba)
    window.run_current()
    wait(lambda: not window.busy)
    seen["after"] = window.backend.itemText(numba)
    seen["figure"] = [window.numba_compile.ms, window.numba_compile.source]
    seen["chart"] = window.timing_chart.values().get("compile")
    seen["compiled_here"] = sum(sum(k.stats.cache_misses.values()) for k in numba_kernels().values())
    print(json.dumps(seen))
""")


def test_first_use_of_numba_says_it_is_compiling_and_shows_one_figure(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "settings.ini"), str(CT)], env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["estimate"] is not None and seen["message"].startswith("compiling Numba kernels (first use, about")
    assert seen["at_start"] == f"numba (compiling, about {seen['estimate']:.0f} s…)"
    assert [seen["message"][:1].upper() + seen["message"][1:], True] in seen["messages"]  # with the busy bar
    ms, source = seen["figure"]
    assert source == "compiled" and seen["after"] == f"numba (cold compile, {ms / 1e3:.3g} s)"
    assert seen["chart"] == {"numba cold compile": ms}
    assert seen["compiled_here"] == 0  # compiled in a process of its own; the app's process loaded its cache
