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
    "simulate_recording": ".core.synthetic.recording",
    "SyntheticRecording": ".core.synthetic.recording",
    "GroundTruth": ".core.synthetic.recording",
    "OnePhotonGroundTruth": ".core.synthetic.one_photon",
    "INDICATORS": ".core.spikes.indicators",
    # compute backend and chunking
    "array_module": ".core._backend",
    "to_host": ".core._backend",
    "gpu_available": ".core._backend",
    "iter_frame_blocks": ".core.chunking",
    # movie processing
    "median_filter": ".core.movie.filters",
    "gaussian_filter": ".core.movie.filters",
    "uniform_filter": ".core.movie.filters",
    "motion_correct": ".core.movie.motion.rigid",
    "estimate_shifts": ".core.movie.motion.rigid",
    "apply_shifts": ".core.movie.motion.shifting",
    "build_template": ".core.movie.motion.template",
    "recentre_shifts": ".core.movie.motion.shifting",
    "MotionCorrectionResult": ".core.movie.motion.rigid",
    "ShiftEstimate": ".core.movie.motion.rigid",
    "project": ".core.movie.projections",
    "projections": ".core.movie.projections",
    "correlation_image": ".core.movie.summary_images",
    "pnr_image": ".core.movie.summary_images",
    "correlation_pnr": ".core.movie.summary_images",
    "CorrelationPNR": ".core.movie.summary_images",
    "bin_frames": ".core.movie.reshape",
    "bin_pixels": ".core.movie.reshape",
    "crop": ".core.movie.reshape",
    "Cropped": ".core.movie.reshape",
    "detrend": ".core.movie.detrend",
    "debleach": ".core.movie.detrend",
    "Debleached": ".core.movie.detrend",
    "movie_dff": ".core.movie.detrend",
    "detect_corrupted_frames": ".core.movie.corrupt_frames",
    "repair_corrupted_frames": ".core.movie.corrupt_frames",
    "CorruptedFrames": ".core.movie.corrupt_frames",
    # regions of interest
    "RoiSet": ".core.rois.roiset",
    "match_rois": ".core.rois.matching",
    "detection_scores": ".core.rois.matching",
    "iou_matrix": ".core.rois.matching",
    "RoiMatch": ".core.rois.matching",
    "DetectionScores": ".core.rois.matching",
    "centroid_distances": ".core.rois.matching",
    "detect_rois": ".core.rois.detection.detect",
    "estimate_cell_diameter": ".core.rois.detection.detect",
    "detect_rois_one_photon": ".core.rois.detection.one_photon",
    "one_photon_seed_image": ".core.rois.detection.one_photon",
    "evaluate_rois": ".core.rois.quality",
    "filter_rois": ".core.rois.quality",
    "cell_masks": ".core.rois.neuropil",
    "neuropil_masks": ".core.rois.neuropil",
    "extraction_masks": ".core.rois.neuropil",
    "ExtractionMasks": ".core.rois.neuropil",
    "cell_pixel_map": ".core.rois.neuropil",
    "neuropil_label_preview": ".core.rois.neuropil",
    "neuropil_coverage": ".core.rois.neuropil",
    "register_rois": ".core.rois.sessions",
    "register_multisession": ".core.rois.sessions",
    "SessionMatch": ".core.rois.sessions",
    "MultiSessionMatch": ".core.rois.sessions",
    "shift_rois": ".core.rois.sessions",
    "estimate_fov_shift": ".core.rois.sessions",
    "load_rois": ".io.roi_files",
    "save_traces": ".io.trace_files",
    "load_traces": ".io.trace_files",
    "save_nwb": ".io._nwb",
    "write_prairieview": ".io.bruker.write",
    "save_rois": ".io.roi_files",
    # traces
    "extract_traces": ".core.traces.extraction",
    "TraceSet": ".core.traces.extraction",
    "RoiTraces": ".core.traces.extraction",
    "estimate_neuropil_coefficients": ".core.traces.extraction",
    "compute_dff": ".core.traces.dff",
    "DffResult": ".core.traces.dff",
    "DFF_METHODS": ".core.traces.dff",
    "standardized_noise": ".core.traces.dff",
    "snr": ".core.traces.dff",
    "baseline_robust": ".core.traces.baseline",
    "baseline_sliding_percentile": ".core.traces.baseline",
    "baseline_maximin": ".core.traces.baseline",
    "baseline_percentile": ".core.traces.baseline",
    "baseline_calscipy": ".core.traces.baseline",
    "detrend_polynomial": ".core.traces.processing",
    # spike inference and events (issue 7)
    "deconvolve": ".core.spikes.deconvolution.api",
    "DECONVOLUTION_METHODS": ".core.spikes.deconvolution.api",
    "DeconvolutionResult": ".core.spikes.deconvolution.result",
    "oasis_ar2": ".core.spikes.deconvolution.oasis_ar2",
    "oasis_ar2_batch": ".core.spikes.deconvolution.oasis_ar2",
    "oasis_constrained": ".core.spikes.deconvolution.constrained",
    "oasis_constrained_batch": ".core.spikes.deconvolution.constrained",
    "ConstrainedDeconvolution": ".core.spikes.deconvolution.constrained",
    "fista_deconvolve": ".core.spikes.deconvolution.fista",
    "FistaResult": ".core.spikes.deconvolution.fista",
    "build_kernel": ".core.spikes.deconvolution.kernels",
    "tau_to_ar2": ".core.spikes.deconvolution.kernels",
    "ar2_to_tau": ".core.spikes.deconvolution.kernels",
    "compute_lipschitz": ".core.spikes.deconvolution.kernels",
    "convert_tau": ".core.spikes.deconvolution.kernels",
    "kernel_iir": ".core.spikes.deconvolution.kernels",
    "noise_sigma_psd": ".core.spikes.deconvolution.noise",
    "estimate_tau": ".core.spikes.deconvolution.noise",
    "smooth_activity": ".core.spikes.deconvolution.activity",
    "effective_bandwidth_hz": ".core.spikes.deconvolution.activity",
    "spikefinder_correlation": ".core.spikes.deconvolution.evaluation",
    "smoothed_correlation": ".core.spikes.deconvolution.evaluation",
    "spike_time_f1": ".core.spikes.deconvolution.evaluation",
    "bin_counts": ".core.spikes.deconvolution.evaluation",
    "identify_events": ".core.spikes.events",
    "identify_events_calscipy": ".core.spikes.events",
    "detect_events": ".core.spikes.event_detection",
    "EventList": ".core.spikes.event_detection",
    "event_onset_intensities": ".core.spikes.events",
    "inter_event_intervals": ".core.spikes.events",
    "event_counts": ".core.spikes.events",
    "calc_firing_rates": ".core.spikes.events",
    "calc_mean_firing_rates": ".core.spikes.events",
    "normalize_firing_rates": ".core.spikes.events",
    "collect_waveforms": ".core.spikes.events",
    "scale_waveforms": ".core.spikes.events",
    "generate_raster": ".core.spikes.events",
    "get_event_onset_intensities": ".core.spikes.events",
    "get_inter_event_intervals": ".core.spikes.events",
    "get_num_events": ".core.spikes.events",
    "calculate_firing_rates": ".core.spikes.events",
    "calculate_mean_firing_rates": ".core.spikes.events",
    "derivative_events": ".core.spikes.spectral",
    "hilbert_phase": ".core.spikes.spectral",
    "multitaper_spectrogram": ".core.spikes.spectral",
    "Spectrogram": ".core.spikes.spectral",
    "oasis_ar1": ".core.spikes.deconvolution.oasis",
    "oasis_ar1_batch": ".core.spikes.deconvolution.oasis",
    "tau_to_ar1": ".core.spikes.deconvolution.kinetics",
    "ar1_to_tau": ".core.spikes.deconvolution.kinetics",
    "estimate_ar1": ".core.spikes.deconvolution.kinetics",
    "perona_malik": ".core.traces.processing",
    "bandpass": ".core.traces.processing",
    "bandpass_kernel": ".core.traces.processing",
    "kernel_band_hz": ".core.traces.processing",
    "smooth": ".core.traces.processing",
    "generate_tensor": ".core.traces.reorganize",
    "merge_tensor": ".core.traces.reorganize",
    "merge_factorized_matrices": ".core.traces.reorganize",
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
    "open_miniscope": ".io.miniscope",
    "write_miniscope": ".io.miniscope",
    "open_video": ".io.video",
    "open_nwb": ".io.nwb_input",
    "list_nwb_series": ".io.nwb_input",
    # CalSciPy-compatible Bruker helpers
    "determine_imaging_content": ".io.bruker.calscipy",
    "generate_bruker_naming_convention": ".io.bruker.calscipy",
    "load_bruker_tifs": ".io.bruker.calscipy",
    "repackage_bruker_tifs": ".io.convert",
    "errors": ".errors",
}

__all__ = ["__version__", *sorted(_LAZY)]

if TYPE_CHECKING:  # pragma: no cover - for static analysis and IDEs only
    from . import errors
    from .core._backend import array_module, gpu_available, to_host
    from .core.chunking import iter_frame_blocks
    from .core.movie.corrupt_frames import (
        CorruptedFrames,
        detect_corrupted_frames,
        repair_corrupted_frames,
    )
    from .core.movie.detrend import Debleached, debleach, detrend, movie_dff
    from .core.movie.filters import gaussian_filter, median_filter, uniform_filter
    from .core.movie.motion.rigid import (
        MotionCorrectionResult,
        ShiftEstimate,
        apply_shifts,
        build_template,
        estimate_shifts,
        motion_correct,
        recentre_shifts,
    )
    from .core.movie.projections import project, projections
    from .core.movie.reshape import Cropped, bin_frames, bin_pixels, crop
    from .core.movie.summary_images import (
        CorrelationPNR,
        correlation_image,
        correlation_pnr,
        pnr_image,
    )
    from .core.rois.detection.detect import detect_rois, estimate_cell_diameter
    from .core.rois.detection.one_photon import detect_rois_one_photon, one_photon_seed_image
    from .core.rois.matching import (
        DetectionScores,
        RoiMatch,
        centroid_distances,
        detection_scores,
        iou_matrix,
        match_rois,
    )
    from .core.rois.neuropil import (
        ExtractionMasks,
        cell_masks,
        cell_pixel_map,
        extraction_masks,
        neuropil_coverage,
        neuropil_label_preview,
        neuropil_masks,
    )
    from .core.rois.quality import evaluate_rois, filter_rois
    from .core.rois.roiset import RoiSet
    from .core.rois.sessions import (
        MultiSessionMatch,
        SessionMatch,
        estimate_fov_shift,
        register_multisession,
        register_rois,
        shift_rois,
    )
    from .core.spikes.deconvolution.activity import effective_bandwidth_hz, smooth_activity
    from .core.spikes.deconvolution.api import DECONVOLUTION_METHODS, deconvolve
    from .core.spikes.deconvolution.constrained import (
        ConstrainedDeconvolution,
        oasis_constrained,
        oasis_constrained_batch,
    )
    from .core.spikes.deconvolution.evaluation import (
        bin_counts,
        smoothed_correlation,
        spike_time_f1,
        spikefinder_correlation,
    )
    from .core.spikes.deconvolution.fista import FistaResult, fista_deconvolve
    from .core.spikes.deconvolution.kernels import (
        ar2_to_tau,
        build_kernel,
        compute_lipschitz,
        convert_tau,
        kernel_iir,
        tau_to_ar2,
    )
    from .core.spikes.deconvolution.kinetics import ar1_to_tau, estimate_ar1, tau_to_ar1
    from .core.spikes.deconvolution.noise import estimate_tau, noise_sigma_psd
    from .core.spikes.deconvolution.oasis import oasis_ar1, oasis_ar1_batch
    from .core.spikes.deconvolution.oasis_ar2 import oasis_ar2, oasis_ar2_batch
    from .core.spikes.deconvolution.result import DeconvolutionResult
    from .core.spikes.event_detection import EventList, detect_events
    from .core.spikes.events import (
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
        identify_events_calscipy,
        inter_event_intervals,
        normalize_firing_rates,
        scale_waveforms,
    )
    from .core.spikes.spectral import (
        Spectrogram,
        derivative_events,
        hilbert_phase,
        multitaper_spectrogram,
    )
    from .core.synthetic.one_photon import OnePhotonGroundTruth
    from .core.synthetic.recording import (
        INDICATORS,
        GroundTruth,
        SyntheticRecording,
        simulate_recording,
    )
    from .core.traces.baseline import (
        baseline_calscipy,
        baseline_maximin,
        baseline_percentile,
        baseline_robust,
        baseline_sliding_percentile,
    )
    from .core.traces.dff import DFF_METHODS, DffResult, compute_dff, snr, standardized_noise
    from .core.traces.extraction import (
        RoiTraces,
        TraceSet,
        estimate_neuropil_coefficients,
        extract_traces,
    )
    from .core.traces.processing import (
        bandpass,
        bandpass_kernel,
        detrend_polynomial,
        kernel_band_hz,
        perona_malik,
        smooth,
    )
    from .core.traces.reorganize import generate_tensor, merge_factorized_matrices, merge_tensor
    from .io._nwb import save_nwb
    from .io.binary import load_binary, save_binary
    from .io.bruker.calscipy import (
        determine_imaging_content,
        generate_bruker_naming_convention,
        load_bruker_tifs,
    )
    from .io.bruker.write import write_prairieview
    from .io.convert import convert_recording, repackage_bruker_tifs
    from .io.metadata import Recording, RecordingMetadata
    from .io.miniscope import open_miniscope, write_miniscope
    from .io.nwb_input import list_nwb_series, open_nwb
    from .io.open import open_recording
    from .io.roi_files import load_rois, save_rois
    from .io.tiff import load_images, save_images
    from .io.trace_files import load_traces, save_traces
    from .io.video import open_video
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
