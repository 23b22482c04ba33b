"""The scan viewer and its display math on real files: window/level, zoom, pan, invert, presets, values, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.viewer import ScanViewer
from inference import display
from inference.loading import load_scan

CT = get_testdata_file("CT_small.dcm")
CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"


@pytest.fixture
def viewer(qtbot):
    view = ScanViewer()
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    return view


def _shown(view: ScanViewer) -> np.ndarray:
    image = view.image_item.pixmap().toImage()
    return np.array([[image.pixelColor(x, y).red() for x in range(0, image.width(), 8)]
                     for y in range(0, image.height(), 8)])


def _mouse(widget, kind, pos, button, buttons):
    QApplication.sendEvent(widget, QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def _drag(widget, button, start: QPoint, end: QPoint):
    _mouse(widget, QMouseEvent.Type.MouseButtonPress, start, button, button)
    _mouse(widget, QMouseEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, button)
    _mouse(widget, QMouseEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def test_left_drag_changes_window_and_picture_live(viewer):
    viewer.set_scan(load_scan(CT))
    seen = []
    viewer.windowChanged.connect(lambda c, w: seen.append((c, w)))
    before, picture = viewer.window(), _shown(viewer)
    centre = viewer.viewport().rect().center()
    _drag(viewer.viewport(), Qt.MouseButton.LeftButton, centre, centre + QPoint(100, -50))
    center, width = viewer.window()
    assert width > before[1] and center < before[0]  # right widens, up lowers the level
    assert seen and seen[-1] == (center, width)
    assert not np.array_equal(_shown(viewer), picture)


def test_wheel_zooms_and_right_drag_pans(viewer):
    viewer.set_scan(load_scan(CHEST))
    scale = viewer.transform().m11()
    centre = viewer.viewport().rect().center()
    wheel = QWheelEvent(QPointF(centre), QPointF(viewer.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewer.viewport(), wheel)
    assert viewer.transform().m11() == pytest.approx(scale * 1.25 ** 2)
    scene_centre = viewer.mapToScene(centre)
    _drag(viewer.viewport(), Qt.MouseButton.RightButton, centre, centre + QPoint(60, 40))
    moved = viewer.mapToScene(centre) - scene_centre
    assert moved.x() < 0 and moved.y() < 0  # the image followed the mouse
    viewer.fit()
    assert viewer.transform().m11() == pytest.approx(scale)


def test_invert_flips_the_picture_and_monochrome1_is_shown_the_right_way(viewer):
    scan = load_scan(CHEST)
    assert scan.inverted
    viewer.set_scan(scan)
    normal = _shown(viewer).astype(int)
    stored = scan.pixels[0, ::8, ::8].astype(float)
    assert np.corrcoef(normal.ravel(), stored.ravel())[0, 1] < -0.5  # MONOCHROME1: low stored values bright
    viewer.set_inverted(True)
    np.testing.assert_allclose(_shown(viewer), 255 - normal, atol=1)


def test_ct_offers_its_presets_and_the_value_under_the_cursor_in_hu(viewer):
    scan = load_scan(CT)
    names = [p.name for p in display.presets_for(scan)]
    assert names[-4:] == ["Lung", "Mediastinum", "Bone", "Brain"]
    viewer.set_scan(scan)
    viewer.apply_preset("Lung")
    assert viewer.window() == (-600.0, 1500.0)
    ds = dcmread(CT)
    hu = ds.pixel_array[20, 30] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    text = display.value_text(scan, 0, 20, 30, display.rescaled_frame(scan, 0))
    assert text.endswith(f"{hu:g} HU") and f"raw {ds.pixel_array[20, 30]}" in text
    values = []
    viewer.cursorValue.connect(values.append)
    point = viewer.mapFromScene(QPointF(30.5, 20.5))
    _mouse(viewer.viewport(), QMouseEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert values and values[-1] == text


def test_frames_switch_on_a_multiframe_scan(viewer):
    scan = load_scan(get_testdata_file("emri_small.dcm"))
    viewer.set_scan(scan, frame=0)
    first = _shown(viewer)
    viewer.set_frame(7)
    assert viewer.frame == 7 and not np.array_equal(_shown(viewer), first)


def test_heatmap_overlay_is_aligned_and_toggles(viewer):
    viewer.set_scan(load_scan(CT))
    heat = np.zeros((128, 128), np.float32)
    heat[:64, :64] = 1.0
    viewer.set_heatmap(heat)
    assert viewer.overlay_item.boundingRect() == viewer.image_item.boundingRect()
    viewer.set_overlay_visible(True)
    with_overlay = viewer.grab().toImage()
    viewer.set_overlay_opacity(0.0)
    assert viewer.grab().toImage() != with_overlay
    viewer.set_overlay_opacity(0.5)
    viewer.set_overlay_visible(False)
    without = viewer.grab().toImage()
    viewer.set_overlay_visible(True)
    assert viewer.grab().toImage() != without
    with pytest.raises(ValueError, match="heatmap shape"):
        viewer.set_heatmap(np.zeros((10, 10), np.float32))


def test_export_writes_the_full_image_with_an_optional_notice(viewer, tmp_path):
    from PIL import Image

    viewer.set_scan(load_scan(CT))
    viewer.export_png(tmp_path / "plain.png")
    viewer.export_png(tmp_path / "noted.png", "For education, not for clinical use.")
    assert Image.open(tmp_path / "plain.png").size == (128, 128)
    width, height = Image.open(tmp_path / "noted.png").size
    assert width == 128 and height > 128


def test_window_drag_sensitivity_follows_the_value_range():
    assert display.window_drag(100, 200, 512, 0, 4096) == (100, 200 + 4096)
    assert display.window_drag(100, 200, 0, 256, 1000) == (100 + 500, 200)
    assert display.window_drag(100, 5, -10_000, 0, 1000)[1] == 1.0
