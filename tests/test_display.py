"""Display windowing on real files: presets, default window, rendering, mouse window/level and cursor values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radbench.inference import display
from radbench.inference.loading import load_scan
from radbench.inference.scan import WindowPreset

CT = get_testdata_file("CT_small.dcm")
MR = get_testdata_file("emri_small.dcm")
RGB = get_testdata_file("SC_rgb.dcm")
CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"
PNG = CHEST.with_name("tibia_cr_rg3_8bit_440px.png")


def test_ct_presets_are_the_standard_windows():
    assert [(p.name, p.center, p.width) for p in display.CT_PRESETS] == [
        ("Lung", -600, 1500), ("Mediastinum", 40, 400), ("Bone", 400, 1800), ("Brain", 40, 80)]
    ct = load_scan(CT)
    assert display.presets_for(ct, display.rescaled_frame(ct))[2:] == display.CT_PRESETS


def test_presets_are_named_in_words_the_files_first_and_never_empty():
    chest = load_scan(CHEST)
    rescaled = display.rescaled_frame(chest)
    presets = display.presets_for(chest, rescaled)
    assert presets[0] == WindowPreset(15000.0, 30000.0, "From file: preset 1")  # CR: no CT presets
    assert [p.name for p in presets] == ["From file: preset 1", "Full range", "Auto (1-99 %)"]
    assert (presets[1].center, presets[1].width) == display.full_range_window(rescaled)
    ct = replace(load_scan(CT), window_presets=(WindowPreset(40, 400, "Abdomen"), WindowPreset(-500, 1000)))
    names = [p.name for p in display.presets_for(ct, display.rescaled_frame(ct))]
    assert names == ["From file: Abdomen", "From file: preset 2", "Full range", "Auto (1-99 %)", "Lung", "Mediastinum",
                     "Bone", "Brain"]
    for path in (MR, PNG):
        scan = load_scan(path)
        assert [p.name for p in display.presets_for(scan, display.rescaled_frame(scan))][-2:] == [
            "Full range", "Auto (1-99 %)"]
    with pytest.raises(KeyError, match="Lung"):
        display.preset_named(chest, rescaled, "Lung")


def test_the_auto_window_spans_the_1st_to_99th_percentile():
    values = np.arange(1000, dtype=np.float32).reshape(10, 100)
    values[0, 0], values[-1, -1] = -30000, 30000  # two outliers no longer flatten the picture
    center, width = display.auto_window(values)
    lo, hi = np.percentile(values, [1, 99])
    assert (center, width) == pytest.approx(((lo + hi + 1) / 2, hi - lo + 1))
    assert display.full_range_window(values)[1] == 60001
    assert display.auto_window(np.zeros((4, 4), np.float32))[1] == 1  # flat: width at least 1


def test_rescaled_frame_applies_the_modality_lut():
    ds = dcmread(CT)
    rescaled = display.rescaled_frame(load_scan(CT), 0)
    assert rescaled.dtype == np.float32 and rescaled.shape == (128, 128)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(rescaled, expected)


def test_default_window_is_the_first_preset_else_the_frames_range():
    chest = load_scan(CHEST)
    assert display.default_window(chest, display.rescaled_frame(chest)) == (15000.0, 30000.0)
    ct = load_scan(CT)
    rescaled = display.rescaled_frame(ct)
    center, width = display.default_window(ct, rescaled)
    picture = display.render(rescaled, center, width, False)
    assert picture[rescaled == rescaled.min()].max() == 0 and picture[rescaled == rescaled.max()].min() == 255
    flat = np.full((4, 4), 7.0, np.float32)
    assert display.default_window(ct, flat)[1] >= 1


def test_render_is_the_linear_window_and_invert_flips_it():
    values = np.array([[-1000.0, -175.0, 40.0, 50.0, 60.0, 225.0, 3000.0]], np.float32)
    picture = display.render(values, 50, 350, False)
    assert picture.dtype == np.uint8
    expected = np.clip((values - 49.5) / 349 + 0.5, 0, 1)
    np.testing.assert_array_equal(picture, np.round(expected * 255))
    assert picture[0, 0] == 0 and picture[0, -1] == 255
    np.testing.assert_array_equal(display.render(values, 50, 350, True), 255 - picture)
    assert set(np.unique(display.render(values, 50, 0.1, False))) == {0, 255}  # width clamped to 1


def test_monochrome1_with_the_scan_inversion_shows_low_stored_values_bright():
    chest = load_scan(CHEST)
    rescaled = display.rescaled_frame(chest)
    picture = display.render(rescaled, *display.default_window(chest, rescaled), chest.inverted)
    lowest_stored = np.unravel_index(rescaled.argmin(), rescaled.shape)
    highest_stored = np.unravel_index(rescaled.argmax(), rescaled.shape)
    assert picture[lowest_stored] > 200 and picture[highest_stored] < 60


def test_window_drag_directions_and_sensitivity():
    assert display.window_drag(100, 200, 512, 0, 4096) == (100, 200 + 4096)  # right widens by the whole range
    assert display.window_drag(100, 3000, -256, 0, 4096) == (100, 3000 - 2048)
    assert display.window_drag(100, 200, 0, 256, 1000) == (600, 200)  # down raises the level
    assert display.window_drag(100, 200, 0, -128, 1000) == (-150, 200)
    assert display.window_drag(100, 5, -10_000, 0, 1000) == (100, 1.0)  # never below 1
    assert display.window_drag(0, 10, 512, 0, 0) == (0, 11)  # a flat image still responds


def test_ct_value_text_gives_raw_and_hounsfield_units():
    scan, ds = load_scan(CT), dcmread(CT)
    rescaled = display.rescaled_frame(scan, 0)
    for row, col in ((20, 30), (64, 64), (127, 0)):
        raw = int(ds.pixel_array[row, col])
        hu = raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert display.value_text(scan, 0, row, col, rescaled) == f"(x {col}, y {row})  raw {raw}  →  {hu:g} HU"
    assert display.value_text(scan, 0, 128, 0, rescaled) == ""
    assert display.value_text(scan, 0, 0, -1, rescaled) == ""


def test_value_text_without_rescale_colour_and_non_ct_units():
    mr = load_scan(MR)
    raw = int(dcmread(MR).pixel_array[7, 5, 9])
    assert display.value_text(mr, 7, 5, 9, display.rescaled_frame(mr, 7)) == f"(x 9, y 5)  raw {raw}"
    scaled = replace(mr, rescale_slope=2.0, rescale_intercept=10.0)
    text = display.value_text(scaled, 7, 5, 9, display.rescaled_frame(scaled, 7))
    assert text == f"(x 9, y 5)  raw {raw}  →  {2 * raw + 10}"
    rgb = load_scan(RGB)
    r, g, b = (int(v) for v in dcmread(RGB).pixel_array[20, 30])
    assert display.value_text(rgb, 0, 20, 30, display.rescaled_frame(rgb)) == f"(x 30, y 20)  RGB ({r}, {g}, {b})"


@pytest.mark.parametrize("frame", [0, 9, -1])
def test_rescaled_frame_follows_the_frame(frame):
    mr = load_scan(MR)
    np.testing.assert_array_equal(display.rescaled_frame(mr, frame), dcmread(MR).pixel_array[frame])
