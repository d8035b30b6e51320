"""The headless pipeline: a declarative config of steps, run resumably into an output folder.

::

    from napari_calcium.pipeline import run_pipeline, load_results
    run = run_pipeline("movie.tif", "results", "pipeline.toml")
    res = load_results("results")          # rois, traces, dff, spikes, events, summary images
    run_batch(["a.tif", "b.tif"], "results", scheduler="local")   # a dask.distributed cluster

This package loads neither napari nor Qt.
"""

from __future__ import annotations

from .cluster import BatchItem, run_batch
from .config import PipelineConfig, default_config, load_config
from .results import PipelineResults, load_results
from .steps import PipelineRun, StepRecord, run_pipeline

__all__ = [
    "BatchItem",
    "PipelineConfig",
    "PipelineResults",
    "PipelineRun",
    "StepRecord",
    "default_config",
    "load_config",
    "load_results",
    "run_batch",
    "run_pipeline",
]
