"""Tracks: emissions linked over frames, with bursts, duty cycle, period and readings.

:class:`Tracker` is a small explicit state machine: :meth:`Tracker.update` takes one frame's
emissions and returns the track events of that frame (``new``, ``update``, ``end``), so that the
caller (replay, monitor) decides what to print, store or push. No clock: times come in.

Linking rules. An emission joins an open track when its span overlaps the track's span widened
by a gate of max(bandwidth/2, ``min_gate_hz``). Emissions that appear in the same frame, none of
which joins an existing track, within ``join_hz`` of each other are one transmission (the keying
sidebands of an OOK burst and the two tones of FSK switch on together), so they start one track.
A track ends after ``gap_s`` without an emission; silences longer than ``burst_gap_s`` split bursts.

Blind time. Frames left out of detection (cut from NaN/inf samples, :meth:`Tracker.blind`) are
no observation, not silence: the time they cover is not counted in a track's gap (it neither ends
a track nor splits a burst), in its duty cycle (``Track.blind_s``) or in the K-of-M window of the
decision (``Track.recent`` is kept on the track's observed clock).

Hops. A receiver that follows a watch plan sees one hop at a time: while it is tuned elsewhere a
track's band is not observed (:meth:`Tracker.unobserved`, ``Track.unobserved_s``), and that time
is no silence either. A burst seen again on a later revisit therefore continues the same track
(as a new burst when the observed silence between them exceeds ``burst_gap_s``), so repeated short
bursts on a hopped band build the burst count and period that raise severity (issue #19 item 4),
as they do on a dwell. A track not seen for ``max_unseen_s`` of timeline time ends whatever was
observed (a band revisited rarely does not keep a track open for hours).

Confirmation. A new track is tentative until it has been active in ``confirm_frames`` frames or
has reached ``confirm_snr_db`` (a single strong frame: a burst of a few ms). Tentative tracks
get no id and no events; a tentative track that overlaps an older open track in frequency is
absorbed into it, and one that ends tentative is dropped (counted in ``dropped``). This removes
most single-bin noise hits and the fragments of a burst's sidebands that show up a frame late.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

import numpy as np

from detector.detection._byproducts import note_frame
from detector.detection._emissions import Emission

__all__ = ["Track", "TrackerConfig", "Tracker", "Reading"]


@dataclass(frozen=True)
class TrackerConfig:
    min_gate_hz: float = 2500.0
    join_hz: float = 25000.0
    onset_window_s: float = 0.03
    onset_span_hz: float = 250000.0
    gap_s: float = 60.0
    #: a track not seen for this long (s, observed or not: hops) ends
    max_unseen_s: float = 900.0
    burst_gap_s: float = 0.05
    max_readings: int = 5000
    confirm_frames: int = 2
    confirm_snr_db: float = 15.0


@dataclass(frozen=True)
class Reading:
    """A power reading of a track for localization.

    ``t_s``: time of the frame (s, the engine's timeline); ``power_db``: the emission's power (dBFS
    or dBm); ``lat``/``lon``: the receiver's position (degrees) or None; ``speed_mps``: the
    vehicle's ground speed there (m/s) when the position source knows it (None: the locator
    estimates it from the readings' own positions and times); ``time_res_s``: how far in time
    (s) the reading may be from the moment the vehicle was at that position (the span of the IQ
    block one position stands for; None: the locator takes the readings' time resolution). Both
    enter the position's uncertainty, speed × time resolution
    (:func:`detector.localization.position_sigma_m`). ``overload``: taken while the receiver was
    overloaded (its level is compressed: localization leaves it out).
    """

    t_s: float
    power_db: float
    lat: float | None = None
    lon: float | None = None
    speed_mps: float | None = None
    time_res_s: float | None = None
    overload: bool = False


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
    #: times of recent active frames on the track's observed clock (t − ``blind_s`` then; the
    #: decision's K-of-M window counts observed frames, blind ones are no evidence either way)
    recent: list[float] = field(default_factory=list)
    bw_samples: list[float] = field(default_factory=list)
    bw_sorted: list[float] = field(default_factory=list, repr=False)  # bw_samples in ascending order
    n_runs_max: int = 1
    ended: bool = False
    confirmed: bool = False
    baseline_occupancy: float | None = None
    notes: list[str] = field(default_factory=list)
    #: unobserved time (s) inside the track's span: frames left out of detection (NaN/inf samples)
    blind_s: float = 0.0
    #: time (s) since the track was last seen during which its band was not watched (the receiver
    #: was tuned to another hop); moved into ``blind_s`` when it is seen again
    unobserved_s: float = 0.0
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
    #: a by-product of a stronger emission (kind and reason, ``detection._byproducts``), None if not
    artefact: str | None = None
    artefact_of: str | None = None
    artefact_frames: int = 0
    clean_run: int = 0
    #: the receiver was overloaded during the track's last frame
    overload: bool = False

    @property
    def on_time_s(self) -> float:
        return self.frames_active * self.frame_s

    @property
    def span_s(self) -> float:
        return self.last_seen_s - self.first_seen_s + self.frame_s

    @property
    def duty_cycle(self) -> float:
        """Share of the observed span (``span_s`` less ``blind_s``) the track was active."""
        return min(1.0, self.on_time_s / max(self.span_s - self.blind_s, self.frame_s))

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
        # blind intervals [t0, t1) (s, ascending, disjoint) and the blind time up to each one's end
        self._blind_t0: list[float] = []
        self._blind_t1: list[float] = []
        self._blind_cum: list[float] = []

    dropped: int = 0

    def blind(self, t0_s: float, t1_s: float) -> None:
        """Frames from ``t0_s`` to ``t1_s`` (s) were not observed (left out of detection: cut from
        NaN/inf samples). Called in time order; for the open tracks and those still to come that
        time is no observation: it neither ends a track, splits a burst nor lowers a duty cycle."""
        if not t1_s > t0_s:
            return
        t1 = self._blind_t1
        if t1 and t0_s <= t1[-1] + 1e-9:  # contiguous with (or inside) the last interval: extend it
            if t1_s > t1[-1]:
                self._blind_cum[-1] += t1_s - t1[-1]
                t1[-1] = t1_s
            return
        if len(t1) >= 256:  # keep what the open tracks can still ask about (their last active frame on)
            since = min((tr.last_seen_s for tr in self.open), default=t0_s)
            k = bisect_left(t1, since)
            del self._blind_t0[:k], t1[:k], self._blind_cum[:k]
        self._blind_cum.append((self._blind_cum[-1] if self._blind_cum else 0.0) + t1_s - t0_s)
        self._blind_t0.append(t0_s)
        t1.append(t1_s)

    def _blind_before(self, t_s: float) -> float:
        """Blind time before ``t_s`` (from an arbitrary origin: only differences are meaningful)."""
        k = bisect_right(self._blind_t0, t_s) - 1
        if k < 0:
            return self._blind_cum[0] - (self._blind_t1[0] - self._blind_t0[0])
        return self._blind_cum[k] - max(0.0, self._blind_t1[k] - t_s)

    def blind_between(self, t0_s: float, t1_s: float) -> float:
        """Blind time (s) between ``t0_s`` and ``t1_s`` (0 when nothing was left out)."""
        if not self._blind_t1 or not t1_s > t0_s:
            return 0.0
        return self._blind_before(t1_s) - self._blind_before(t0_s)

    def _silent(self, tr: Track, t_s: float) -> bool:
        """Whether ``tr`` has been observed silent for more than ``gap_s`` at ``t_s`` (or not seen
        for ``max_unseen_s``)."""
        gap = t_s - tr.last_seen_s
        if gap > self.config.max_unseen_s:
            return True
        return gap > self.config.gap_s and gap - self.blind_between(tr.last_seen_s, t_s) - tr.unobserved_s > self.config.gap_s

    def unobserved(self, lo_hz: float, hi_hz: float, t0_s: float, t1_s: float) -> None:
        """The receiver watched only ``[lo_hz, hi_hz]`` during ``[t0_s, t1_s)`` (one hop of a watch
        plan): the open tracks wholly outside it were not observed then (module docstring, Hops)."""
        dt = t1_s - t0_s
        if dt <= 0:
            return
        for tr in self.open:
            if tr.f_hi_hz < lo_hz or tr.f_lo_hz > hi_hz:
                tr.unobserved_s += dt

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
        position_res_s: float | None = None,
        overload: bool = False,
    ) -> tuple[list[Track], list[Track], list[Track]]:
        """Process one frame starting at ``t_s`` (s) of length ``frame_s``.

        Returns ``(new, updated, ended)`` tracks of this frame. ``spectrum`` (freqs_hz, power_lin)
        lets a track keep a max-hold of its own band for classification. ``position`` (an object
        with ``lat``, ``lon`` and optionally ``speed_mps``) and ``position_res_s`` (s: the time
        span one position stands for) go into the frame's :class:`Reading`. ``overload``: the
        receiver is overloaded in this frame (its readings are flagged). Emissions marked as
        by-products (``artefact``) start tracks only with each other, never with unmarked ones.
        """
        cfg = self.config
        active: dict[int, list[Emission]] = {}
        orphans: list[Emission] = []
        for e in emissions:
            hit = alt = None
            for i, tr in enumerate(self.open):
                gate = cfg.min_gate_hz
                if e.f_hi_hz >= tr.f_lo_hz - gate and e.f_lo_hz <= tr.f_hi_hz + gate:
                    if (e.artefact is None) == (tr.artefact is None):
                        hit = i
                        break
                    if e.artefact is None and alt is None:
                        alt = i  # an unmarked emission on a marked track: it may have outlived its parent
            hit = alt if hit is None else hit  # a by-product never joins an emission's own track
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
                        and e.f_hi_hz >= self.open[i].f_lo_hz - cfg.onset_span_hz / 2
                        and (e.artefact is None) == (self.open[i].artefact is None)]
                if near:
                    active.setdefault(near[0], []).append(e)
                else:
                    rest.append(e)
            orphans = rest
        groups: list[list[Emission]] = []
        for part in ([e for e in orphans if e.artefact is None], [e for e in orphans if e.artefact is not None]):
            first = len(groups)
            for e in sorted(part, key=lambda x: x.f_lo_hz):
                span = cfg.onset_span_hz if allow_join else cfg.join_hz
                if len(groups) > first and (e.f_lo_hz - groups[-1][-1].f_hi_hz <= cfg.join_hz or
                                            allow_join and e.f_hi_hz - groups[-1][0].f_lo_hz <= span):
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
            note_frame(tr, group)
            tr.overload = overload
            unseen = self.blind_between(tr.last_seen_s + frame_s, t_s) + tr.unobserved_s if tr.burst_starts else 0.0
            tr.unobserved_s = 0.0
            tr.blind_s += unseen
            if not tr.burst_starts or t_s - (tr.last_seen_s + frame_s) - unseen > cfg.burst_gap_s:
                if tr.burst_starts:
                    tr.burst_ends.append(tr.last_seen_s + frame_s)
                tr.burst_starts.append(t_s)
                tr.bursts += 1
            tr.last_seen_s = t_s
            tr.frames_active += 1
            tr.recent.append(t_s - tr.blind_s)
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
                tr.readings.append(Reading(t_s, p, lat, lon, getattr(position, "speed_mps", None),
                                           position_res_s if lat is not None else None, overload))
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
        ended = [tr for tr in self.open if self._silent(tr, t_s)]
        for tr in ended:
            self._end(tr)
        return confirmed_now, updated, [tr for tr in ended if tr.confirmed]

    def _absorb_overlaps(self) -> None:
        """Absorb each tentative track into an older open track whose span overlaps it."""
        for young in [t for t in self.open if not t.confirmed]:
            for old in self.open:
                if old is young or old.ended or old.first_seen_s > young.first_seen_s or \
                        (old.artefact is None) != (young.artefact is None):
                    continue
                if young.f_lo_hz <= old.f_hi_hz and young.f_hi_hz >= old.f_lo_hz:
                    old.f_lo_hz = min(old.f_lo_hz, young.f_lo_hz)
                    old.f_hi_hz = max(old.f_hi_hz, young.f_hi_hz)
                    old.peak_dbfs = max(old.peak_dbfs, young.peak_dbfs)
                    old.snr_db = max(old.snr_db, young.snr_db)
                    if young.last_seen_s > old.last_seen_s:
                        old.last_seen_s = young.last_seen_s
                        old.frames_active += 1
                        old.recent.append(young.last_seen_s - old.blind_s)
                    young.ended = True
                    self.open.remove(young)
                    break

    def age(self, t_s: float) -> list[Track]:
        """End the tracks silent for more than ``gap_s`` (blind time not counted) at time ``t_s``;
        returns the confirmed ones."""
        ended = [tr for tr in self.open if self._silent(tr, t_s)]
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
