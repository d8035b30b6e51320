"""detect_events on real ground truth held out from the tuning (issue 17).

Cell-attached spikes recorded with two-photon imaging: CASCADE sets DS07 (zebrafish dD, GCaMP6f,
30 Hz), DS08 (zebrafish OB, GCaMP6f, 30 Hz), DS13 (mouse V1, GCaMP6s, 141-158 Hz) in
``../shared/data/cascade_groundtruth_dev`` and spikefinder 5 (GCaMP6s) and 6 (GCaMP5k?, both
resampled to 100 Hz) in ``../shared/data/spikefinder_groundtruth``. The defaults of
``detect_events`` were chosen on the *other* four sets (DS06, DS11, DS31, spikefinder 4); these
five were not looked at for it. Native frame rates, whole recordings, all neurons.

Goals (issue 17), per dataset: at most 0.1 false events/s in silent stretches (≥ 5 s without a
spike), and at least 50 % of isolated spikes (no other spike within 1 s) detected. The recall goal
is not reachable where a single spike barely moves the trace: DS08, SF5 and SF6 (their single-spike
response is below ~2 σ of the detection statistic; no threshold under 0.1 false events/s reaches
50 %, see docs/spikes.md); those are strict xfails, so an improvement shows up.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from conftest import spike_groundtruth, spike_groundtruth_available
from napari_calcium.core.spikes.event_detection import (
    detect_events,
    score_events,
    summarize_scores,
)
from napari_calcium.core.spikes.events import identify_events

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
CASCADE = SHARED / "cascade_groundtruth_dev"
SPIKEFINDER = SHARED / "spikefinder_groundtruth"
HELD_OUT = ("DS07", "DS08", "DS13", "SF5", "SF6")
MAX_FALSE_RATE_HZ = 0.1
MIN_ISOLATED_RECALL = 0.5
BELOW_NOISE = "single spikes are below the noise here (docs/spikes.md, 'Events that mean activity')"


@pytest.fixture(scope="module")
def scores():
    """``{dataset: {"new": summary, "old": summary}}`` for the held-out sets found here."""
    out = {}
    for name in HELD_OUT:
        if not spike_groundtruth_available(name):
            continue
        recs = spike_groundtruth(name)
        per = {"new": [], "old": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for x, t, fs, spikes, _ in recs:
                for key, ev in (
                    ("new", detect_events(x, frame_rate_hz=fs)[0]),
                    ("old", identify_events(x, frame_rate_hz=fs)[0]),
                ):
                    per[key].append(score_events(t[ev], spikes, start_s=t[0], stop_s=t[-1]))
        out[name] = {k: summarize_scores(v) for k, v in per.items()}
    return out


def _get(scores, name):
    """A held-out set's scores; missing ground truth fails (the data ships with CI)."""
    assert name in scores, f"no ground truth for {name} in {SHARED}"
    return scores[name]


@pytest.mark.parametrize("name", HELD_OUT)
def test_false_events_in_silent_stretches(scores, name):
    s = _get(scores, name)["new"]
    assert s["silent_s"] > 40  # enough silent time to measure (SF5 has the least: 45 s)
    assert s["false_rate_hz"] <= MAX_FALSE_RATE_HZ, s


@pytest.mark.parametrize(
    "name",
    [
        "DS07",
        "DS13",
        pytest.param("DS08", marks=pytest.mark.xfail(strict=True, reason=BELOW_NOISE)),
        pytest.param("SF5", marks=pytest.mark.xfail(strict=True, reason=BELOW_NOISE)),
        pytest.param("SF6", marks=pytest.mark.xfail(strict=True, reason=BELOW_NOISE)),
    ],
)
def test_isolated_spikes_detected(scores, name):
    s = _get(scores, name)["new"]
    assert s["isolated"] >= 40
    assert s["isolated_recall"] >= MIN_ISOLATED_RECALL, s
    assert s["burst_recall"] >= 0.8, s


def test_calscipy_rule_fails_the_false_rate_goal(scores):
    # the same goal on the old defaults: 0.25-0.29 false events/s on four of the five sets
    found = [n for n in HELD_OUT if n in scores]
    assert found == list(HELD_OUT), f"held-out ground truth missing in {SHARED}"
    failing = [n for n in found if scores[n]["old"]["false_rate_hz"] > MAX_FALSE_RATE_HZ]
    assert len(failing) >= len(found) - 1, {n: scores[n]["old"] for n in found}
    for n in found:  # and the new rule is below the old everywhere
        assert scores[n]["new"]["false_rate_hz"] < scores[n]["old"]["false_rate_hz"]
