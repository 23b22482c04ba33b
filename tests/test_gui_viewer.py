"""The scan viewer widget on real files, driven by real mouse and wheel events (offscreen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from radbench.app.viewer import ZOOM_STEP, ScanViewer
from radbench.inference import display
from radbench.inference.loading import load_scan

CT = get_testdata_file("CT_small.dcm")
MR = get_testdata_file("emri_small.dcm")
CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"
NOTICE = "For education, not for clinical use."
LEFT, RIGHT, MIDDLE, NONE = (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton,
                             Qt.MouseButton.NoButton)


@pytest.fixture
def viewer(qtbot):
    view = ScanViewer()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


def _array(image: QImage) -> np.ndarray:
    """A QImage as an (h, w, 3) uint8 RGB array."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    lines = image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, lines * image.height()).reshape(image.height(), lines)
    return data[:, :3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def _screen(view: ScanViewer) -> np.ndarray:
    return _array(view.grab().toImage())


def _shown(view: ScanViewer) -> np.ndarray:
    """The rendered image at full resolution (grey, one channel)."""
    return _array(view.image_item.pixmap().toImage())[..., 0]


def _mouse(view: ScanViewer, kind: QMouseEvent.Type, pos: QPoint, button, buttons) -> None:
    widget = view.viewport()
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _drag(view: ScanViewer, button, start: QPoint, end: QPoint, steps: int = 4) -> None:
    _mouse(view, QMouseEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        _mouse(view, QMouseEvent.Type.MouseMove, start + (end - start) * i / steps, NONE, button)
    _mouse(view, QMouseEvent.Type.MouseButtonRelease, end, button, NONE)


def _wheel(view: ScanViewer, pos: QPoint, notches: int) -> None:
    widget = view.viewport()
    event = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120 * notches), NONE,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _scene_at(view: ScanViewer, pos: QPoint) -> QPointF:
    return view.viewportTransform().inverted()[0].map(QPointF(pos))


def test_left_drag_sets_window_level_live(viewer):
    viewer.set_scan(load_scan(CT))
    before, picture = viewer.window(), _shown(viewer)
    seen = []
    viewer.windowChanged.connect(lambda c, w: seen.append((c, w)))
    start = viewer.viewport().rect().center()
    _drag(viewer, LEFT, start, start + QPoint(64, -32))
    center, width = viewer.window()
    value_range = 1167 - -896  # CT_small's rescaled range
    assert (center, width) == pytest.approx((before[0] - 32 * value_range / 512, before[1] + 64 * value_range / 512))
    assert len(seen) == 4 and seen[-1] == (center, width)  # one update per mouse move, during the drag
    assert not np.array_equal(_shown(viewer), picture)
    rescaled = display.rescaled_frame(viewer.scan, 0)
    np.testing.assert_array_equal(_shown(viewer), display.render(rescaled, center, width, False))
    _drag(viewer, LEFT, start, start + QPoint(0, 100))  # down: higher level, darker picture
    assert viewer.window()[0] > center and _shown(viewer).mean() < display.render(rescaled, center, width, 0).mean()


def test_wheel_zooms_about_the_cursor_and_double_click_fits(viewer):
    viewer.set_scan(load_scan(CHEST))
    fitted = viewer.transform().m11()
    cursor = QPoint(120, 90)
    under = _scene_at(viewer, cursor)
    _wheel(viewer, cursor, 2)
    assert viewer.transform().m11() == pytest.approx(fitted * ZOOM_STEP ** 2)
    after = _scene_at(viewer, cursor)
    assert abs(after.x() - under.x()) < 2 / viewer.transform().m11() + 1e-9
    assert abs(after.y() - under.y()) < 2 / viewer.transform().m11() + 1e-9
    _wheel(viewer, cursor, -1)
    assert viewer.transform().m11() == pytest.approx(fitted * ZOOM_STEP)
    _mouse(viewer, QMouseEvent.Type.MouseButtonDblClick, cursor, LEFT, LEFT)
    assert viewer.transform().m11() == pytest.approx(fitted)


@pytest.mark.parametrize("button", [RIGHT, MIDDLE])
def test_right_or_middle_drag_pans_with_the_image_following_the_mouse(viewer, button):
    viewer.set_scan(load_scan(CHEST))
    window, start = viewer.window(), QPoint(150, 120)
    grabbed = _scene_at(viewer, start)
    _drag(viewer, button, start, start + QPoint(60, 40))
    landed = _scene_at(viewer, start + QPoint(60, 40))
    tolerance = 1.5 / viewer.transform().m11()
    assert abs(landed.x() - grabbed.x()) < tolerance and abs(landed.y() - grabbed.y()) < tolerance
    assert _scene_at(viewer, start).x() < grabbed.x() - 50 / viewer.transform().m11()
    assert viewer.window() == window  # panning is not window/level


def _fills_viewport(view: ScanViewer) -> bool:
    """The image is fitted: its longer side (relative to the viewport) spans the viewport, within Qt's margin."""
    shown = view.mapFromScene(view.image_item.sceneBoundingRect()).boundingRect()
    port = view.viewport().rect()
    return port.contains(shown) and max(shown.width() - port.width(), shown.height() - port.height()) >= -5


def test_fit_follows_resizes_until_the_user_zooms(viewer, qtbot):
    viewer.set_scan(load_scan(CT))
    assert _fills_viewport(viewer)
    viewer.resize(600, 500)
    qtbot.waitUntil(lambda: _fills_viewport(viewer) and viewer.transform().m11() > 3.5)
    _wheel(viewer, QPoint(100, 100), 1)
    zoomed = viewer.transform().m11()
    viewer.resize(500, 400)
    qtbot.wait(50)
    assert viewer.transform().m11() == pytest.approx(zoomed)


def test_invert_and_monochrome1(viewer):
    scan = load_scan(CHEST)
    assert scan.inverted
    viewer.set_scan(scan)
    normal = _shown(viewer).astype(int)
    stored = scan.pixels[0].astype(int)
    low, high = stored <= np.percentile(stored, 5), stored >= np.percentile(stored, 95)
    assert normal[low].mean() > normal[high].mean() + 100  # MONOCHROME1: low stored values are bright
    viewer.set_inverted(True)
    np.testing.assert_array_equal(_shown(viewer), 255 - normal)
    viewer.set_inverted(False)
    np.testing.assert_array_equal(_shown(viewer), normal)


def test_presets_and_reset(viewer):
    scan = load_scan(CT)
    viewer.set_scan(scan)
    default, fitted = viewer.window(), viewer.transform().m11()
    assert [p.name for p in viewer.presets()] == ["Full range", "Auto (1-99 %)", "Lung", "Mediastinum", "Bone",
                                                  "Brain"]
    assert viewer.preset == "Full range"
    viewer.apply_preset("Bone")
    assert viewer.window() == (400.0, 1800.0) and viewer.preset == "Bone"
    with pytest.raises(KeyError, match="Soft tissue"):
        viewer.apply_preset("Soft tissue")
    viewer.set_inverted(True)
    _wheel(viewer, QPoint(50, 50), 3)
    inverted = _shown(viewer)
    viewer.reset()
    assert viewer.window() == default and viewer.transform().m11() == pytest.approx(fitted)
    np.testing.assert_array_equal(_shown(viewer), display.render(display.rescaled_frame(scan), *default, False))
    assert not np.array_equal(_shown(viewer), inverted)


def test_cursor_value_in_hounsfield_units(viewer):
    scan, ds = load_scan(CT), dcmread(CT)
    viewer.set_scan(scan)
    values = []
    viewer.cursorValue.connect(values.append)
    row, col = 20, 30
    raw = int(ds.pixel_array[row, col])
    hu = raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    _mouse(viewer, QMouseEvent.Type.MouseMove, viewer.mapFromScene(QPointF(col + 0.5, row + 0.5)), NONE, NONE)
    assert values[-1] == f"(x {col}, y {row})  raw {raw}  →  {hu:g} HU"
    _mouse(viewer, QMouseEvent.Type.MouseMove, viewer.mapFromScene(QPointF(-5, 40)), NONE, NONE)
    assert values[-1] == ""  # outside the image


def test_frames_switch_keep_the_window_and_validate(viewer):
    scan = load_scan(MR)
    viewer.set_scan(scan, frame=0)
    assert viewer.frame == 0
    first, window = _shown(viewer), viewer.window()
    viewer.set_frame(7)
    assert viewer.frame == 7 and viewer.window() == window
    np.testing.assert_array_equal(_shown(viewer), display.render(display.rescaled_frame(scan, 7), *window, False))
    assert not np.array_equal(_shown(viewer), first)
    viewer.set_frame(-1)
    assert viewer.frame == 9
    with pytest.raises(IndexError):
        viewer.set_frame(10)
    viewer.set_scan(scan)
    assert viewer.frame == scan.default_frame


def _heat(shape) -> np.ndarray:
    heat = np.zeros(shape, np.float32)
    heat[: shape[0] // 2, : shape[1] // 2] = 1.0
    return heat


def test_heatmap_overlay_toggles_and_opacity_zero_is_invisible(viewer):
    viewer.set_scan(load_scan(CT))
    plain = _screen(viewer)
    viewer.set_heatmap(_heat((128, 128)))
    viewer.set_overlay_visible(True)
    overlaid = _screen(viewer)
    assert not np.array_equal(overlaid, plain)
    viewer.set_overlay_visible(False)
    np.testing.assert_array_equal(_screen(viewer), plain)
    viewer.set_overlay_visible(True)
    viewer.set_overlay_opacity(0.0)
    np.testing.assert_array_equal(_screen(viewer), plain)
    viewer.set_overlay_opacity(1.0)
    assert np.abs(_screen(viewer).astype(int) - plain).sum() > np.abs(overlaid.astype(int) - plain).sum()
    with pytest.raises(ValueError, match="heatmap shape"):
        viewer.set_heatmap(np.zeros((10, 10), np.float32))


def test_heatmap_stays_aligned_when_zoomed_and_panned(viewer):
    viewer.set_scan(load_scan(CHEST))
    _wheel(viewer, QPoint(100, 80), 3)
    _drag(viewer, RIGHT, QPoint(200, 150), QPoint(260, 190))
    plain = _screen(viewer).astype(int)
    viewer.set_heatmap(_heat((1955, 1841)))
    changed = np.abs(_screen(viewer).astype(int) - plain).sum(axis=-1) > 0
    assert viewer.overlay_item.sceneBoundingRect() == viewer.image_item.sceneBoundingRect()
    hot = viewer.mapFromScene(QPointF(1841 / 2, 1955 / 2))  # the heat's lower-right corner on screen
    rows, cols = np.nonzero(changed)
    assert rows.size > 0 and rows.max() <= hot.y() + 1 and cols.max() <= hot.x() + 1


def test_new_scan_or_frame_clears_the_heatmap(viewer):
    scan = load_scan(MR)
    viewer.set_scan(scan, frame=0)
    viewer.set_heatmap(_heat((64, 64)))
    assert not viewer.overlay_item.pixmap().isNull()
    viewer.set_frame(1)
    assert viewer.overlay_item.pixmap().isNull()
    viewer.set_heatmap(_heat((64, 64)))
    viewer.set_scan(scan)
    assert viewer.overlay_item.pixmap().isNull()


def test_export_is_full_resolution_with_overlay_and_optional_notice(viewer, tmp_path):
    scan = load_scan(CHEST)
    viewer.set_scan(scan)
    _wheel(viewer, QPoint(30, 30), 4)  # the view's zoom does not change the export
    viewer.export_png(tmp_path / "plain.png")
    plain = _array(QImage(str(tmp_path / "plain.png")))
    assert plain.shape == (1955, 1841, 3)
    np.testing.assert_array_equal(plain[..., 0], _shown(viewer))
    viewer.set_heatmap(_heat((1955, 1841)))
    viewer.export_png(tmp_path / "noted.png", NOTICE)
    noted = _array(QImage(str(tmp_path / "noted.png")))
    assert noted.shape[1] == 1841 and noted.shape[0] > 1955
    image, strip = noted[:1955].astype(int), noted[1955:]
    assert np.abs(image[:900, :900] - plain[:900, :900]).sum() > 0  # overlay in the hot quarter
    np.testing.assert_array_equal(image[1000:, 1000:], plain[1000:, 1000:])  # and only there
    assert strip.max() == 255 and (strip == 0).mean() > 0.8  # white text on black
