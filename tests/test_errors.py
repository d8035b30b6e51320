"""Our exception types: messages lead with the file, built-in bases, picklable for dask workers."""

from __future__ import annotations

import pickle

import pytest

from napari_calcium import errors


def test_recording_error_names_the_file_and_problem(tmp_path):
    exc = errors.RecordingError(tmp_path / "a.tif", "truncated after frame 12")
    assert str(exc) == f"{tmp_path / 'a.tif'}: truncated after frame 12"
    assert exc.path == str(tmp_path / "a.tif") and isinstance(exc, OSError)
    meta = errors.MetadataError("x.xml", "no framePeriod")
    assert isinstance(meta, errors.RecordingError) and str(meta) == "x.xml: no framePeriod"


@pytest.mark.parametrize(
    "exc",
    [
        errors.RecordingError("r.bin", "size disagrees with r.json"),
        errors.MetadataError("m.xml", "cut short"),
        errors.OutputExistsError("out.tif"),
        errors.ParameterError("sigma must be > 0"),
        errors.OperationCancelled("cancelled after 10 of 20 frames"),
    ],
)
def test_errors_survive_pickling(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


def test_builtin_bases():
    assert issubclass(errors.ParameterError, ValueError)
    assert issubclass(errors.ShapeError, ValueError)
    assert issubclass(errors.OutputExistsError, FileExistsError)
    assert issubclass(errors.BackendError, RuntimeError)
    # warnings, not errors: flagged data, not refused
    warning_types = {"DegenerateTraceWarning", "DetectionWarning"}
    for name in errors.__all__:
        if name in warning_types:
            assert issubclass(getattr(errors, name), UserWarning)
        else:
            assert issubclass(getattr(errors, name), errors.NapariCalciumError)
