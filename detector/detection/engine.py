"""The detection engine: IQ blocks (or spectra) → frames → emissions → tracks → events.

Size: about 530 lines, kept whole: :class:`DetectionEngine` is one per-run state machine (framing,
detection, tracking, event reporting) whose parts share its state; the stages it drives live in
their own modules (``_emissions``, ``_tracking``, ``_missing``, ``_freq_error``, ``_jamming``,
``_integration``: the frames summed over 4–36 s windows for emissions too weak for any one frame).

Glue between the sources and the pure detection code; used by ``replay``, ``survey`` (framing
only), the simulated demo and the monitor. It owns the per-run state (frame stream, tracker,
aligned baseline cache) explicitly; it reads no files and no clock. The ``missing`` check is
:mod:`detector.detection._missing`, the event of a track :mod:`detector.detection._track_event`.

Events are typed (:mod:`detector.detection.events`): a :class:`TrackEvent` per ``new``, ``update``
or ``end`` of a track, a :class:`MissingEvent` per surveyed station gone silent and a
:class:`JammingEvent` per jamming episode (:mod:`detector.detection._jamming`), a
:class:`DeclaredJammerEvent` per episode of a declared jammer off in its session (or on outside it,
:mod:`detector.detection._declared_jammers`); their
:meth:`~TrackEvent.to_json` is the JSON line of ``examwatch replay --jsonl``::

    {"event": "new"|"update"|"end"|"missing"|"jamming"|"overload"|"declared_jammer", "track_id", "alert", "center_hz", "bandwidth_hz",
     "first_seen_s", "last_seen_s", "peak_dbfs", "snr_db", "excess_db", "classification",
     "bursts", "reasons", "location", "peak_dbm", ..., "integration_s"}

``peak_dbm`` is the peak in dBm when the calibration profile has a power table for the tuner's
gain (null otherwise); detection itself always works in dBFS.

Frames cut from NaN/inf samples (flagged by the frame stream, or spectra with
``meta["nonfinite"]``) are left out of detection and counted in ``frames_excluded``: no CFAR floor,
``missing``, ``jamming`` or frequency-error estimate sees them, and for the tracker and the decision
they are a gap with no observation (:meth:`~detector.detection.Tracker.blind`), not silence. When no frame is flagged
this costs one ``any()`` over the block's few frame flags.

``update`` is emitted when a track's alert state or class changes, when its center moves by more
than half its bandwidth (at least ``moved_min_hz``) since the last event, and at most every
``update_interval_s`` while it is active; ``end`` holds the final span.
"""

from __future__ import annotations

import logging

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable, Literal

import numpy as np

from detector.detection import (
    DetectionCache,
    DecisionConfig,
    DetectionConfig,
    ExamSession,
    FrameResult,
    Track,
    Tracker,
    TrackerConfig,
    Whitelist,
    classify_track,
    decide,
    detect_stack,
    pfa_for_alert_rate,
)
from detector.detection._byproducts import ByproductConfig, artefact_gate
from detector.detection._declared_jammers import DeclaredJammer, DeclaredJammerConfig, DeclaredJammers, excluded_bands
from detector.detection._integration import IntegrationConfig, IntegrationStage, integration_decide
from detector.detection._jamming import JammingConfig, JammingMonitor
from detector.detection._overload import OverloadConfig, OverloadMonitor, overload_stage, rails_share
from detector.detection._missing import MissingStations
from detector.detection._track_event import center_moved, track_event
from detector.detection._freq_error import FrequencyErrorConfig, FrequencyErrorEstimator
from detector.detection.events import DetectionEvent, TrackEvent
from detector.dsp import FrameStream, default_nfft, make_plan, power_to_db
from detector.core.types import IQBlock, Spectrum

log = logging.getLogger("examwatch.detection")

__all__ = ["EngineConfig", "DetectionEngine", "default_nfft", "track_event"]  # default_nfft: from dsp


@dataclass(frozen=True)
class EngineConfig:
    """Framing, thresholds and rules of a detection run.

    ``frame_s`` 10 ms frames keep a 1–2 ms burst visible (it fills ≥ 10 % of a frame);
    ``track_fa_per_hour`` is the target of false *tracks* per hour from noise (every frame's
    decision over every bin, THEORY §1.2 item 8): it sets the per-bin, per-frame Pfa, so that a
    noise bin opening a track is rarer than a real burst; ``fa_per_hour`` is the target of false
    *alerts* under the K-of-M rule, which is at least as strict. The stricter of the two Pfa wins.
    """

    bin_hz: float = 1000.0
    nfft: int | None = None
    frame_s: float = 0.01
    fa_per_hour: float = 0.1
    track_fa_per_hour: float = 1.0
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    update_interval_s: float = 5.0
    #: an ``update`` also goes out when a track's center moves by more than this or half its
    #: bandwidth (last reported or now), whichever is larger
    moved_min_hz: float = 5000.0
    #: FFT of the framed PSD: "scipy" (default: bit-for-bit repeatable replays), "pyfftw", or
    #: "auto" (pyFFTW when installed; the monitor's choice, where speed matters more than repeating
    #: a run to the last bit: FFTW's measured plans may round differently from run to run)
    fft_backend: str = "scipy"
    missing_after_s: float = 30.0
    missing_occupancy: float = 0.9
    #: a surveyed steady emission (occupancy ≥ 0.5) at most this far over its p99 is taken out of
    #: the spectrum that tracks hold for classification (the alert rule's 3 dB over p99)
    explained_margin_db: float = 3.0
    #: the receiver's frequency error estimated from the baseline's strong steady stations (or the
    #: whitelisted channels) and corrected (``detection._freq_error``); None: not estimated
    frequency_error: FrequencyErrorConfig | None = field(default_factory=FrequencyErrorConfig)
    #: seconds of stream time between two estimates of the frequency error (the first comes with the
    #: first stack; a crystal drifts a few ppm over minutes of warm-up, far less in 5 s)
    frequency_error_interval_s: float = 5.0
    #: ``jamming`` (``detection._jamming``): the noise floor risen by ≥ ``jam_rise_db`` over
    #: ≥ ``jam_band_share`` of the band while the surveyed strong stations changed by at most the
    #: rise less ``jam_margin_db``, for ``jam_after_s`` of stream time; off with ``jam_after_s`` None
    jam_rise_db: float = 6.0
    jam_band_share: float = 0.5
    jam_margin_db: float = 4.0
    jam_after_s: float | None = 5.0
    #: receiver overload (``detection._overload``; None: the rails share is not measured and the
    #: receiver never counts as overloaded) and by-products of stronger emissions marked as
    #: artefacts (``detection._byproducts``; None: not marked)
    overload: OverloadConfig | None = field(default_factory=OverloadConfig)
    byproducts: ByproductConfig | None = field(default_factory=ByproductConfig)
    #: long integration for persistent emissions (``detection._integration``); None: the frames only
    integration: IntegrationConfig | None = field(default_factory=IntegrationConfig)


class DetectionEngine:
    """Runs detection and tracking over a timeline of IQ blocks or spectra.

    Parameters
    ----------
    config : EngineConfig
    baseline : SiteBaseline, optional
        Survey of the site; without it detection is CFAR-only.
    whitelist : Whitelist, optional
    site : str, optional
    sessions : tuple of ExamSession
        Exam sessions in timeline seconds (raise the score of tracks starting inside them).
    wall_start : datetime, optional
        UTC time of timeline second 0 (adds ``*_utc`` fields to events).
    locate : callable, optional
        ``locate(track) -> dict | None`` giving a ``LocationEstimate`` dict for events.
    jammers : tuple of DeclaredJammer
        The site's exam-room jammers (:mod:`detector.detection._declared_jammers`): their bands are
        expected to be jammed in their sessions (no alert, no ``jamming``), off is an alert.
    track_prefix : str
        Start of this engine's track ids (``T00001``…); a monitor with several receivers gives
        each receiver's engine its own (``T1-00001``…), so that ids stay unique in one run.
    """

    def __init__(
        self,
        config: EngineConfig = EngineConfig(),
        *,
        baseline=None,
        whitelist: Whitelist | None = None,
        site: str | None = None,
        sessions: tuple[ExamSession, ...] = (),
        wall_start: datetime | None = None,
        locate: Callable[[Track], dict | None] | None = None,
        correct: Callable[[IQBlock], IQBlock] | None = None,
        jammers: tuple[DeclaredJammer, ...] = (),
        track_prefix: str = "T",
    ) -> None:
        self.config = config
        self.baseline = baseline
        self.whitelist = whitelist
        self.site = site
        self.sessions = tuple(sessions)
        self.wall_start = wall_start
        self.locate = locate
        self.correct = correct  # calibration of the dongle's samples (detector.app.correction)
        self.tracker = Tracker(config.tracker, id_prefix=track_prefix)
        self.frames_processed = 0
        #: frames left out of detection: cut from NaN/inf samples (zero-filled by the frame stream,
        #: their power is low by the share of zeroed samples); not in ``frames_processed``
        self.frames_excluded = 0
        self.flagged_bins = 0
        self.tested_bins = 0
        self.cfar_flagged_bins = 0
        self.time_offset_s = 0.0
        self._last: tuple | None = None  # what last_spectrum and last_result are built from, on demand
        self._last_built: tuple | None = None
        self.gain_db: float | None = None  # tuner gain of the last frame (dB), for dBm conversion
        self._stream: FrameStream | None = None
        self._stream_key: tuple[float, float] | None = None
        self._aligned: dict = {}
        # track id → (time s, class, center Hz, bandwidth Hz) of its last reported event
        self._reported: dict[str, tuple[float, str, float, float]] = {}
        self._missing_stations = MissingStations()  # surveyed stations gone silent: state and strong-station runs
        #: a floor risen while the surveyed carriers kept their levels (None: off)
        self.jamming = (JammingMonitor(JammingConfig(
            rise_db=config.jam_rise_db, band_share=config.jam_band_share, margin_db=config.jam_margin_db,
            after_s=config.jam_after_s, station_occupancy=config.missing_occupancy,
            dc_half_width_hz=config.detection.dc_half_width_hz, edge_crop=config.detection.edge_crop,
            exclude_hz=excluded_bands(tuple(jammers))))
            if config.jam_after_s is not None else None)
        #: the site's declared exam-room jammers: state, rules, in-band suppression (None: none declared)
        self.declared_jammers = (DeclaredJammers(tuple(jammers), self.sessions, DeclaredJammerConfig(
            dc_half_width_hz=config.detection.dc_half_width_hz, edge_crop=config.detection.edge_crop))
            if jammers else None)
        self._gain_offsets: np.ndarray | None = None  # the last stack's per-frame gain offsets (dB)
        self.overload = OverloadMonitor(config.overload or OverloadConfig())  # ADC rails / near full scale (``/health`` → overload)
        self._cache: dict = {}  # per-run derived values: Pfa per grid, detection configs, steady bins
        self._detection_cache = DetectionCache()  # per-grid and per-baseline constants of detect_stack
        #: the receiver's frequency error, estimated and corrected while monitoring (None: off)
        self.frequency_error = (FrequencyErrorEstimator(config.frequency_error)
                                if config.frequency_error is not None else None)
        self._fe_next_s = -np.inf
        self._fe_advised = False
        self.all_tracks: dict[str, Track] = {}
        self._dbm_cache: tuple[Spectrum, Spectrum] | None = None  # (dBFS frame, its dBm copy)
        self.max_tracks_kept = 2000
        #: running sums of the frames over the integration scales, and their tests (None: off)
        self.integration = IntegrationStage(config.integration) if config.integration is not None else None

    # --- framing -------------------------------------------------------------------------------
    def _ensure_stream(self, block: IQBlock) -> FrameStream:
        key = (block.sample_rate_hz, block.center_hz)
        if self._stream is None or self._stream_key != key or block.retuned:
            nfft = self.config.nfft or default_nfft(block.sample_rate_hz, self.config.bin_hz)
            if self._stream is None or self._stream.plan.sample_rate_hz != block.sample_rate_hz or self._stream.plan.nfft != nfft:
                plan = make_plan(block.sample_rate_hz, nfft=nfft)
                spf = max(1, int(round(self.config.frame_s * block.sample_rate_hz / plan.step)))
                self._stream = FrameStream(plan, spf, backend=self.config.fft_backend)
            else:
                self._stream.reset()
            self._stream_key = key
            self._block_t0 = None
        return self._stream

    def frames_of_block(self, block: IQBlock) -> list[Spectrum]:
        """Cut a block into :class:`Spectrum` frames (dBFS), times on the engine's timeline. A frame
        one of whose segments held a NaN/inf sample has ``meta["nonfinite"] = True`` (the baseline
        builder leaves it out)."""
        if self.correct is not None:
            block = self.correct(block)
        stream = self._ensure_stream(block)
        carried = stream._carry.size  # noqa: SLF001 - samples before this block's first
        frames, _ = stream.push(block.samples)
        plan = stream.plan
        t_first = self.time_offset_s + block.offset_s - carried / block.sample_rate_hz
        freqs = block.center_hz + plan.offsets_hz
        out = []
        db = power_to_db(frames)
        flagged = stream.last_flagged  # frames whose segments held NaN/inf samples (zeroed by the stream)
        over = (self.config.overload is not None and frames.shape[0] > 0
                and rails_share(block.samples) >= self.config.overload.on_share)
        for i in range(frames.shape[0]):
            out.append(Spectrum(freqs_hz=freqs, power=db[i], rbw_hz=plan.rbw_hz, unit="dBFS",
                                offset_s=t_first + i * stream.frame_s, duration_s=stream.frame_s,
                                n_looks=stream.looks, center_hz=block.center_hz, position=block.position,
                                meta={**({"nonfinite": True} if flagged[i] else {}), **({"overload": True} if over else {})}))
        return out

    # --- detection -----------------------------------------------------------------------------
    def _pfa(self, n_bins: int, frame_s: float) -> float:
        key = (n_bins, round(frame_s, 9))
        if key not in self._cache:
            c = self.config
            fph = 3600.0 / frame_s
            self._cache[key] = min(
                pfa_for_alert_rate(c.fa_per_hour, n_bins=n_bins, frames_per_hour=fph, k=c.decision.k, m=c.decision.m),
                pfa_for_alert_rate(c.track_fa_per_hour, n_bins=n_bins, frames_per_hour=fph, k=1, m=1),
            )
        return self._cache[key]

    def _aligned_for(self, freqs_hz: np.ndarray, rbw_hz: float):
        """The baseline on the grid ``freqs_hz`` (reported frequencies), shifted by the receiver's
        error against the survey when it is known (cached per grid and shift)."""
        if self.baseline is None:
            return None
        shift = 0.0
        est = self.frequency_error
        if est is not None and (est.baseline.known or est.whitelist.known):
            shift = round(est.baseline_shift_hz(float(freqs_hz[freqs_hz.size // 2])), 1)
        key = (freqs_hz.size, float(freqs_hz[0]), float(rbw_hz), shift)
        if key not in self._aligned:
            from detector.baseline import align

            a = align(self.baseline, freqs_hz + shift if shift else freqs_hz, rbw_hz)
            self._aligned[key] = replace(a, freqs_hz=freqs_hz) if shift else a
        return self._aligned[key]

    @property
    def gain_offset_db(self) -> float | None:
        """The level step common to the baseline-covered bins in the last stack (dB, its median over
        the frames), compensated as a gain change; None without a baseline or before a stack."""
        g = self._gain_offsets
        return None if g is None or g.size == 0 else round(float(np.median(g)), 2)

    @property
    def last_spectrum(self) -> Spectrum | None:
        """The last frame processed (dBFS, or the unit of the input spectra); None before the first.
        Built on first access after each stack, so that a pipeline nobody watches does not pay for it."""
        self._build_last()
        return self._last_built[0] if self._last_built else None

    @property
    def last_result(self) -> FrameResult | None:
        """Detection result of :attr:`last_spectrum` (emissions, floor, rejections); None before the first."""
        self._build_last()
        return self._last_built[1] if self._last_built else None

    def _build_last(self) -> None:
        src = self._last
        if src is None or (self._last_built is not None and self._last_built[2] is src):
            return
        freqs, db, lin, res, kw = src
        last_db = db[-1] if db is not None else power_to_db(lin[-1])
        self._last_built = (Spectrum(freqs_hz=freqs, power=last_db, **kw), res.frame(-1), src)

    def process_block(self, block: IQBlock) -> list[DetectionEvent]:
        """Frames of one IQ block through detection and tracking; returns the events.

        The block's frames are tested as one stack (vectorised); only frames with flagged bins
        reach the tracker, and open tracks are aged once per block."""
        # the raw samples: before a calibration moves them off the rails
        share = rails_share(block.samples) if self.config.overload is not None else None
        if self.correct is not None:
            block = self.correct(block)
        stream = self._ensure_stream(block)
        carried = stream._carry.size  # noqa: SLF001 - samples before this block's first
        frames, _ = stream.push(block.samples)
        if frames.shape[0] == 0:
            return []
        plan = stream.plan
        t_first = self.time_offset_s + block.offset_s - carried / block.sample_rate_hz
        times = None
        flagged = stream.last_flagged
        if flagged.any():  # the fast path pays this check only
            frames, times = self._exclude(flagged, frames, t_first, stream.frame_s)
            if frames.shape[0] == 0:
                return []
        return self._process_stack(block.center_hz + plan.offsets_hz, None, t_first, stream.frame_s,
                                   stream.looks, block.center_hz, plan.rbw_hz, block.position, frames, gain_db=block.gain_db,
                                   times=times, position_res_s=block.duration_s, rails=share,
                                   sample_rate_hz=block.sample_rate_hz)

    def _exclude(self, flagged: np.ndarray, frames: np.ndarray, t_first: float, frame_s: float):
        """The frames not ``flagged`` (bool (n,)) and their start times (s, float64 (k,)); the flagged
        ones are counted in ``frames_excluded`` and given to the tracker as blind time."""
        self.frames_excluded += int(np.count_nonzero(flagged))
        d = np.diff(np.concatenate(([0], flagged.view(np.int8), [0])))
        for i0, i1 in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
            self.tracker.blind(t_first + i0 * frame_s, t_first + i1 * frame_s)
        keep = np.flatnonzero(~flagged)
        return frames[keep], t_first + keep * frame_s

    def process_spectrum(self, spec: Spectrum) -> list[DetectionEvent]:
        """One frame through detection, tracking and decisions; returns the events. A frame with
        ``meta["nonfinite"]`` (cut from NaN/inf samples) is counted in ``frames_excluded`` and is
        blind time for the tracker, not detected."""
        if spec.meta.get("nonfinite"):
            self.frames_excluded += 1
            self.tracker.blind(spec.offset_s, spec.offset_s + (spec.duration_s or self.config.frame_s))
            return []
        return self._process_stack(spec.freqs_hz, np.asarray(spec.power, dtype=np.float32)[None, :], spec.offset_s,
                                   spec.duration_s or self.config.frame_s, spec.n_looks, spec.center_hz, spec.rbw_hz,
                                   spec.position, None, unit=spec.unit, start=spec.start, gain_db=spec.meta.get("gain_db"),
                                   position_res_s=spec.duration_s)

    def _process_stack(self, freqs, db, t_first, frame_s, looks, center_hz, rbw_hz, position, lin=None, *,
                       unit="dBFS", start=None, gain_db=None, times=None, position_res_s=None, rails=None,
                       sample_rate_hz=None, flagged=None) -> list[DetectionEvent]:
        """Detection over a stack of frames on one grid; frame ``i`` starts at ``t_first + i·frame_s``
        (s), or at ``times[i]`` when frames were left out (:meth:`_exclude`). ``rails``: the block's
        share of I/Q values at the ADC rails (IQ blocks only; the overload stage runs then).
        ``flagged``: frames the integration stage must leave out (None: none; the IQ path has
        removed them already)."""
        cfg = self.config
        self.gain_db = gain_db
        if self.frequency_error is not None and (self.baseline is not None or self.whitelist is not None):
            freqs, center_hz = self._correct_frequency(freqs, db, lin, center_hz, rbw_hz, t_first)
        det_cfg = cfg.detection
        pfa = self._pfa(freqs.size, frame_s)
        if det_cfg.pfa_bin != pfa:
            key = ("det_cfg", pfa)
            if key not in self._cache:
                self._cache[key] = replace(det_cfg, pfa_bin=pfa)
            det_cfg = self._cache[key]
        n_frames = db.shape[0] if db is not None else lin.shape[0]
        aligned = self._aligned_for(freqs, rbw_hz)
        res = detect_stack(freqs, db, power_lin=lin if db is None else None, looks=looks, center_hz=center_hz,
                           config=det_cfg, baseline=aligned, cache=self._detection_cache)
        assert res.power_lin is not None  # detect_stack always hands back the linear stack
        t_last = t_first + (n_frames - 1) * frame_s if times is None else float(times[-1])
        events: list[DetectionEvent] = []
        if rails is not None:  # IQ blocks (spectra have no samples, and no tuned band to fold products into)
            events.extend(overload_stage(self.overload, res, share=rails, t_first_s=t_first, t_last_s=t_last + frame_s,
                                         center_hz=center_hz, sample_rate_hz=sample_rate_hz,
                                         bin_hz=float(freqs[1] - freqs[0]) if freqs.size > 1 else 1.0,
                                         byproducts=cfg.byproducts))
        declared = self.declared_jammers
        if declared is not None:  # before tracking: the emissions of a jammer measured on are not tracked
            events.extend(declared.check(freqs, aligned, res.mean_lin(), t_last, frame_s, center_hz=center_hz))
        if self.tracker.open and freqs.size:  # tracks of other hops were not watched during this stack
            self.tracker.unobserved(float(freqs[0]), float(freqs[-1]), t_first, t_last + frame_s)
        self.frames_processed += n_frames
        self.tested_bins += res.n_tested_bins * n_frames
        self.cfar_flagged_bins += int(res.n_flagged.sum() + res.rejected_baseline.sum())
        for i in sorted(res.emissions):
            emissions = res.emissions[i] if declared is None else declared.keep(res.emissions[i])
            if not emissions:
                continue
            self.flagged_bins += sum(e.bins.size for e in emissions)
            t = t_first + i * frame_s if times is None else float(times[i])
            p_lin = res.power_lin[i]  # linear, as detection tested it (no dB → linear round trip)
            p_hold = self._unexplained(aligned, p_lin, res, i) if aligned is not None else p_lin
            new, updated, ended = self.tracker.update(emissions, t, frame_s, position=position, spectrum=(freqs, p_hold),
                                                      allow_join=self.frames_processed - n_frames + i > 0,
                                                      position_res_s=position_res_s, overload=self.overload.on)
            events.extend(self._track_events(new, updated, ended, t))
        if self.tracker.open:
            events.extend(self._track_events([], [], self.tracker.age(t_last), t_last))
        self._last = (freqs, db, lin, res, dict(rbw_hz=rbw_hz, unit=unit, offset_s=t_last, duration_s=frame_s, n_looks=looks,
                                                center_hz=center_hz, position=position, start=start,
                                                meta={"overload": self.overload.on, "rails_share": rails}))
        if aligned is not None:
            p_last = res.power_lin[-1]
            missing = self._missing_stations.check(cfg, freqs, looks, frame_s, aligned, p_last, res, t_last,
                                                   center_hz=center_hz)
            events.extend(missing if declared is None else declared.filter_events(missing))
            self._gain_offsets = res.gain_offset_db
            if self.jamming is not None:
                events.extend(self.jamming.check(freqs, aligned, res.power_lin, t_last, frame_s, center_hz=center_hz,
                                                 mean_lin=res.stack_mean_lin))
        if self.integration is not None:  # long integration (detection._integration): its windows' finds join the tracker
            for w, found in self.integration.process(freqs, res, flagged, t_first, t_last + frame_s, looks, center_hz, rbw_hz,
                                                     aligned, cfg.detection, self._detection_cache):
                if declared is not None:  # a declared jammer on during the window: its band's finds are expected
                    found = declared.keep_since(found, w.t_start_s)
                    if not found:
                        continue
                # what a frames' track holds is only noted on it (its bursts, duty cycle and readings
                # stay the frames'); the rest opens or extends a track of its own
                fresh = self.integration.unheld(self.tracker.open, found, cfg.tracker.min_gate_hz)
                new, updated, ended = self.tracker.update(fresh, t_last, frame_s, position=position,
                                                          spectrum=(freqs, w.mean_lin), allow_join=False,
                                                          overload=self.overload.on) if fresh else ([], [], [])
                noted = self.integration.record_hits(self.tracker.open, w, found, cfg.tracker.min_gate_hz)
                # a confirmed track noted here is judged now (its alert may be due), not at its next frame
                updated += [tr for tr in noted if tr.confirmed and tr not in new and tr not in updated]
                events.extend(self._track_events(new, updated, ended, t_last))
        return events

    def _correct_frequency(self, freqs, db, lin, center_hz, rbw_hz, t_s: float):
        """The stack's reported grid (and tuned center), corrected by the receiver's frequency
        error (``detection._freq_error``), measured again every ``frequency_error_interval_s``."""
        est = self.frequency_error
        assert est is not None  # called only with an estimator
        c = float(center_hz) if center_hz is not None else float(np.mean(freqs))
        if t_s >= self._fe_next_s and freqs.size > 16:
            self._fe_next_s = t_s + self.config.frequency_error_interval_s
            stack = lin if lin is not None else np.power(np.float32(10.0), np.asarray(db, np.float32) / np.float32(10.0))
            channels = [] if self.whitelist is None else [
                ch.center_hz for ch in self.whitelist.channels if ch.bandwidth_hz <= 30e3 and ch.site in (None, self.site)]
            changed = est.measure(freqs, 10.0 * np.log10(np.maximum(stack.mean(axis=0, dtype=np.float64), 1e-30)),
                                  center_hz=c, channels_hz=channels,
                                  aligned_for=(lambda f: self._aligned_for(f, rbw_hz)) if self.baseline is not None else None,
                                  dc_half_width_hz=self.config.detection.dc_half_width_hz)
            ppm = est.ppm or 0.0
            if changed and abs(ppm) >= est.config.advise_ppm and not self._fe_advised:
                self._fe_advised = True
                log.warning("receiver frequency error %+.1f ppm estimated from known stations (%s) and corrected; "
                            "calibrate the dongle (examwatch calibrate ppm) or give --profile", ppm,
                            "the whitelisted channels" if est.source == "whitelist" else "the survey's steady stations")
        off = est.report_offset_hz(c) if est.whitelist.known else 0.0
        return (freqs - off if off else freqs), (None if center_hz is None else center_hz - off)

    def _unexplained(self, aligned, p_lin: np.ndarray, res, i: int) -> np.ndarray:
        """Frame ``i``'s linear spectrum for the tracks' max-hold, with the surveyed steady
        emissions taken out: bins the survey found occupied (occupancy ≥ 0.5) and now at most
        ``explained_margin_db`` over its p99 (after the gain offset) are set to the noise floor.
        A newcomer beside a surveyed carrier is then classified on its own spectrum, not as two
        tones with the carrier's line."""
        key = ("steady", id(aligned))
        if key not in self._cache:
            steady = np.flatnonzero(aligned.covered & (np.nan_to_num(aligned.occupancy) >= 0.5))
            limit = aligned.p99_db[steady].astype(np.float64) + self.config.explained_margin_db
            self._cache[key] = (steady, limit)
        steady, limit_db = self._cache[key]
        if steady.size == 0:
            return p_lin
        lim = 10.0 ** ((limit_db + float(res.gain_offset_db[i])) / 10.0)
        idx = steady[p_lin[steady] <= lim]
        if idx.size == 0:
            return p_lin
        out = p_lin.copy()
        out[idx] = res.floor_lin[0 if res.floor_lin.shape[0] == 1 else i][idx]
        return out

    def _track_events(self, new, updated, ended, t: float) -> list[DetectionEvent]:
        cfg = self.config
        events: list[DetectionEvent] = []

        def reported(tr: Track) -> None:
            self._reported[tr.track_id] = (t, tr.classification, tr.center_hz, tr.bandwidth_hz)

        for tr in new:
            self._remember(tr)
            self._judge(tr)
            events.append(self._event("new", tr))
            reported(tr)
        for tr in updated:
            t0, cls0, c0, bw0 = self._reported.get(tr.track_id, (-1e9, None, tr.center_hz, 0.0))
            due = t - t0 >= cfg.update_interval_s
            # the center moved (an emission that switched on with the track joined it): report
            # where the track is now
            moved = center_moved(c0, bw0, tr.center_hz, tr.bandwidth_hz, cfg.moved_min_hz)
            if tr.alert and not due and not moved and 20 < tr.frames_active < tr.class_mark * 1.25:
                continue  # alerted, no update due, no re-classification due (_judge): nothing to report
            was = tr.alert
            self._judge(tr)
            changed = tr.alert != was or tr.classification != cls0 or moved
            if changed or due:
                events.append(self._event("update", tr))
                reported(tr)
        for tr in ended:
            self._judge(tr)
            events.append(self._event("end", tr))
            self._reported.pop(tr.track_id, None)
            tr.spectrum_lin = None  # classified for the last time: its max-hold spectrum is not needed (issue #24)
        return events

    def _remember(self, tr: Track) -> None:
        """Keep recent tracks for the API and reports, bounded so that hours of monitoring do not grow memory."""
        self.all_tracks[tr.track_id] = tr
        if len(self.all_tracks) > self.max_tracks_kept:
            for tid in list(self.all_tracks)[: len(self.all_tracks) - self.max_tracks_kept]:
                if self.all_tracks[tid].ended:
                    del self.all_tracks[tid]

    def _judge(self, tr: Track) -> None:
        # re-classify while the track is young, then when its history has grown by a quarter
        mark = tr.class_mark
        if tr.frames_active <= 20 or tr.frames_active >= mark * 1.25 or tr.ended:
            tr.classification = classify_track(tr)
            tr.class_mark = tr.frames_active
        if not artefact_gate(tr):  # a by-product of a stronger emission never alerts (``_byproducts``)
            decide(tr, config=self.config.decision, whitelist=self.whitelist, site=self.site,
                   sessions=self.sessions, baseline_used=False)
            if tr.integration_hits and not tr.alert and self.integration is not None:
                integration_decide(tr, persist=self.integration.config.persist, whitelist=self.whitelist, site=self.site)


    def open_tracks(self) -> list[TrackEvent]:
        """``update`` events of the confirmed open tracks (the API's ``/tracks``), with ``peak_dbm``
        like every event; ``location`` is null here (estimates go out with the alert events and
        are served by ``/alerts``), so that a poll of the list never runs the estimator."""
        return [self._event("update", tr, locate=False) for tr in list(self.tracker.open) if tr.confirmed]

    def _event(self, kind: Literal["new", "update", "end"], tr: Track, *, locate: bool = True) -> TrackEvent:
        loc = self.locate(tr) if (locate and self.locate is not None and tr.alert) else None
        off = self.dbm_offset(np.array([tr.center_hz]))
        return track_event(kind, tr, wall_start=self.wall_start, location=loc,
                           peak_dbm_offset_db=None if off is None else float(off[0]))

    def dbm_offset(self, freqs_hz) -> "np.ndarray | None":
        """``dBm − dBFS`` at ``freqs_hz`` for the current tuner gain, from the calibration profile's
        power table; None without one (levels then stay in dBFS)."""
        fn = getattr(self.correct, "power_offset_db", None)
        return None if fn is None else fn(np.asarray(freqs_hz, dtype=np.float64), self.gain_db)

    def calibrated_spectrum(self) -> Spectrum | None:
        """The last frame in dBm when a power calibration applies (``meta["dbm_offset_db"]`` holds
        the per-bin offset), else the dBFS frame as is; None before the first frame."""
        spec = self.last_spectrum
        if spec is None or spec.unit != "dBFS":
            return spec
        off = self.dbm_offset(spec.freqs_hz)
        if off is None:
            return spec
        cached = self._dbm_cache
        if cached is not None and cached[0] is spec:
            return cached[1]
        out = replace(spec, power=(spec.power.astype(np.float64) + off).astype(np.float32), unit="dBm",
                      meta={**spec.meta, "dbm_offset_db": off, "gain_db": self.gain_db})
        self._dbm_cache = (spec, out)
        return out


    def finish(self) -> list[DetectionEvent]:
        """End every open track (end of the timeline); returns their ``end`` events."""
        out: list[DetectionEvent] = []
        for tr in self.tracker.close_all():
            self._judge(tr)
            out.append(self._event("end", tr))
        return out

    @property
    def measured_pfa(self) -> float:
        """Share of tested bins flagged by the CFAR stage (before baseline and artefact filters)."""
        return self.cfar_flagged_bins / max(self.tested_bins, 1)
