"""Tests of napari_calcium.core.traces.reorganize: CalSciPy's shapes, round trips, errors."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest

from napari_calcium.core.traces.reorganize import (
    generate_tensor,
    merge_factorized_matrices,
    merge_tensor,
)
from napari_calcium.errors import ParameterError, ShapeError


def matrix(n_rois=4, n_frames=60):
    return np.arange(n_rois * n_frames, dtype=np.float32).reshape(n_rois, n_frames)


def test_generate_tensor_chunks_like_calscipy_and_round_trip():
    x = matrix()
    tensor = generate_tensor(x, 15)
    assert tensor.shape == (4, 4, 15) and tensor.dtype == x.dtype
    np.testing.assert_array_equal(tensor, np.stack(np.hsplit(x, 4), axis=0))  # CalSciPy
    for j in range(4):
        np.testing.assert_array_equal(tensor[j], x[:, 15 * j : 15 * (j + 1)])
    tensor[0, 0, 0] = -1  # a copy, not a view
    assert x[0, 0] == 0
    np.testing.assert_array_equal(merge_tensor(generate_tensor(x, 15)), x)
    np.testing.assert_array_equal(merge_tensor(generate_tensor(x, 60)), x)
    np.testing.assert_array_equal(merge_tensor(tensor), np.hstack(tensor))  # CalSciPy


def test_generate_tensor_from_trial_starts():
    x = matrix()
    tensor = generate_tensor(x, trial_starts=[40, 0, 10], trial_frames=20)
    assert tensor.shape == (3, 4, 20)
    np.testing.assert_array_equal(tensor[0], x[:, 40:60])
    np.testing.assert_array_equal(tensor[2], x[:, 10:30])
    np.testing.assert_array_equal(
        merge_tensor(generate_tensor(x, trial_starts=[0, 20, 40], trial_frames=20)), x
    )


def test_array_api_generic():
    x = xps.asarray(matrix())
    tensor = generate_tensor(x, 20)
    assert tensor.shape == (3, 4, 20)
    np.testing.assert_array_equal(np.asarray(merge_tensor(tensor)), matrix())
    picked = generate_tensor(x, trial_starts=[5], trial_frames=3)
    np.testing.assert_array_equal(np.asarray(picked)[0], matrix()[:, 5:8])


def test_generate_and_merge_tensor_errors():
    x = matrix()
    with pytest.raises(ShapeError, match="not a multiple of chunk_size=7"):
        generate_tensor(x, 7)
    with pytest.raises(ParameterError, match="give either chunk_size"):
        generate_tensor(x)
    with pytest.raises(ParameterError, match="give either chunk_size"):
        generate_tensor(x, 10, trial_starts=[0])
    with pytest.raises(ParameterError, match="needs trial_frames"):
        generate_tensor(x, trial_starts=[0])
    with pytest.raises(ParameterError, match=r"starting at frames \[50\]"):
        generate_tensor(x, trial_starts=[0, 50], trial_frames=20)
    with pytest.raises(ParameterError, match="chunk_size must be a positive integer"):
        generate_tensor(x, 0)
    with pytest.raises(ShapeError, match="expected a matrix"):
        generate_tensor(x[0], 10)
    with pytest.raises(ShapeError, match="expected \\(n_trials, n_rois, trial_frames\\)"):
        merge_tensor(x)


def factorized_cells(n_rois=3, lengths=(5, 8, 4), n_comp=3, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.empty((n_rois, len(lengths)), dtype=object)
    for i in range(n_rois):
        for j, n in enumerate(lengths):
            cells[i, j] = rng.normal(size=(n_comp, n))
    return cells


def test_merge_factorized_matrices_like_calscipy():
    cells = factorized_cells()
    for component in (0, 2, -1):
        got = merge_factorized_matrices(cells, component)
        assert got.shape == (3, 17) and got.dtype == np.float64
        for i in range(3):
            want = np.concatenate(cells[i], axis=1)[component, :]  # CalSciPy's per-neuron step
            np.testing.assert_array_equal(got[i], want)
    several = merge_factorized_matrices(cells, [2, 0])
    assert several.shape == (2, 3, 17)
    np.testing.assert_array_equal(several[0], merge_factorized_matrices(cells, 2))
    np.testing.assert_array_equal(several[1], merge_factorized_matrices(cells))
    as_lists = [[c for c in row] for row in cells]
    np.testing.assert_array_equal(
        merge_factorized_matrices(as_lists, 1), merge_factorized_matrices(cells, 1)
    )


def test_merge_factorized_dense_4d_and_round_trip():
    x = matrix(n_rois=3, n_frames=40)
    tensor = generate_tensor(x, 10)  # (trials, rois, frames)
    dense = np.stack([tensor.transpose(1, 0, 2), -tensor.transpose(1, 0, 2)], axis=2)
    assert dense.shape == (3, 4, 2, 10)
    np.testing.assert_array_equal(merge_factorized_matrices(dense, 0), x)
    np.testing.assert_array_equal(merge_factorized_matrices(dense, 1), -x)


def test_merge_factorized_errors():
    cells = factorized_cells()
    with pytest.raises(ParameterError, match="component=3 is out of range"):
        merge_factorized_matrices(cells, 3)
    with pytest.raises(ParameterError, match="component must be an integer"):
        merge_factorized_matrices(cells, 1.5)
    bad = factorized_cells()
    bad[1, 1] = np.ones(8)
    with pytest.raises(ShapeError, match=r"factorized\[1\]\[1\] has shape \(8,\)"):
        merge_factorized_matrices(bad)
    uneven = factorized_cells()
    uneven[2, 0] = np.ones((3, 2))
    with pytest.raises(ShapeError, match="differ in length"):
        merge_factorized_matrices(uneven)
