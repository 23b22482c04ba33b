"""The viewer as a clinical viewer's user drives it: named window presets ("Custom" once dragged), the keys (frames,
zoom, 1:1, fit, pan that never loses the image), corner annotations, Help › Keyboard shortcuts, the heatmap's legend
and opacity, and the export's caption. Real widgets and real key events, offscreen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from radbench.app.main_window import MainWindow
from radbench.app.viewer import KEEP_VISIBLE_PX, ZOOM_STEP
from radbench.inference.display import CUSTOM

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT, MR, CHEST, PNG = (SAMPLES / name for name in ("ct_small_128px.dcm", "mr_head_multiframe_10_emri_small.dcm",
                                                    "chest_cr_rg1_j2k_lossless.dcm", "tibia_cr_rg3_8bit_440px.png"))
NOTICE = "For education, not for clinical use."


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    win = MainWindow(settings=QSettings(str(tmp_path / "radbench.ini"), QSettings.Format.IniFormat), warm_numba=False)
    qtbot.addWidget(win)
    win.resize(1024, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


def _open(qtbot, window, path):
    window.open_files([path])
    qtbot.waitUntil(lambda: not window.opening and window.current_scan is not None
                    and window.current_scan.path == path, timeout=30000)
    window.viewer.setFocus()
    return window.current_scan


def _key(qtbot, window, key, text=""):
    """A real key press on the focused viewer, through Qt's shortcut machinery."""
    qtbot.keyClick(window.viewer, key)


def _drag(view, start: QPoint, end: QPoint) -> None:
    widget = view.viewport()
    for kind, pos, buttons in ((QMouseEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton),
                               (QMouseEvent.Type.MouseMove, end, Qt.MouseButton.LeftButton),
                               (QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(widget, QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)),
                                                   Qt.MouseButton.LeftButton, buttons, Qt.KeyboardModifier.NoModifier))


def _items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_ct_presets_are_named_correct_and_applied_and_a_drag_makes_them_custom(qtbot, window):
    _open(qtbot, window, CT)
    box = window.scan_pane.presets
    assert _items(box) == ["Full range", "Auto (1-99 %)", "Lung", "Mediastinum", "Bone", "Brain"]
    assert box.currentText() == "Full range"
    expected = {"Lung": (-600, 1500), "Mediastinum": (40, 400), "Bone": (400, 1800), "Brain": (40, 80)}
    for name, window_values in expected.items():
        box.setCurrentIndex(box.findText(name))
        box.activated.emit(box.currentIndex())  # what choosing it with the mouse or keys emits
        assert window.viewer.window() == window_values and window.viewer.preset == name
        assert f"W {window_values[1]}  L {window_values[0]}" in window.viewer.corner_texts()[2]
    centre = window.viewer.viewport().rect().center()
    _drag(window.viewer, centre, centre + QPoint(40, 0))
    assert box.currentText() == CUSTOM and window.viewer.preset == CUSTOM
    assert window.viewer.corner_texts()[2].endswith(CUSTOM)
    box.setCurrentIndex(box.findText("Lung"))
    box.activated.emit(box.currentIndex())
    assert window.viewer.window() == (-600, 1500) and CUSTOM not in _items(box)


@pytest.mark.parametrize("path, first", [(MR, "Full range"), (PNG, "Full range"), (CHEST, "From file: preset 1")])
def test_mr_png_and_radiograph_never_show_an_empty_preset_box(qtbot, window, path, first):
    _open(qtbot, window, path)
    box = window.scan_pane.presets
    assert box.currentText() == first and "Full range" in _items(box) and "Auto (1-99 %)" in _items(box)
    box.setCurrentIndex(box.findText("Auto (1-99 %)"))
    box.activated.emit(box.currentIndex())
    assert window.viewer.preset == "Auto (1-99 %)" and window.viewer.window()[1] >= 1


def test_frame_keys_step_and_jump_and_name_the_frame(qtbot, window):
    scan = _open(qtbot, window, MR)
    assert window.viewer.frame == 5 and scan.frame_count == 10
    seen = []
    window.scan_pane.frameChanged.connect(seen.append)
    for key, frame in ((Qt.Key.Key_PageDown, 6), (Qt.Key.Key_Down, 7), (Qt.Key.Key_PageUp, 6), (Qt.Key.Key_Up, 5),
                       (Qt.Key.Key_End, 9), (Qt.Key.Key_Down, 9), (Qt.Key.Key_Home, 0), (Qt.Key.Key_Up, 0)):
        _key(qtbot, window, key)
        assert window.viewer.frame == frame, key
        assert window.scan_pane.frame_label.text() == f"{frame + 1} / 10"
        assert window.viewer.corner_texts()[1] == f"Frame {frame + 1} / 10"
    assert seen == [6, 7, 6, 5, 9, 0]  # stepping past either end does nothing
    assert window.prediction_panel.heading.text() == "mr_head_multiframe_10_emri_small.dcm, frame 1 of 10"


def test_zoom_keys_one_to_one_and_fit(qtbot, window):
    _open(qtbot, window, CHEST)
    viewer = window.viewer
    fitted = viewer.transform().m11()
    assert fitted < 0.5  # a 1841 x 1955 film in a small pane
    _key(qtbot, window, Qt.Key.Key_Plus)
    assert viewer.transform().m11() == pytest.approx(fitted * ZOOM_STEP)
    _key(qtbot, window, Qt.Key.Key_Minus)
    _key(qtbot, window, Qt.Key.Key_Minus)
    assert viewer.transform().m11() == pytest.approx(fitted / ZOOM_STEP)
    _key(qtbot, window, Qt.Key.Key_1)
    assert viewer.transform().m11() == pytest.approx(1.0) and "Zoom 100%" in viewer.corner_texts()[3]
    _key(qtbot, window, Qt.Key.Key_F)
    assert viewer.transform().m11() == pytest.approx(fitted)
    assert f"Zoom {fitted:.0%}" in viewer.corner_texts()[3]


def test_arrow_keys_and_drags_never_pan_the_image_off_screen(qtbot, window):
    _open(qtbot, window, CHEST)
    viewer = window.viewer
    _key(qtbot, window, Qt.Key.Key_1)  # zoomed in: the image is far larger than the viewport
    for key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
        for _ in range(60):
            _key(qtbot, window, key)
            shown = viewer.visible_image_rect()
            assert shown.width() >= KEEP_VISIBLE_PX - 1 and shown.height() > 0
    assert viewer.frame == 0  # Left/Right pan, they do not change frames
    viewer.fit()
    start = viewer.viewport().rect().center()
    for step in (QPoint(5000, 0), QPoint(0, -5000), QPoint(-9000, 9000)):  # right-drags far past the edges
        _pan(viewer, start, start + step)
        shown = viewer.visible_image_rect()
        assert shown.width() >= KEEP_VISIBLE_PX - 1 and shown.height() >= KEEP_VISIBLE_PX - 1


def _pan(view, start: QPoint, end: QPoint) -> None:
    widget = view.viewport()
    for kind, pos, buttons in ((QMouseEvent.Type.MouseButtonPress, start, Qt.MouseButton.RightButton),
                               (QMouseEvent.Type.MouseMove, end, Qt.MouseButton.RightButton),
                               (QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(widget, QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)),
                                                   Qt.MouseButton.RightButton, buttons, Qt.KeyboardModifier.NoModifier))


def _grab(view) -> np.ndarray:
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * image.height())
    return data.reshape(image.height(), image.bytesPerLine())[:, :3 * image.width()].copy()


def test_corner_annotations_show_what_clinical_viewers_show_and_toggle_with_a_key(qtbot, window):
    scan = _open(qtbot, window, CT)
    viewer = window.viewer
    top_left, top_right, bottom_left, bottom_right = viewer.corner_texts()
    assert top_left == "CT\n128 × 128 px" and top_right == "Frame 1 / 1"
    assert bottom_left.startswith("W ") and " L " in bottom_left and bottom_left.endswith("Full range")
    assert bottom_right.startswith("Zoom ")
    pos = viewer.mapFromScene(QPointF(30.5, 20.5))
    QApplication.sendEvent(viewer.viewport(), QMouseEvent(
        QMouseEvent.Type.MouseMove, QPointF(pos), QPointF(viewer.viewport().mapToGlobal(pos)), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert viewer.corner_texts()[3].startswith("(x 30, y 20)  raw ") and " HU\nZoom " in viewer.corner_texts()[3]
    identifying = [v for v in scan.identifiers.values() if v]
    assert identifying and not any(v in "".join(viewer.corner_texts()) for v in identifying)
    with_corners = _grab(viewer)
    _key(qtbot, window, Qt.Key.Key_A)
    assert not viewer.annotations_visible and not window.annotations_action.isChecked()
    assert not np.array_equal(_grab(viewer), with_corners)
    _key(qtbot, window, Qt.Key.Key_A)
    assert viewer.annotations_visible and window.settings.value("annotations", type=bool)


def test_help_lists_every_shortcut(qtbot, window):
    from radbench.app.help_windows import show_shortcuts

    dialog = show_shortcuts(window)
    qtbot.addWidget(dialog)
    rows = {(keys, action) for _where, keys, action in dialog.rows()}
    for keys, action in (("PgUp or Up", "Previous frame"), ("PgDown or Down", "Next frame"), ("Home", "First frame"),
                         ("End", "Last frame"), ("+ or =", "Zoom in"), ("-", "Zoom out"), ("F", "View › Fit to window"),
                         ("A", "View › Corner annotations"), ("Ctrl+R", "Run › Run"),
                         ("F1", "Help › Keyboard shortcuts")):
        assert any(k == keys and a.startswith(action) for k, a in rows), (keys, action)
    assert any(k == "1" and "1:1" in a for k, a in rows)


def test_every_control_has_a_tooltip(qtbot, window):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSlider,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QListWidget,
        QScrollBar,
        QWidget,
    )

    window.open_batch()
    controls = (QAbstractButton, QComboBox, QAbstractSpinBox, QAbstractSlider, QLineEdit, QListWidget)
    widgets = [w for top in (window, window.batch_dialog) for w in top.findChildren(QWidget)
               if isinstance(w, controls) and not isinstance(w, QScrollBar) and not w.isHidden()
               and w.window() is top and not w.objectName().startswith("qt_")]
    missing = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in widgets if not w.toolTip()]
    assert len(widgets) > 20 and missing == []


@pytest.mark.slow
def test_heatmap_legend_opacity_and_smooth_overlay(qtbot, window):
    _open(qtbot, window, CHEST)
    pane = window.scan_pane
    assert not pane.overlay.isEnabled() and not pane.opacity.isEnabled() and not pane.legend.isVisible()
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    label = window.predictions[window.current_key].label
    pane.overlay.setChecked(True)
    assert pane.legend.isVisible() and pane.opacity.isEnabled() and label in pane.legend.toolTip()
    assert pane.opacity.width() >= 80  # a usable slider, not a checkbox-sized handle
    assert window.viewer.overlay_item.transformationMode() == Qt.TransformationMode.SmoothTransformation
    _key(qtbot, window, Qt.Key.Key_1)  # zoomed past 1:1 the image shows crisp pixels, the heatmap stays smooth
    assert window.viewer.image_item.transformationMode() == Qt.TransformationMode.FastTransformation
    assert window.viewer.overlay_item.transformationMode() == Qt.TransformationMode.SmoothTransformation
    pane.opacity.setValue(80)
    assert pane.opacity_label.text() == "Opacity 80%"


@pytest.mark.slow
def test_export_says_where_it_went_and_the_image_carries_the_verdict_and_the_notice(qtbot, window, tmp_path):
    from radbench.inference.display import view_caption

    _open(qtbot, window, MR)  # a head MR: outside the chest film model's domain
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    prediction = window.predictions[window.current_key]
    assert window.export_view(tmp_path / "view.png")
    assert window.statusBar().currentMessage() == f"View saved to {tmp_path / 'view.png'}"
    caption = view_caption(prediction)
    assert caption[0].startswith("Prediction withheld: ") and "for discussion only: NORMAL " in caption[1]
    assert caption[1].count("%") == 2 and caption[-1] == NOTICE
    image = QImage(str(tmp_path / "view.png"))
    assert image.width() == 64 and image.height() > 64  # the caption strip beneath the 64 x 64 frame
    _open(qtbot, window, CHEST)
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    chest = window.predictions[window.current_key]
    line = view_caption(chest, heatmap_shown=True)
    assert line[0] == (f"Prediction: {chest.label}, probability {chest.probabilities[chest.label]:.1%} "
                       f"({chest.model})")
    assert line[1].startswith(f"Heatmap: where the evidence for {chest.label} lies") and line[-1] == NOTICE
    assert not window.export_view(tmp_path / "missing" / "view.png")
    assert "Export failed" in window.last_problems
