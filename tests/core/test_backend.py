"""Tests of napari_calcium.core._backend: numpy/cupy dispatch, devices, host transfers.

There is no GPU on the CI machines; cupy is simulated with fake modules placed in ``sys.modules``
(the backend never imports cupy just to look at an array, so a fake is all it sees). Tests marked
``gpu`` run against the real cupy wherever a working device is present.
"""

from __future__ import annotations

import subprocess
import sys
import types

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import scipy.signal

from napari_calcium.core import _backend
from napari_calcium.core._backend import (
    DEVICE_ENV_VAR,
    array_module,
    asarray,
    describe_backend,
    device_array_module,
    fft_module,
    gpu_available,
    is_cupy_array,
    is_dask_array,
    ndimage_module,
    requested_device,
    resolve_device,
    signal_module,
    to_host,
)
from napari_calcium.errors import BackendError, ParameterError

GPU = gpu_available()


@pytest.fixture(autouse=True)
def _fresh_gpu_probe(monkeypatch):
    """Each test starts from an unset device variable and an empty gpu_available cache."""
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    gpu_available.cache_clear()
    yield
    gpu_available.cache_clear()


# --------------------------------------------------------------------------------------------------
# A fake cupy
# --------------------------------------------------------------------------------------------------
class FakeCupyArray:
    """Just enough of cupy.ndarray: shape, dtype, ndim and .get()."""

    def __init__(self, data):
        self._data = np.asarray(data)
        self.shape = self._data.shape
        self.dtype = self._data.dtype
        self.ndim = self._data.ndim

    def get(self):
        return self._data.copy()


FakeCupyArray.__module__ = "cupy"


def make_fake_cupy(
    *,
    available=True,
    available_error=None,
    alloc_error=None,
    with_ndarray=True,
):
    """A module named 'cupy' that simulates an installed cupy with or without a working GPU."""
    mod = types.ModuleType("cupy")
    mod.__version__ = "0.0-fake"
    if with_ndarray:
        mod.ndarray = FakeCupyArray

    def is_available():
        if available_error is not None:
            raise available_error
        return available

    def arange(n):
        if alloc_error is not None:
            raise alloc_error
        return np.arange(n)  # the "kernel" then runs on numpy and gives the right answer

    mod.cuda = types.SimpleNamespace(is_available=is_available)
    mod.arange = arange
    mod.asarray = lambda x, dtype=None: FakeCupyArray(np.asarray(x, dtype=dtype))
    mod.empty = lambda shape, dtype=None: FakeCupyArray(np.empty(shape, dtype=dtype))
    return mod


@pytest.fixture
def fake_cupy(monkeypatch):
    mod = make_fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", mod)
    monkeypatch.setitem(sys.modules, "cupyx", None)  # no cupyx.scipy behind the fake
    return mod


# --------------------------------------------------------------------------------------------------
# array_module
# --------------------------------------------------------------------------------------------------
def test_array_module_numpy_lists_scalars_and_nothing():
    assert array_module(np.zeros((2, 3))) is np
    assert array_module([1, 2, 3]) is np
    assert array_module(3.0, np.float32(2), None, (1, 2)) is np
    assert array_module() is np


def test_array_module_memmap_is_numpy(tmp_path):
    mm = np.memmap(tmp_path / "m.bin", dtype=np.uint16, mode="w+", shape=(3, 4))
    assert array_module(mm) is np
    assert to_host(mm) is mm  # nothing is read


def test_array_module_dask_of_numpy():
    d = da.zeros((10, 4, 4), chunks=(3, 4, 4))
    assert is_dask_array(d)
    assert not is_dask_array(np.zeros(3))
    assert array_module(d) is np
    assert array_module(d, np.ones(3)) is np


def test_fake_cupy_array_dispatches_to_cupy(fake_cupy):
    x = FakeCupyArray(np.ones((2, 2)))
    assert is_cupy_array(x)
    assert not is_cupy_array(np.ones(2))
    assert array_module(x) is fake_cupy
    assert array_module(x, 2.0, np.float32(3), None, [1, 2]) is fake_cupy


def test_cupy_is_recognised_by_module_name_without_ndarray_attribute(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy(with_ndarray=False))
    assert array_module(FakeCupyArray([1.0])) is sys.modules["cupy"]


def test_cupy_type_is_not_trusted_when_cupy_was_never_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    assert not is_cupy_array(FakeCupyArray([1.0]))
    assert array_module(FakeCupyArray([1.0])) is np


def test_mixing_cupy_and_numpy_arrays_raises(fake_cupy):
    x = FakeCupyArray(np.ones((2, 2)))
    with pytest.raises(BackendError, match=r"cupy.*numpy|numpy.*cupy") as info:
        array_module(x, np.ones((2, 2)))
    assert "argument 1" in str(info.value)
    with pytest.raises(BackendError):
        array_module(np.ones(3), x)
    with pytest.raises(BackendError):  # a 0-d numpy array is an array, not a scalar
        array_module(x, np.array(2.0))


def test_dask_of_cupy_dispatches_to_cupy(fake_cupy):
    d = da.zeros((4, 4), chunks=2)
    d._meta = FakeCupyArray(np.empty((0, 0)))
    assert array_module(d) is fake_cupy
    with pytest.raises(BackendError):
        array_module(d, np.ones((4, 4)))


def test_importing_core_does_not_import_cupy_napari_or_qt():
    code = (
        "import sys, numpy as np\n"
        "import napari_calcium.core._backend as b, napari_calcium.core.chunking as c\n"
        "b.array_module(np.ones(2)); b.to_host([1]); b.resolve_device('cpu')\n"
        "list(c.iter_frame_blocks(np.ones((3, 2, 2)), block_frames=2))\n"
        "bad = [m for m in ('cupy', 'cupyx', 'napari', 'qtpy', 'PyQt6', 'magicgui', 'tifffile',"
        " 'napari_calcium.io') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------------------------------
# scipy-like modules
# --------------------------------------------------------------------------------------------------
def test_scipy_modules_for_numpy_from_module_or_array():
    x = np.zeros((3, 3))
    assert ndimage_module(np) is scipy.ndimage
    assert ndimage_module(x) is scipy.ndimage
    assert fft_module(np) is scipy.fft
    assert fft_module(x) is scipy.fft
    assert signal_module(np) is scipy.signal
    assert signal_module([1.0, 2.0]) is scipy.signal


def test_scipy_modules_for_array_api_compat_numpy():
    compat_numpy = pytest.importorskip("array_api_compat.numpy")
    assert ndimage_module(compat_numpy) is scipy.ndimage


def test_cupy_without_cupyx_raises_backend_error(fake_cupy):
    with pytest.raises(BackendError, match="napari-calcium\\[gpu\\]"):
        ndimage_module(fake_cupy)
    with pytest.raises(BackendError, match=r"cupyx\.scipy\.fft"):
        fft_module(FakeCupyArray([1.0]))


# --------------------------------------------------------------------------------------------------
# to_host
# --------------------------------------------------------------------------------------------------
def test_to_host_numpy_is_unchanged():
    x = np.arange(6).reshape(2, 3)
    assert to_host(x) is x


def test_to_host_dask_and_list():
    x = np.arange(24.0).reshape(4, 2, 3)
    got = to_host(da.from_array(x, chunks=(2, 2, 3)))
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(to_host([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    assert to_host(2.5).shape == ()


def test_to_host_fake_cupy_uses_get(fake_cupy):
    got = to_host(FakeCupyArray(np.arange(4)))
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, np.arange(4))


# --------------------------------------------------------------------------------------------------
# array_api_strict: a non-numpy namespace passes through array_module untouched
# --------------------------------------------------------------------------------------------------
def _demean_frames(movie):
    """An xp-generic function written the way core functions are."""
    xp = array_module(movie)
    movie = xp.astype(movie, xp.float32)
    return movie - xp.mean(movie, axis=0, keepdims=True)


def test_array_module_on_array_api_strict():
    x = xps.reshape(xps.arange(24, dtype=xps.float32), (4, 2, 3))
    assert array_module(x) is xps
    assert array_module(x, 2.0, None) is xps
    with pytest.raises(BackendError):
        array_module(x, np.ones(3))
    with pytest.raises(BackendError, match="array_api_strict"):
        ndimage_module(x)
    host = to_host(x)
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, np.arange(24, dtype=np.float32).reshape(4, 2, 3))


def test_xp_generic_code_runs_the_same_on_numpy_and_array_api_strict():
    data = np.random.default_rng(0).integers(0, 100, size=(5, 3, 4)).astype(np.uint16)
    strict = _demean_frames(xps.asarray(data))
    assert array_module(strict) is xps
    np.testing.assert_allclose(to_host(strict), _demean_frames(data), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# gpu_available
# --------------------------------------------------------------------------------------------------
def test_gpu_available_false_when_cupy_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    assert gpu_available() is False


def test_gpu_available_on_this_machine_never_raises():
    assert isinstance(gpu_available(), bool)


@pytest.mark.parametrize(
    "fake",
    [
        make_fake_cupy(alloc_error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device")),
        make_fake_cupy(available_error=RuntimeError("CUDA driver version is insufficient")),
        make_fake_cupy(available_error=OSError("libcuda.so.1: cannot open shared object file")),
        make_fake_cupy(available=False),
    ],
    ids=["installed-no-driver", "is_available-raises", "missing-libcuda", "not-available"],
)
def test_gpu_available_false_for_broken_cupy(monkeypatch, fake):
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert gpu_available() is False


def test_gpu_available_is_cached_and_cache_clear_probes_again(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy())
    assert gpu_available() is True
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy(alloc_error=RuntimeError("gone")))
    assert gpu_available() is True  # cached
    gpu_available.cache_clear()
    assert gpu_available() is False


# --------------------------------------------------------------------------------------------------
# NAPARI_CALCIUM_DEVICE and resolve_device
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cpu", "cpu"),
        ("gpu", "gpu"),
        ("auto", "auto"),
        (" GPU ", "gpu"),
        ("Cpu\n", "cpu"),
        ("", "auto"),
    ],
)
def test_requested_device_parses_env(monkeypatch, value, expected):
    monkeypatch.setenv(DEVICE_ENV_VAR, value)
    assert requested_device() == expected


def test_requested_device_defaults_to_auto():
    assert requested_device() == "auto"


def test_bad_env_value_names_variable_value_and_choices(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "tpu")
    with pytest.raises(ParameterError) as info:
        requested_device()
    message = str(info.value)
    assert DEVICE_ENV_VAR in message
    assert "'tpu'" in message
    assert all(choice in message for choice in ("auto", "cpu", "gpu"))
    with pytest.raises(ParameterError):
        resolve_device()


def test_env_is_read_at_call_time(monkeypatch):
    monkeypatch.setattr(_backend, "gpu_available", lambda: True)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert resolve_device() == "cpu"
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    assert resolve_device() == "gpu"


def test_resolve_device_auto_follows_gpu_available(monkeypatch):
    monkeypatch.setattr(_backend, "gpu_available", lambda: False)
    assert resolve_device() == "cpu"
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(_backend, "gpu_available", lambda: True)
    assert resolve_device() == "gpu"
    assert resolve_device(" AUTO ") == "gpu"


def test_explicit_device_beats_env(monkeypatch):
    monkeypatch.setattr(_backend, "gpu_available", lambda: False)
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setenv(DEVICE_ENV_VAR, "nonsense")  # never read when the argument is given
    assert resolve_device("cpu") == "cpu"


def test_resolve_device_bad_argument_names_device():
    with pytest.raises(ParameterError, match="device"):
        resolve_device("cuda")


def test_gpu_requested_without_gpu_raises_with_instructions(monkeypatch):
    monkeypatch.setattr(_backend, "gpu_available", lambda: False)
    with pytest.raises(BackendError) as info:
        resolve_device("gpu")
    message = str(info.value)
    assert 'pip install "napari-calcium[gpu]"' in message
    assert "CUDA" in message and "driver" in message
    assert f"{DEVICE_ENV_VAR}=cpu" in message and "auto" in message
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(BackendError, match=f"{DEVICE_ENV_VAR}=gpu"):
        resolve_device()


def test_gpu_requested_on_this_machine():
    if gpu_available():
        assert resolve_device("gpu") == "gpu"
    else:
        with pytest.raises(BackendError):
            resolve_device("gpu")


def test_device_array_module_and_asarray_on_cpu(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert device_array_module() is np
    x = np.arange(6, dtype=np.uint16)
    assert asarray(x) is x
    y = asarray(x, dtype=np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(asarray([1, 2], device="cpu"), [1, 2])


def test_asarray_dask_stays_lazy():
    d = da.from_array(np.arange(12).reshape(4, 3), chunks=(2, 3))
    moved = asarray(d, device="cpu", dtype=np.float32)
    assert is_dask_array(moved)
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved.compute(), np.arange(12.0).reshape(4, 3))


def test_gpu_path_with_fake_cupy(monkeypatch, fake_cupy):
    assert resolve_device("gpu") == "gpu"
    assert device_array_module("gpu") is fake_cupy
    moved = asarray(np.arange(3), device="gpu", dtype=np.float32)
    assert isinstance(moved, FakeCupyArray) and moved.dtype == np.float32
    back = asarray(moved, device="cpu")
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0])


# --------------------------------------------------------------------------------------------------
# describe_backend
# --------------------------------------------------------------------------------------------------
def test_describe_backend_reports_versions():
    info = describe_backend()
    assert info["numpy"] == np.__version__
    assert info["scipy"] == scipy.__version__
    assert info["device"] in ("cpu", "gpu")
    assert {"cupy", "gpu_name", "gpu_available", "requested"} <= set(info)
    if not info["gpu_available"]:
        assert info["gpu_name"] is None


def test_describe_backend_never_raises(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "bad")
    info = describe_backend()
    assert info["device"] is None
    assert info["requested"].startswith("invalid")
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy())  # "works" but has no runtime API
    info = describe_backend()
    assert info["cupy"] == "0.0-fake"
    assert info["gpu_name"] is None


# --------------------------------------------------------------------------------------------------
# Real GPU (skipped without one)
# --------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="needs CuPy and a working CUDA device")
def test_gpu_gaussian_filter_matches_scipy():
    cp = device_array_module("gpu")
    host = np.random.default_rng(1).random((4, 24, 20), dtype=np.float32)
    x = cp.asarray(host)
    assert array_module(x) is cp
    ndi = ndimage_module(x)
    assert ndi.__name__ == "cupyx.scipy.ndimage"
    got = to_host(ndi.gaussian_filter(x, sigma=(0, 1.5, 1.5)))
    want = scipy.ndimage.gaussian_filter(host, sigma=(0, 1.5, 1.5))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="needs CuPy and a working CUDA device")
def test_gpu_dispatch_transfers_and_description():
    cp = device_array_module("gpu")
    x = cp.arange(6, dtype=cp.float32)
    with pytest.raises(BackendError):
        array_module(x, np.ones(6))
    d = da.from_array(np.arange(6.0), chunks=3).map_blocks(cp.asarray)
    assert array_module(d) is cp
    np.testing.assert_array_equal(to_host(d), np.arange(6.0))
    assert fft_module(cp).__name__ == "cupyx.scipy.fft"
    assert signal_module(x).__name__ == "cupyx.scipy.signal"
    info = describe_backend()
    assert info["gpu_available"] and info["gpu_name"]
