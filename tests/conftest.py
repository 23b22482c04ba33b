"""Shared fixtures: the repository's folders and a builder for small ONNX test models."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    """Every bundled sample scan."""
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "README.md")


@pytest.fixture(scope="session")
def placeholder_module():
    """``tests/onnx_builders.py`` as a module, to build model variants (wrong input, no card, ...)."""
    spec = importlib.util.spec_from_file_location("onnx_builders", ROOT / "tests" / "onnx_builders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def placeholder_path(placeholder_module, tmp_path_factory) -> Path:
    """The untrained placeholder saved as an ONNX file."""
    import onnx

    path = tmp_path_factory.mktemp("models") / "placeholder.onnx"
    onnx.save(placeholder_module.build(), path)
    return path


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A Dask scheduler and two workers (``one``, ``two``) as separate processes on localhost, each worker in a
    working folder of its own that holds no input (``tests/dask_processes.py``); all ended by pid at the end."""
    from dask_processes import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start_scheduler()
        cluster.start_worker("one")
        cluster.start_worker("two")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.end()


# ----- markers: ``gui`` on every tests/test_gui_*.py, ``slow`` on the tests below; ``pytest -m "not slow"`` is the
# quick loop. Slow: 1 s or more (a module fixture's setup counting for each test using it), measured per file with
# `pytest tests/<file> --durations=0 -p no:randomly` on the 2-core dev machine with Numba's on-disk cache warm.
# Kept quick at about 1 s: test_architecture.py (the layering rule) and the no-display test (the only one of gui.py).
#: Files whose tests are all slow: the console script in a subprocess per test, the whole pydicom corpus, a wheel
#: build, a cold Numba compile, Dask scheduler and worker processes.
SLOW_FILES = frozenset({"test_cli.py", "test_corpus.py", "test_packaging.py", "test_numba_first_use.py",
                        "test_gui_numba_first_use.py", "test_gui_inspector.py", "test_batch_cluster.py",
                        "test_gui_batch_cluster.py"})
#: Slow tests in other files: a name without ``[...]`` marks all its parametrizations.
SLOW_TESTS = {
    "test_batch.py": {
        "test_a_dask_cluster_writes_the_same_rows_as_the_local_pool",
        "test_after_ctrl_c_the_summary_counts_only_the_files_that_finished",
        "test_a_killed_batch_leaves_valid_rows_and_resume_completes_it",
        "test_every_file_gets_one_row_with_its_status_and_reason",
        "test_the_console_script_prints_a_summary",
        "test_two_workers_give_the_same_rows_as_one",
    },
    "test_batch_hostile.py": {
        "test_a_decoder_bomb_is_one_error_row_under_the_memory_limit",
        "test_a_file_over_the_time_limit_is_one_error_row_and_the_run_goes_on",
        "test_a_second_writer_is_refused_and_sigterm_ends_the_run_cleanly",
        "test_a_worker_killed_mid_file_costs_that_file_one_row",
        "test_discovery_reports_special_files_and_long_paths_and_skips_its_own_outputs",
        "test_names_that_are_not_utf8_or_break_lines_round_trip_and_resume",
        "test_resume_reads_damaged_and_spreadsheet_edited_csvs",
        "test_run_in_child_returns_the_result_or_raises_what_happened",
    },
    "test_benchmark.py": {
        "test_memory_option_measures_each_backend_in_a_fresh_process",
        "test_numba_cold_compile_and_cache_load_in_fresh_processes",
    },
    "test_classifier.py": {"test_pixel_identical_files_in_different_encodings_give_the_same_prediction"},
    "test_compare.py": {"test_every_backend_gets_medians_per_stage_and_they_agree"},
    "test_decoding_coverage.py": {"test_multiframe_ybr_full_422_that_pydicom_cannot_fit_is_decoded_frame_by_frame"},
    "test_decoder_bombs.py": {
        "test_isolated_loading_turns_a_decoder_over_its_ceiling_into_a_scan_error",
        "test_the_full_size_deflate_bomb_is_refused_before_inflating_it",
    },
    "test_fused_numba.py": {"test_chest_radiograph_as_the_pipeline_runs_it"},
    "test_fuzz_loaders.py": {
        "test_bit_flips",
        "test_coverage_guided_fuzzing_briefly_finds_no_crash",
        "test_declared_png_bomb_is_refused_before_decoding",
        "test_truncation_at_every_boundary[ct_explicit_le]",
    },
    "test_gui_main_window.py": {
        "test_a_naive_run_can_be_cancelled_and_the_window_stays_responsive",
        "test_bad_files_are_reported_together_and_the_app_goes_on",
        "test_batch_window_processes_a_folder_and_exports_its_rows",
        "test_heatmap_toggle_changes_the_picture",
        "test_opening_a_sample_shows_it_with_its_key_fields",
    },
    "test_gui_race.py": {"test_the_lanes_fill_stage_by_stage_as_the_real_race_measures_them"},
    "test_gui_timing_plots.py": {
        "test_batch_plot_draws_the_time_per_stage_summed_over_the_files",
        "test_bench_plot_draws_every_backend_of_one_file_at_the_size_it_prints",
        "test_the_console_script_draws_without_a_display",
    },
    "test_gui_viewer.py": {
        "test_export_is_full_resolution_with_overlay_and_optional_notice",
        "test_heatmap_stays_aligned_when_zoomed_and_panned",
    },
    "test_gui_code_view.py": {"test_how_opens_the_stage_code_side_by_side_under_the_measured_times"},
    "test_hostile_inputs.py": {"test_batch_writes_an_error_row_for_the_nan_file"},
    "test_inspect.py": {"test_inspect_writes_one_picture_and_one_entry_per_stage_with_their_shapes_and_ranges"},
    "test_messages.py": {
        "test_a_batch_over_the_whole_corpus_prints_no_line_that_names_no_file",
        "test_batch_puts_what_decoders_say_in_the_files_row_not_on_stderr",
    },
    "test_outputs.py": {"test_a_json_that_cannot_be_written_at_the_end_is_one_line_and_exit_2"},
    "test_privacy.py": {
        "test_batch_csv_and_json_hold_no_identifying_value",
        "test_include_phi_is_the_only_way_in",
        "test_predict_output_and_heatmap_export_hold_no_identifying_value",
    },
    "test_profile.py": {"test_profile_writes_a_readable_prof_and_prints_the_top_functions"},
    "test_training.py": {
        "test_one_epoch_exports_a_loadable_model_with_its_card",
        "test_readme_card_matches_the_embedded_card",
        "test_training_is_deterministic_for_a_seed",
    },
}


#: Slow module fixtures: every test using one is slow.
SLOW_FIXTURES = {
    "test_classifier.py": {"chest"},  # every backend, naive included, on the full-size chest radiograph: about 10 s
    "test_decoder_bombs.py": {"bombs"},  # writes every decoder bomb: about 1.5 s
    "test_race.py": {"raced"},  # every backend raced, Numba's kernels loaded: about 2.5 s
}


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` is in the lists above (by file, by name with or without parameters, or by fixture)."""
    file_name = item.path.name
    names = {item.name, getattr(item, "originalname", item.name)}
    return (file_name in SLOW_FILES or bool(names & SLOW_TESTS.get(file_name, set()))
            or bool(set(getattr(item, "fixturenames", ())) & SLOW_FIXTURES.get(file_name, set())))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name.startswith("test_gui_"):
            item.add_marker(pytest.mark.gui)
        if is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown main window with settings of its own and no start-up Numba compile (a test file may override it)."""
    from PySide6.QtCore import QSettings

    from radbench.app.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "radbench.ini"), QSettings.Format.IniFormat), warm_numba=False)
    qtbot.addWidget(win)
    win.show()
    return win
