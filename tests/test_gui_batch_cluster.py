"""The Batch window on a real Dask cluster (the ``dask_cluster`` fixture: scheduler and workers as processes)."""

from __future__ import annotations

import shutil
from pathlib import Path

from dask_processes import free_port
from pydicom.data import get_testdata_file

from radbench.app.batch_dialog import BatchDialog
from radbench.inference.model import DEFAULT_MODEL_PATH, Model

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def test_the_batch_window_runs_on_a_dask_scheduler_and_says_when_it_cannot(qtbot, dask_cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "tibia_cr_rg3_8bit_440px.png", folder / "tibia.png")
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    (folder / "notes.txt").write_text("not a scan")
    dialog = BatchDialog(Model().card.labels, str(DEFAULT_MODEL_PATH), folder=str(folder))
    qtbot.addWidget(dialog)
    assert dialog.workers.isEnabled() and not dialog.ship_files.isEnabled()
    dialog.scheduler.setText(dask_cluster.address)
    assert not dialog.workers.isEnabled() and dialog.ship_files.isEnabled()  # the cluster's workers do the work
    dialog.ship_files.setChecked(True)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120000)
    assert {Path(r["path"]).name: r["status"] for r in dialog.rows} == {"tibia.png": "ok", "ct.dcm": "ok",
                                                                       "notes.txt": "skipped"}
    workers = set(dask_cluster.wait_for_workers(2).values())
    assert {r["worker"] for r in dialog.rows} <= workers
    assert "3 files: 2 ok (2 withheld), 0 errors, 1 skipped in " in dialog.status.text()  # the CT, and the tibia PNG
    assert " by 1 Dask worker (" in dialog.status.text() or " by 2 Dask workers (" in dialog.status.text()

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    dialog.scheduler.setText(address)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert dialog.status.text() == f"Batch failed: cannot reach the Dask scheduler at {address} (Connection " \
                                   "refused); is `dask scheduler` running there?"
    assert dialog.start_button.isEnabled() and dialog.rows == []
