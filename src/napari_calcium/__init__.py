"""napari-calcium: a calcium-imaging workbench for napari and for scripts.

Everything a user types in the napari console or a script is importable from here, e.g.::

    import napari_calcium as nc
    rec = nc.simulate_recording(n_frames=600, shape=(128, 128), n_neurons=20, seed=1)
    rec.movie.shape          # (600, 128, 128), uint16
    rec.truth.labels.max()   # 20

Importing this package loads neither napari nor Qt (the public names below are imported lazily,
on first use), so scripts, the command line and dask workers stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    # synthetic ground truth
    "simulate_recording": ".core.synthetic",
    "SyntheticRecording": ".core.synthetic",
    "GroundTruth": ".core.synthetic",
    "INDICATORS": ".core.synthetic",
    # compute backend and chunking
    "array_module": ".core._backend",
    "to_host": ".core._backend",
    "gpu_available": ".core._backend",
    "iter_frame_blocks": ".core.chunking",
    # movie processing
    "median_filter": ".core.filters",
    "gaussian_filter": ".core.filters",
    "uniform_filter": ".core.filters",
    "motion_correct": ".core.registration",
    "estimate_shifts": ".core.registration",
    "apply_shifts": ".core.registration",
    "build_template": ".core.registration",
    "recentre_shifts": ".core.registration",
    "MotionCorrectionResult": ".core.registration",
    "ShiftEstimate": ".core.registration",
    "project": ".core.projections",
    "projections": ".core.projections",
    "correlation_image": ".core.projections",
    "pnr_image": ".core.projections",
    "correlation_pnr": ".core.projections",
    "CorrelationPNR": ".core.projections",
    "bin_frames": ".core.reshape",
    "bin_pixels": ".core.reshape",
    "crop": ".core.reshape",
    "Cropped": ".core.reshape",
    "detrend": ".core.detrend",
    "debleach": ".core.detrend",
    "Debleached": ".core.detrend",
    "movie_dff": ".core.detrend",
    # regions of interest
    "RoiSet": ".core.rois",
    "match_rois": ".core.matching",
    "detection_scores": ".core.matching",
    "iou_matrix": ".core.matching",
    "RoiMatch": ".core.matching",
    "DetectionScores": ".core.matching",
    "centroid_distances": ".core.matching",
    "detect_rois": ".core.detection",
    "estimate_cell_diameter": ".core.detection",
    "evaluate_rois": ".core.quality",
    "filter_rois": ".core.quality",
    "cell_masks": ".core.neuropil",
    "neuropil_masks": ".core.neuropil",
    "extraction_masks": ".core.neuropil",
    "ExtractionMasks": ".core.neuropil",
    "cell_pixel_map": ".core.neuropil",
    "neuropil_label_preview": ".core.neuropil",
    "neuropil_coverage": ".core.neuropil",
    "register_rois": ".core.sessions",
    "register_multisession": ".core.sessions",
    "SessionMatch": ".core.sessions",
    "MultiSessionMatch": ".core.sessions",
    "shift_rois": ".core.sessions",
    "estimate_fov_shift": ".core.sessions",
    "load_rois": ".io.roi_files",
    "save_traces": ".io.trace_files",
    "load_traces": ".io.trace_files",
    "save_nwb": ".io._nwb",
    "write_prairieview": ".io.bruker_write",
    "save_rois": ".io.roi_files",
    # traces
    "extract_traces": ".core.extraction",
    "TraceSet": ".core.extraction",
    "RoiTraces": ".core.extraction",
    "estimate_neuropil_coefficients": ".core.extraction",
    "compute_dff": ".core.dff",
    "DffResult": ".core.dff",
    "DFF_METHODS": ".core.dff",
    "standardized_noise": ".core.dff",
    "snr": ".core.dff",
    "baseline_robust": ".core.baseline",
    "baseline_sliding_percentile": ".core.baseline",
    "baseline_maximin": ".core.baseline",
    "baseline_percentile": ".core.baseline",
    "baseline_calscipy": ".core.baseline",
    "detrend_polynomial": ".core.trace_processing",
    # spike inference and events (issue 7)
    "deconvolve": ".core.deconvolution.api",
    "DECONVOLUTION_METHODS": ".core.deconvolution.api",
    "DeconvolutionResult": ".core.deconvolution.result",
    "oasis_ar2": ".core.deconvolution.oasis_ar2",
    "oasis_ar2_batch": ".core.deconvolution.oasis_ar2",
    "oasis_constrained": ".core.deconvolution.constrained",
    "oasis_constrained_batch": ".core.deconvolution.constrained",
    "ConstrainedDeconvolution": ".core.deconvolution.constrained",
    "fista_deconvolve": ".core.deconvolution.fista",
    "FistaResult": ".core.deconvolution.fista",
    "build_kernel": ".core.deconvolution.kernels",
    "tau_to_ar2": ".core.deconvolution.kernels",
    "ar2_to_tau": ".core.deconvolution.kernels",
    "compute_lipschitz": ".core.deconvolution.kernels",
    "convert_tau": ".core.deconvolution.kernels",
    "kernel_iir": ".core.deconvolution.kernels",
    "noise_sigma_psd": ".core.deconvolution.noise",
    "estimate_tau": ".core.deconvolution.noise",
    "smooth_activity": ".core.deconvolution.activity",
    "effective_bandwidth_hz": ".core.deconvolution.activity",
    "spikefinder_correlation": ".core.deconvolution.evaluation",
    "smoothed_correlation": ".core.deconvolution.evaluation",
    "spike_time_f1": ".core.deconvolution.evaluation",
    "bin_counts": ".core.deconvolution.evaluation",
    "identify_events": ".core.events",
    "event_onset_intensities": ".core.events",
    "inter_event_intervals": ".core.events",
    "event_counts": ".core.events",
    "calc_firing_rates": ".core.events",
    "calc_mean_firing_rates": ".core.events",
    "normalize_firing_rates": ".core.events",
    "collect_waveforms": ".core.events",
    "scale_waveforms": ".core.events",
    "generate_raster": ".core.events",
    "get_event_onset_intensities": ".core.events",
    "get_inter_event_intervals": ".core.events",
    "get_num_events": ".core.events",
    "calculate_firing_rates": ".core.events",
    "calculate_mean_firing_rates": ".core.events",
    "derivative_events": ".core.spectral",
    "hilbert_phase": ".core.spectral",
    "multitaper_spectrogram": ".core.spectral",
    "Spectrogram": ".core.spectral",
    "oasis_ar1": ".core.deconvolution.oasis",
    "oasis_ar1_batch": ".core.deconvolution.oasis",
    "tau_to_ar1": ".core.deconvolution.kinetics",
    "ar1_to_tau": ".core.deconvolution.kinetics",
    "estimate_ar1": ".core.deconvolution.kinetics",
    "perona_malik": ".core.trace_processing",
    "bandpass": ".core.trace_processing",
    "bandpass_kernel": ".core.trace_processing",
    "kernel_band_hz": ".core.trace_processing",
    "smooth": ".core.trace_processing",
    "generate_tensor": ".core.reorganize",
    "merge_tensor": ".core.reorganize",
    "merge_factorized_matrices": ".core.reorganize",
    # headless pipeline (issue 8)
    "run_pipeline": ".pipeline",
    "run_batch": ".pipeline",
    "BatchItem": ".pipeline",
    "load_results": ".pipeline",
    "load_config": ".pipeline",
    "default_config": ".pipeline",
    "PipelineConfig": ".pipeline",
    "PipelineRun": ".pipeline",
    "PipelineResults": ".pipeline",
    # opening and saving recordings
    "open_recording": ".io.open",
    "Recording": ".io.metadata",
    "RecordingMetadata": ".io.metadata",
    "convert_recording": ".io.convert",
    "load_binary": ".io.binary",
    "save_binary": ".io.binary",
    "load_images": ".io.tiff",
    "save_images": ".io.tiff",
    # CalSciPy-compatible Bruker helpers
    "determine_imaging_content": ".io.bruker_compat",
    "generate_bruker_naming_convention": ".io.bruker_compat",
    "load_bruker_tifs": ".io.bruker_compat",
    "repackage_bruker_tifs": ".io.convert",
    "errors": ".errors",
}

__all__ = ["__version__", *sorted(_LAZY)]

if TYPE_CHECKING:  # pragma: no cover - for static analysis and IDEs only
    from . import errors
    from .core._backend import array_module, gpu_available, to_host
    from .core.baseline import (
        baseline_calscipy,
        baseline_maximin,
        baseline_percentile,
        baseline_robust,
        baseline_sliding_percentile,
    )
    from .core.chunking import iter_frame_blocks
    from .core.deconvolution.activity import effective_bandwidth_hz, smooth_activity
    from .core.deconvolution.api import DECONVOLUTION_METHODS, deconvolve
    from .core.deconvolution.constrained import (
        ConstrainedDeconvolution,
        oasis_constrained,
        oasis_constrained_batch,
    )
    from .core.deconvolution.evaluation import (
        bin_counts,
        smoothed_correlation,
        spike_time_f1,
        spikefinder_correlation,
    )
    from .core.deconvolution.fista import FistaResult, fista_deconvolve
    from .core.deconvolution.kernels import (
        ar2_to_tau,
        build_kernel,
        compute_lipschitz,
        convert_tau,
        kernel_iir,
        tau_to_ar2,
    )
    from .core.deconvolution.kinetics import ar1_to_tau, estimate_ar1, tau_to_ar1
    from .core.deconvolution.noise import estimate_tau, noise_sigma_psd
    from .core.deconvolution.oasis import oasis_ar1, oasis_ar1_batch
    from .core.deconvolution.oasis_ar2 import oasis_ar2, oasis_ar2_batch
    from .core.deconvolution.result import DeconvolutionResult
    from .core.detection import detect_rois, estimate_cell_diameter
    from .core.detrend import Debleached, debleach, detrend, movie_dff
    from .core.dff import DFF_METHODS, DffResult, compute_dff, snr, standardized_noise
    from .core.events import (
        calc_firing_rates,
        calc_mean_firing_rates,
        calculate_firing_rates,
        calculate_mean_firing_rates,
        collect_waveforms,
        event_counts,
        event_onset_intensities,
        generate_raster,
        get_event_onset_intensities,
        get_inter_event_intervals,
        get_num_events,
        identify_events,
        inter_event_intervals,
        normalize_firing_rates,
        scale_waveforms,
    )
    from .core.extraction import (
        RoiTraces,
        TraceSet,
        estimate_neuropil_coefficients,
        extract_traces,
    )
    from .core.filters import gaussian_filter, median_filter, uniform_filter
    from .core.matching import (
        DetectionScores,
        RoiMatch,
        centroid_distances,
        detection_scores,
        iou_matrix,
        match_rois,
    )
    from .core.neuropil import (
        ExtractionMasks,
        cell_masks,
        cell_pixel_map,
        extraction_masks,
        neuropil_coverage,
        neuropil_label_preview,
        neuropil_masks,
    )
    from .core.projections import (
        CorrelationPNR,
        correlation_image,
        correlation_pnr,
        pnr_image,
        project,
        projections,
    )
    from .core.quality import evaluate_rois, filter_rois
    from .core.registration import (
        MotionCorrectionResult,
        ShiftEstimate,
        apply_shifts,
        build_template,
        estimate_shifts,
        motion_correct,
        recentre_shifts,
    )
    from .core.reorganize import generate_tensor, merge_factorized_matrices, merge_tensor
    from .core.reshape import Cropped, bin_frames, bin_pixels, crop
    from .core.rois import RoiSet
    from .core.sessions import (
        MultiSessionMatch,
        SessionMatch,
        estimate_fov_shift,
        register_multisession,
        register_rois,
        shift_rois,
    )
    from .core.spectral import Spectrogram, derivative_events, hilbert_phase, multitaper_spectrogram
    from .core.synthetic import INDICATORS, GroundTruth, SyntheticRecording, simulate_recording
    from .core.trace_processing import (
        bandpass,
        bandpass_kernel,
        detrend_polynomial,
        kernel_band_hz,
        perona_malik,
        smooth,
    )
    from .io._nwb import save_nwb
    from .io.binary import load_binary, save_binary
    from .io.bruker_compat import (
        determine_imaging_content,
        generate_bruker_naming_convention,
        load_bruker_tifs,
    )
    from .io.bruker_write import write_prairieview
    from .io.convert import convert_recording, repackage_bruker_tifs
    from .io.metadata import Recording, RecordingMetadata
    from .io.open import open_recording
    from .io.roi_files import load_rois, save_rois
    from .io.tiff import load_images, save_images
    from .io.trace_files import load_traces, save_traces
    from .pipeline import (
        BatchItem,
        PipelineConfig,
        PipelineResults,
        PipelineRun,
        default_config,
        load_config,
        load_results,
        run_batch,
        run_pipeline,
    )


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'napari_calcium' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
