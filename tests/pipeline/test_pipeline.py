"""The headless pipeline: config validation, end-to-end run, resume, cancel, load_results."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.errors import (
    OperationCancelled,
    OutputExistsError,
    ParameterError,
    RecordingError,
)
from napari_calcium.io.binary import open_binary
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline import (
    PipelineConfig,
    default_config,
    load_config,
    load_results,
    run_pipeline,
)
from napari_calcium.pipeline.config import SECTIONS
from napari_calcium.pipeline.provenance import read_provenance
from napari_calcium.pipeline.steps import STEPS

ALL_STEPS = list(STEPS)
DEFAULT_DISABLED = {"frames", "motion", "filter"}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recording")
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=8, seed=4)
    path = write_tiff_stack(
        folder / "movie.tif",
        rec.movie,
        frame_rate_hz=rec.metadata["frame_rate_hz"],
        pixel_size_um=rec.metadata["pixel_size_um"],
    )
    return path, rec


@pytest.fixture(scope="module")
def first_run(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "out"
    return run_pipeline(recording[0], out)


def _copy_results(run, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(run.out_dir, dest)  # copy2: sizes and mtimes kept
    return dest


def _statuses(run) -> dict[str, str]:
    return {s.name: s.status for s in run.steps}


def _no_partials(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if ".partial" in p.name or ".tmp" in p.name]
    assert leftovers == []


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and p.name != "provenance.json"
    }


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------


def test_default_toml_matches_dataclass_defaults():
    assert default_config() == PipelineConfig()
    assert load_config(None) == PipelineConfig()


_OWN_KEYS = {
    "enabled",
    "repair",
    "correlation",
    "kind",
    "method",
    "path",
    "input",
    "formats",
    "name",
    "channel",
    "plane",
}
_FUNCTIONS = {
    "open": [nc.open_recording],
    "frames": [nc.detect_corrupted_frames, nc.repair_corrupted_frames],
    "motion": [nc.motion_correct],
    "filter": [nc.median_filter, nc.gaussian_filter],
    "summary": [nc.projections, nc.correlation_pnr],
    "rois": [nc.detect_rois, nc.load_rois],
    "extract": [nc.extract_traces],
    "dff": [nc.compute_dff],
    "deconvolve": [nc.deconvolve],
    "events": [nc.detect_events, nc.identify_events],
    "export": [nc.save_traces],
}


@pytest.mark.parametrize("section", list(SECTIONS))
def test_config_keys_are_function_keywords(section):
    accepted = {"frame_rate_hz", "pixel_size_um"}  # [open] overrides of the metadata
    for func in _FUNCTIONS[section]:
        accepted |= set(inspect.signature(func).parameters)
    keys = {f.name for f in dataclasses.fields(SECTIONS[section])} - _OWN_KEYS
    assert keys <= accepted, keys - accepted


def test_config_from_toml_yaml_and_mapping(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text('[dff]\nwindow_s = 12.5\n[rois]\nmethod = "file"\npath = "r.npz"\n')
    cfg = load_config(toml)
    assert cfg.dff.window_s == 12.5 and cfg.dff.method == "robust"
    assert Path(cfg.rois.path) == tmp_path / "r.npz"  # relative to the config file
    assert cfg.source == str(toml)
    pytest.importorskip("yaml")
    yml = tmp_path / "p.yaml"
    yml.write_text("deconvolve:\n  lam: noise\nsummary:\n  kinds: [mean]\n")
    cfg = load_config(yml)
    assert cfg.deconvolve.lam == "noise" and cfg.summary.kinds == ("mean",)
    assert load_config({"events": {"enabled": False}}).events.enabled is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dff.window_s = 1.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[dff]\nwindows = 3\n", ["[dff]", "windows", "unknown key"]),
        ("[dff]\nwindow_s = -3\n", ["[dff]", "window_s", "> 0"]),
        ('[dff]\nmethod = "mean"\n', ["[dff]", "method", "'robust'"]),
        ('[extract]\nneuropil = "yes"\n', ["[extract]", "neuropil", "bool"]),
        ("[rois]\narea_range = [1.0]\n", ["[rois]", "area_range"]),
        ("[nope]\nx = 1\n", ["[nope]", "unknown section"]),
        ('[rois]\nmethod = "file"\n', ["[rois]", "path"]),
        ("[dff\n", ["not valid TOML"]),
    ],
)
def test_bad_config_names_file_section_and_key(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ParameterError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_missing_config_file_and_wrong_suffix(tmp_path):
    with pytest.raises(RecordingError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "c.ini").write_text("")
    with pytest.raises(ParameterError, match=r"\.toml"):
        load_config(tmp_path / "c.ini")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def test_first_run_writes_every_output_and_provenance(first_run, recording):
    run, out = first_run, first_run.out_dir
    assert [s.name for s in run.steps] == ALL_STEPS
    for step in run.steps:
        expected = "disabled" if step.name in DEFAULT_DISABLED else "ran"
        assert step.status == expected, step
        assert all(p.is_file() for p in step.outputs)
        assert (step.outputs == []) == (step.name in DEFAULT_DISABLED)
    for name in ("recording.json", "summary_images.npz", "rois.npz", "events.npz", "traces.npz"):
        assert (out / name).is_file()
    prov = read_provenance(out)
    assert set(prov["steps"]) == set(ALL_STEPS)
    for name, rec in prov["steps"].items():
        if name in DEFAULT_DISABLED:
            assert rec["status"] == "disabled"
            continue
        assert rec["status"] == "ran" and len(rec["key"]) == 64 and rec["seconds"] >= 0
        for o in rec["outputs"]:
            assert (out / o["path"]).stat().st_size == o["size"] and len(o["sha256"]) == 64
    assert prov["config"] == default_config().to_dict()
    assert prov["inputs"][0]["path"] == str(recording[0].resolve())
    assert prov["inputs"][0]["size"] == recording[0].stat().st_size
    assert {"napari-calcium", "numpy", "scipy", "dask", "numba"} <= set(
        prov["environment"]["packages"]
    )
    assert run.summary["n_frames"] == 300 and run.summary["frame_rate_hz"] == 30.0
    assert run.summary["n_rois"] > 0 and run.summary["mean_event_rate_hz"] >= 0
    _no_partials(out)


def test_load_results_match_truth_and_direct_calls(first_run, recording):
    path, rec = recording
    res = load_results(first_run.out_dir)
    truth = nc.RoiSet.from_label_image(rec.truth.labels)
    assert nc.detection_scores(res.rois, truth).f1 >= 0.8
    n = res.rois.n_rois
    assert res.traces.F.shape == res.traces.Fneu.shape == res.traces.corrected.shape == (n, 300)
    direct = nc.extract_traces(nc.open_recording(path).movie, res.rois, frame_rate_hz=30.0)
    for name in ("F", "Fneu", "corrected"):
        np.testing.assert_array_equal(getattr(res.traces, name), getattr(direct, name))
    assert res.dff.dff.shape == (n, 300)
    assert res.spikes is not None and res.spikes.s.shape == (n, 300)
    assert len(res.events) == n
    assert {"mean", "max", "std", "correlation", "pnr"} <= set(res.summary_images)
    assert res.summary_images["mean"].shape == (64, 64)
    assert res.movie_path == path.resolve()
    assert res.provenance["steps"]["extract"]["status"] == "ran"


def test_second_run_skips_everything(first_run, recording, tmp_path):
    out = _copy_results(first_run, tmp_path)
    before = _mtimes(out)
    run = run_pipeline(recording[0], out)
    for name, status in _statuses(run).items():
        assert status == ("disabled" if name in DEFAULT_DISABLED else "skipped"), name
    assert _mtimes(out) == before
    assert run.summary["n_rois"] == first_run.summary["n_rois"]


def test_changing_dff_window_reruns_dff_and_later_only(first_run, recording, tmp_path):
    out = _copy_results(first_run, tmp_path)
    before = _mtimes(out)
    run = run_pipeline(recording[0], out, {"dff": {"window_s": 5.0}})
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "ran"] == ["dff", "deconvolve", "events", "export"]
    assert [s for s in ALL_STEPS if status[s] == "skipped"] == [
        "open",
        "summary",
        "rois",
        "extract",
    ]
    after = _mtimes(out)
    for name in ("recording.json", "summary_images.npz", "rois.npz", "steps/extract.npz"):
        assert after[name] == before[name]
    assert load_results(out).dff.parameters["window_s"] == 5.0
    # back to the defaults: dff and later run again, the rest stays
    again = _statuses(run_pipeline(recording[0], out))
    assert again["extract"] == "skipped" and again["dff"] == "ran"


def test_rois_from_file(recording, tmp_path):
    path, rec = recording
    truth = nc.RoiSet.from_label_image(rec.truth.labels)
    nc.save_rois(truth, tmp_path / "truth_rois.npz")
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(
        '[rois]\nmethod = "file"\npath = "truth_rois.npz"\n'
        "[summary]\ncorrelation = false\n[events]\nenabled = false\n"
    )
    run = run_pipeline(path, tmp_path / "out", cfg)
    assert _statuses(run)["events"] == "disabled"
    res = load_results(run.out_dir)
    assert res.rois.n_rois == 8 and res.events is None
    np.testing.assert_array_equal(res.rois.ids, truth.ids)
    assert res.traces.F.shape == (8, 300)
    assert read_provenance(run.out_dir)["config_file"] == str(cfg)


def test_missing_inputs_are_named(recording, tmp_path):
    with pytest.raises(RecordingError, match=r"nothere\.tif"):
        run_pipeline(tmp_path / "nothere.tif", tmp_path / "out")
    cfg = {"rois": {"method": "file", "path": str(tmp_path / "gone.zip")}}
    with pytest.raises(RecordingError, match=r"gone\.zip"):
        run_pipeline(recording[0], tmp_path / "out2", cfg)


def test_foreign_folder_is_refused(recording, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        run_pipeline(recording[0], out)


def test_motion_and_filter_write_binary_movies(first_run, recording, tmp_path):
    out = _copy_results(first_run, tmp_path)
    cfg = {"motion": {"enabled": True, "max_shift_px": 3.0}, "filter": {"size": 3, "axes": "yx"}}
    cfg["filter"]["enabled"] = True
    run = run_pipeline(recording[0], out, cfg)
    status = _statuses(run)
    assert status["open"] == "skipped" and status["motion"] == status["filter"] == "ran"
    assert status["rois"] == status["extract"] == "ran"
    res = load_results(out)
    assert res.movie_path == out.resolve() / "filtered.bin"
    movie = open_binary(res.movie_path).movie
    assert movie.shape == (300, 64, 64)
    direct = nc.extract_traces(movie, res.rois, frame_rate_hz=30.0)
    np.testing.assert_array_equal(res.traces.corrected, direct.corrected)
    assert (out / "motion_corrected.bin").is_file() and (out / "motion.npz").is_file()
    _no_partials(out)


def test_cancel_then_resume(recording, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OperationCancelled):
        run_pipeline(recording[0], out, should_stop=lambda: (out / "rois.npz").exists())
    _no_partials(out)
    prov = read_provenance(out)
    assert [s for s in ALL_STEPS if prov["steps"].get(s, {}).get("status") == "ran"] == [
        "open", "summary", "rois",
    ]  # fmt: skip
    assert not (out / "steps" / "extract.npz").exists()
    with pytest.raises(RecordingError, match="extract"):
        load_results(out)
    # cancelled inside a step, between blocks: nothing half-written either
    calls = iter(range(10**6))
    with pytest.raises(OperationCancelled):
        run_pipeline(recording[0], out, {"extract": {"neuropil_coefficient": 0.5}},
                     should_stop=lambda: next(calls) >= 2)  # fmt: skip
    _no_partials(out)
    run = run_pipeline(recording[0], out)
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "skipped"] == ["open", "summary", "rois"]
    assert [s for s in ALL_STEPS if status[s] == "ran"] == [
        "extract", "dff", "deconvolve", "events", "export",
    ]  # fmt: skip
    assert load_results(out).spikes is not None
    _no_partials(out)


def test_load_results_of_a_folder_without_results(tmp_path):
    with pytest.raises(RecordingError, match=r"provenance\.json"):
        load_results(tmp_path)
    with pytest.raises(RecordingError, match="not found"):
        load_results(tmp_path / "missing")
    (tmp_path / "provenance.json").write_text(json.dumps({"steps": {}}))
    with pytest.raises(RecordingError, match=r"open, rois, extract"):
        load_results(tmp_path)


def test_a_full_config_dump_loads_back_and_the_other_filter_kind_is_refused():
    """PipelineConfig.to_dict() holds every field (size and sigma at their defaults): it loads."""
    from napari_calcium.errors import ParameterError
    from napari_calcium.pipeline.config import default_config, load_config

    dump = default_config().to_dict()
    assert load_config(dump).to_dict() == dump
    with pytest.raises(ParameterError, match='kind = "median" takes size, not sigma'):
        load_config({"filter": {"kind": "median", "sigma": 2.0}})
    with pytest.raises(ParameterError, match='kind = "gaussian" takes sigma, not size'):
        load_config({"filter": {"kind": "gaussian", "size": 5}})
