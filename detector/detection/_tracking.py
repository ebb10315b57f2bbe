"""Tracks: emissions linked over frames, with bursts, duty cycle, period and readings.

:class:`Tracker` is a small explicit state machine: :meth:`Tracker.update` takes one frame's
emissions and returns the track events of that frame (``new``, ``update``, ``end``), so that the
caller (replay, monitor) decides what to print, store or push. No clock: times come in.

Linking rules. An emission joins an open track when its span overlaps the track's span widened
by a gate of max(bandwidth/2, ``min_gate_hz``). Emissions that appear in the same frame, none of
which joins an existing track, within ``join_hz`` of each other are one transmission (the keying
sidebands of an OOK burst and the two tones of FSK switch on together), so they start one track.
A track ends after ``gap_s`` without an emission; silences shorter than that split bursts.

Confirmation. A new track is tentative until it has been active in ``confirm_frames`` frames or
has reached ``confirm_snr_db`` (a single strong frame: a burst of a few ms). Tentative tracks
get no id and no events; a tentative track that overlaps an older open track in frequency is
absorbed into it, and one that ends tentative is dropped (counted in ``dropped``). This removes
most single-bin noise hits and the fragments of a burst's sidebands that show up a frame late.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

import numpy as np

from detector.detection._emissions import Emission

__all__ = ["Track", "TrackerConfig", "Tracker", "Reading"]


@dataclass(frozen=True)
class TrackerConfig:
    min_gate_hz: float = 2500.0
    join_hz: float = 25000.0
    onset_window_s: float = 0.03
    onset_span_hz: float = 250000.0
    gap_s: float = 60.0
    burst_gap_s: float = 0.05
    max_readings: int = 5000
    confirm_frames: int = 2
    confirm_snr_db: float = 15.0


@dataclass(frozen=True)
class Reading:
    """A power reading of a track for localization: time (s), power (dBFS or dBm), position or None."""

    t_s: float
    power_db: float
    lat: float | None = None
    lon: float | None = None


@dataclass
class Track:
    """An emission followed over time (see ``DESIGN.md`` core types)."""

    track_id: str
    f_lo_hz: float
    f_hi_hz: float
    first_seen_s: float
    last_seen_s: float
    frame_s: float
    center_hz: float = 0.0
    bandwidth_hz: float = 0.0
    peak_dbfs: float = -np.inf
    snr_db: float = -np.inf
    excess_db: float | None = None
    frames_active: int = 0
    bursts: int = 0
    burst_starts: list[float] = field(default_factory=list)
    burst_ends: list[float] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    classification: str = "unknown"
    alert: bool = False
    alert_reasons: list[str] = field(default_factory=list)
    score_terms: dict = field(default_factory=dict)
    severity: str = "info"
    recent: list[float] = field(default_factory=list)  # times of recent active frames
    bw_samples: list[float] = field(default_factory=list)
    bw_sorted: list[float] = field(default_factory=list, repr=False)  # bw_samples in ascending order
    n_runs_max: int = 1
    ended: bool = False
    confirmed: bool = False
    baseline_occupancy: float | None = None
    notes: list[str] = field(default_factory=list)
    #: frames_active when the track was last classified (the engine re-classifies at +25 %)
    class_mark: int = 0
    #: the shortest integration (s) that alerted the track (``detection._integration``); None: the frames did
    integration_s: float | None = None
    #: integration scale (s) → (window end s, center Hz, matched width Hz) of its last windows that found the track
    integration_hits: dict[float, list[tuple[float, float, float]]] = field(default_factory=dict)
    #: opened by an integration window (not by the frames)
    by_integration: bool = False
    _w: float = 0.0  # sum of linear peak power weights for center
    _wf: float = 0.0
    spectrum_lin: np.ndarray | None = field(default=None, repr=False)
    spectrum_f0_hz: float = 0.0
    spectrum_bin_hz: float = 0.0

    @property
    def on_time_s(self) -> float:
        return self.frames_active * self.frame_s

    @property
    def span_s(self) -> float:
        return self.last_seen_s - self.first_seen_s + self.frame_s

    @property
    def duty_cycle(self) -> float:
        return min(1.0, self.on_time_s / max(self.span_s, self.frame_s))

    @property
    def burst_period_s(self) -> float | None:
        """Median interval between burst starts when there are ≥ 3 bursts and the intervals are regular (CV < 0.25)."""
        if len(self.burst_starts) < 3:
            return None
        d = np.diff(self.burst_starts)
        med = float(np.median(d))
        if med <= 0 or float(np.std(d)) / med > 0.25:
            return None
        return med

    @property
    def burst_durations_s(self) -> list[float]:
        ends = self.burst_ends + ([self.last_seen_s + self.frame_s] if len(self.burst_ends) < len(self.burst_starts) else [])
        return [e - s for s, e in zip(self.burst_starts, ends)]

    def _absorb(self, e: Emission, t_s: float, position) -> None:
        self.f_lo_hz = min(self.f_lo_hz, e.f_lo_hz)
        self.f_hi_hz = max(self.f_hi_hz, e.f_hi_hz)
        w = 10 ** (e.peak_dbfs / 10)
        self._w += w
        self._wf += w * e.center_hz
        self.center_hz = self._wf / self._w
        if e.peak_dbfs > self.peak_dbfs:
            self.peak_dbfs = e.peak_dbfs
        self.snr_db = max(self.snr_db, e.snr_db)
        if e.excess_db is not None:
            self.excess_db = e.excess_db if self.excess_db is None else max(self.excess_db, e.excess_db)
        if e.baseline_occupancy is not None:
            self.baseline_occupancy = max(self.baseline_occupancy or 0.0, e.baseline_occupancy)


def _p90(values: list[float], *, presorted: bool = False) -> float:
    """``np.percentile(values, 90)`` (linear interpolation) without the array round trip: the
    tracker calls it once per track per frame on at most 256 values, kept sorted as they come."""
    v = values if presorted else sorted(values)
    pos = 0.9 * (len(v) - 1)
    lo = int(pos)
    if lo + 1 >= len(v):
        return float(v[lo])
    return float(v[lo] + (v[lo + 1] - v[lo]) * (pos - lo))


class Tracker:
    """Links per-frame emissions into tracks and reports their events."""

    def __init__(self, config: TrackerConfig = TrackerConfig(), *, id_prefix: str = "T") -> None:
        self.config = config
        self.open: list[Track] = []
        self._next = 1
        self._prefix = id_prefix

    dropped: int = 0

    def _new_id(self) -> str:
        tid = f"{self._prefix}{self._next:05d}"
        self._next += 1
        return tid

    def update(
        self,
        emissions: list[Emission],
        t_s: float,
        frame_s: float,
        *,
        position=None,
        spectrum: tuple[np.ndarray, np.ndarray] | None = None,
        allow_join: bool = True,
    ) -> tuple[list[Track], list[Track], list[Track]]:
        """Process one frame starting at ``t_s`` (s) of length ``frame_s``.

        Returns ``(new, updated, ended)`` tracks of this frame. ``spectrum`` (freqs_hz, power_lin)
        lets a track keep a max-hold of its own band for classification.
        """
        cfg = self.config
        active: dict[int, list[Emission]] = {}
        orphans: list[Emission] = []
        for e in emissions:
            hit = None
            for i, tr in enumerate(self.open):
                gate = cfg.min_gate_hz
                if e.f_hi_hz >= tr.f_lo_hz - gate and e.f_lo_hz <= tr.f_hi_hz + gate:
                    hit = i
                    break
            if hit is None:
                orphans.append(e)
            else:
                active.setdefault(hit, []).append(e)
        # Emissions that switch on together are one transmission: orphans of this frame join a
        # track born within ``onset_window_s`` nearby, else each other (not on the first frame of
        # a timeline, where everything already on "appears" at once).
        if allow_join and orphans:
            young = [i for i, tr in enumerate(self.open) if t_s - tr.first_seen_s <= cfg.onset_window_s]
            rest = []
            for e in orphans:
                near = [i for i in young if e.f_lo_hz <= self.open[i].f_hi_hz + cfg.onset_span_hz / 2
                        and e.f_hi_hz >= self.open[i].f_lo_hz - cfg.onset_span_hz / 2]
                if near:
                    active.setdefault(near[0], []).append(e)
                else:
                    rest.append(e)
            orphans = rest
        groups: list[list[Emission]] = []
        for e in sorted(orphans, key=lambda x: x.f_lo_hz):
            span = cfg.onset_span_hz if allow_join else cfg.join_hz
            if groups and e.f_lo_hz - groups[-1][-1].f_hi_hz <= cfg.join_hz or \
                    groups and allow_join and e.f_hi_hz - groups[-1][0].f_lo_hz <= span:
                groups[-1].append(e)
            else:
                groups.append([e])
        for g in groups:
            tr = Track(track_id="", f_lo_hz=g[0].f_lo_hz, f_hi_hz=g[0].f_hi_hz,
                       first_seen_s=t_s, last_seen_s=t_s, frame_s=frame_s)
            self.open.append(tr)
            active[len(self.open) - 1] = g
        touched: list[Track] = []
        for i, group in active.items():
            tr = self.open[i]
            touched.append(tr)
            for e in group:
                tr._absorb(e, t_s, position)
            if not tr.burst_starts or t_s - (tr.last_seen_s + frame_s) > cfg.burst_gap_s:
                if tr.burst_starts:
                    tr.burst_ends.append(tr.last_seen_s + frame_s)
                tr.burst_starts.append(t_s)
                tr.bursts += 1
            tr.last_seen_s = t_s
            tr.frames_active += 1
            tr.recent.append(t_s)
            if len(tr.recent) > 64:
                del tr.recent[:-64]
            bw = float(sum(e.bandwidth_hz for e in group))
            tr.bw_samples.append(bw)
            insort(tr.bw_sorted, bw)
            if len(tr.bw_samples) > 256:
                old = tr.bw_samples.pop(0)
                del tr.bw_sorted[bisect_left(tr.bw_sorted, old)]
            tr.bandwidth_hz = _p90(tr.bw_sorted, presorted=True)
            tr.n_runs_max = max(tr.n_runs_max, len(group))
            if len(tr.readings) < cfg.max_readings:
                p = float(10 * np.log10(sum(10 ** (e.power_dbfs / 10) for e in group)))
                lat = getattr(position, "lat", None)
                lon = getattr(position, "lon", None)
                tr.readings.append(Reading(t_s, p, lat, lon))
            if spectrum is not None:
                self._hold(tr, *spectrum)
        self._absorb_overlaps()
        confirmed_now: list[Track] = []
        updated = []
        for tr in touched:
            if tr.ended:
                continue
            if not tr.confirmed and (tr.frames_active >= cfg.confirm_frames or tr.snr_db >= cfg.confirm_snr_db):
                tr.confirmed = True
                tr.track_id = self._new_id()
                confirmed_now.append(tr)
            elif tr.confirmed:
                updated.append(tr)
        ended = [tr for tr in self.open if t_s - tr.last_seen_s > cfg.gap_s]
        for tr in ended:
            self._end(tr)
        return confirmed_now, updated, [tr for tr in ended if tr.confirmed]

    def _absorb_overlaps(self) -> None:
        """Absorb each tentative track into an older open track whose span overlaps it."""
        for young in [t for t in self.open if not t.confirmed]:
            for old in self.open:
                if old is young or old.ended or old.first_seen_s > young.first_seen_s:
                    continue
                if young.f_lo_hz <= old.f_hi_hz and young.f_hi_hz >= old.f_lo_hz:
                    old.f_lo_hz = min(old.f_lo_hz, young.f_lo_hz)
                    old.f_hi_hz = max(old.f_hi_hz, young.f_hi_hz)
                    old.peak_dbfs = max(old.peak_dbfs, young.peak_dbfs)
                    old.snr_db = max(old.snr_db, young.snr_db)
                    if young.last_seen_s > old.last_seen_s:
                        old.last_seen_s = young.last_seen_s
                        old.frames_active += 1
                        old.recent.append(young.last_seen_s)
                    young.ended = True
                    self.open.remove(young)
                    break

    def age(self, t_s: float) -> list[Track]:
        """End the tracks silent for more than ``gap_s`` at time ``t_s``; returns the confirmed ones."""
        ended = [tr for tr in self.open if t_s - tr.last_seen_s > self.config.gap_s]
        for tr in ended:
            self._end(tr)
        return [tr for tr in ended if tr.confirmed]

    def _end(self, tr: Track) -> None:
        tr.ended = True
        if not tr.confirmed:
            self.dropped += 1
        if len(tr.burst_ends) < len(tr.burst_starts):
            tr.burst_ends.append(tr.last_seen_s + tr.frame_s)
        self.open.remove(tr)

    @staticmethod
    def _hold(tr: Track, freqs_hz: np.ndarray, power_lin: np.ndarray) -> None:
        bin_hz = float(freqs_hz[1] - freqs_hz[0])
        lo = int(np.searchsorted(freqs_hz, tr.f_lo_hz - 4 * bin_hz))
        hi = int(np.searchsorted(freqs_hz, tr.f_hi_hz + 4 * bin_hz))
        seg = power_lin[lo:hi]
        f0 = float(freqs_hz[lo]) if lo < freqs_hz.size else float(freqs_hz[-1])
        if tr.spectrum_lin is None or tr.spectrum_bin_hz != bin_hz:
            tr.spectrum_lin, tr.spectrum_f0_hz, tr.spectrum_bin_hz = seg.astype(np.float64), f0, bin_hz
            return
        old_lo = tr.spectrum_f0_hz
        old_n, n = tr.spectrum_lin.size, seg.size
        b = int(round((f0 - old_lo) / bin_hz))
        if b >= 0 and b + n <= old_n:  # inside the held span (the usual case): max in place
            view = tr.spectrum_lin[b:b + n]
            np.maximum(view, seg, out=view)
            return
        # re-index onto the union span
        new_lo = min(old_lo, f0)
        end = max(old_lo + old_n * bin_hz, f0 + n * bin_hz)
        total = int(round((end - new_lo) / bin_hz))
        buf = np.zeros(total)
        a = int(round((old_lo - new_lo) / bin_hz))
        buf[a:a + old_n] = tr.spectrum_lin
        b = int(round((f0 - new_lo) / bin_hz))
        buf[b:b + n] = np.maximum(buf[b:b + n], seg)
        tr.spectrum_lin, tr.spectrum_f0_hz = buf, new_lo

    def close_all(self) -> list[Track]:
        """End every open track (end of the recording). Returns the confirmed ones."""
        ended = list(self.open)
        for tr in ended:
            self._end(tr)
        return [tr for tr in ended if tr.confirmed]
