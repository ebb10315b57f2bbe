"""Exam-room jammers the site declares: :class:`DeclaredJammers`, the engine's ``declared_jammer``
check (issue #18 item 4, second half).

Many exam sites run their own jammers in the exam rooms during the sessions. A site declares them
(``[[jammer]]`` in the site TOML, :class:`DeclaredJammer` here): a band and the sessions they run in.
Inside a declared band the jammer's emission and floor rise are expected: they never become
alerts nor ``jamming`` events. What matters is the jammer *failing*: off during its session means the
exam's protection failed.

**The band's level** (``level_db``, dB over the band's quiet level), per stack, on the raw stack
mean (no gain compensation), over the declared band's bins inside the tuned span (less the band
edges' ``guard_hz``, the span's ``edge_crop`` and the DC spike; a median, so that a few surveyed
stations in the band do not move it); the reference bins are those outside every declared band (and
its guard) that the survey found quiet (occupancy < ``quiet_occupancy``):

* with a survey: ``r_in`` = median over the band's bins of live / survey median, in dB; ``r_out``
  the same over the reference bins (a gain step lifts both; 0 without reference bins). The survey
  *held the jammer on* when its median in the band stands ``on_db`` or more over its median on the
  reference bins (``survey_db``); then the quiet level is that much below the survey's.
  ``level_db = r_in − r_out (+ survey_db when the survey held it on)``.
* without a survey: the live median in the band over the live median on the reference bins, dB.
* no reference bins and no survey: no measurement (state ``unknown``). With a survey but no
  reference bins (the band covers the whole span) the survey is taken as made with the jammer off.

The jammer is **on** while ``level_db ≥ on_db``. Its on level (``on_level_db``) is the survey's
when the survey held it on, else its first level measured on in each session.

**Rules** (timeline seconds; a session of a jammer is one of the engine's :class:`ExamSession`
whose name is in ``DeclaredJammer.sessions``, every session when that is None):

* during a session, measured off for ``off_after_s``: one alerting
  :class:`~detector.detection.events.DeclaredJammerEvent` (``state`` ``"off"``, severity high,
  ``first_seen_s`` the first off measurement); when it is measured on again or the session ends,
  the same event with ``ended`` True;
* outside its sessions and ``grace_s`` before each start and after each end, measured on for
  ``off_after_s``: one low-severity event (``state`` ``"on_outside_session"``), ended the same way
  (off again, or its grace/session begins);
* without any session known (no schedule, or no wall-clock time for the run) no event: the state
  is measured and shown (:meth:`DeclaredJammers.status`) but nothing is expected of it;
* while a jammer is measured on (any time), the emissions inside its band (± ``guard_hz``) are not
  tracked unless their peak stands ``through_db`` over the band's mean level (a transmitter
  seen through the jammer); ``missing`` events of surveyed stations in its band are dropped (the
  jammer drowns them). The generic ``jamming`` check never uses a declared band (the engine hands
  :func:`excluded_bands` to :class:`~detector.detection._jamming.JammingConfig`).

A band outside the tuned span is not measured: its state and hold keep their last values (a hopping
plan measures it when it visits). What the rule cannot tell apart: a jammer switched off from a
jammer whose antenna or room is now shielded from the vehicle (both look off), nor a declared jammer
from an undeclared one on the same band (both look on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detector.detection._decision import ExamSession
from detector.detection._results import Emission
from detector.detection.events import DECLARED_JAMMER_PREFIX, DeclaredJammerEvent, DetectionEvent, MissingEvent

__all__ = ["DeclaredJammer", "DeclaredJammerConfig", "DeclaredJammers", "excluded_bands"]


@dataclass(frozen=True)
class DeclaredJammer:
    """An exam-room jammer the site declares: its band ``f_lo_hz`` … ``f_hi_hz`` (Hz), ``name``,
    optional ``room``, ``sessions`` (names of the site's exam sessions it runs in; None: all),
    ``off_after_s`` (s measured off during a session, or on outside, before the event) and
    ``grace_s`` (s before a session's start and after its end when it may be either)."""

    name: str
    f_lo_hz: float
    f_hi_hz: float
    room: str | None = None
    sessions: tuple[str, ...] | None = None
    off_after_s: float = 10.0
    grace_s: float = 900.0

    @property
    def center_hz(self) -> float:
        return 0.5 * (self.f_lo_hz + self.f_hi_hz)

    @property
    def bandwidth_hz(self) -> float:
        return self.f_hi_hz - self.f_lo_hz

    def runs_in(self, session: ExamSession) -> bool:
        return self.sessions is None or session.name in self.sessions


@dataclass(frozen=True)
class DeclaredJammerConfig:
    """Knobs of the ``declared_jammer`` check (see the module docstring); levels in dB, Hz."""

    on_db: float = 6.0
    through_db: float = 12.0
    guard_hz: float = 25e3
    quiet_occupancy: float = 0.1
    min_bins: int = 8
    dc_half_width_hz: float = 2000.0
    edge_crop: float = 0.02


def excluded_bands(jammers: tuple[DeclaredJammer, ...], guard_hz: float = DeclaredJammerConfig.guard_hz
                   ) -> tuple[tuple[float, float], ...]:
    """The declared bands widened by ``guard_hz`` (Hz), for the ``jamming`` check to leave out."""
    return tuple((j.f_lo_hz - guard_hz, j.f_hi_hz + guard_hz) for j in jammers)


@dataclass(frozen=True)
class _Bins:
    inside: NDArray[np.intp]
    outside: NDArray[np.intp]
    survey_in_lin: NDArray[np.float64] | None  # survey median (linear) of the inside bins
    survey_out_lin: NDArray[np.float64] | None
    survey_db: float | None  # the survey's band level over its reference bins (dB)


@dataclass
class _State:
    state: Literal["unknown", "on", "off"] = "unknown"
    level_db: float | None = None
    since_s: float | None = None  # of the current state
    measured_s: float | None = None
    on_level_db: float | None = None
    on_level_session: str | None = None
    # the open episode: "off" (in session) or "on_outside_session"
    episode: Literal["off", "on_outside_session"] | None = None
    episode_since: float | None = None
    episode_session: str | None = None
    reported: bool = False
    survey_on: bool | None = None


def _median(x: NDArray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def _db(x: float) -> float:
    return 10.0 * math.log10(max(x, 1e-30))


@dataclass
class DeclaredJammers:
    """The ``declared_jammer`` check of a :class:`~detector.detection.engine.DetectionEngine` (one
    per engine, so per run): :meth:`check` once per stack, before tracking, gives the events;
    :meth:`keep` then filters the stack's emissions and :meth:`filter_events` its ``missing`` events."""

    jammers: tuple[DeclaredJammer, ...]
    sessions: tuple[ExamSession, ...] = ()
    config: DeclaredJammerConfig = field(default_factory=DeclaredJammerConfig)

    def __post_init__(self) -> None:
        self._bins: dict = {}
        self._state = [_State() for _ in self.jammers]
        self._on_bands: list[tuple[float, float, float]] = []  # (lo, hi, mean level dB) of the jammers on now
        #: per jammer measured on at least once: (lo, hi, mean level dB, stream time s) when last on
        self._last_on: dict[int, tuple[float, float, float, float]] = {}

    # --- measurement ---------------------------------------------------------------------------
    def _bins_for(self, freqs_hz: NDArray, aligned, center_hz: float | None) -> list[_Bins | None]:
        key = (id(aligned) if aligned is not None else None, center_hz, freqs_hz.size, float(freqs_hz[0]))
        got = self._bins.get(key)
        if got is not None:
            return got
        cfg = self.config
        m = freqs_hz.size
        bin_hz = abs(float(freqs_hz[1] - freqs_hz[0])) if m > 1 else 1.0
        valid = np.zeros(m, dtype=bool)
        crop = int(round(cfg.edge_crop * m))
        valid[crop:m - crop] = True
        if center_hz is not None:
            valid &= np.abs(freqs_hz - center_hz) > cfg.dc_half_width_hz + bin_hz
        med = None
        quiet = valid
        if aligned is not None:
            med = np.asarray(aligned.median_db, dtype=np.float64)
            occ = np.nan_to_num(np.asarray(aligned.occupancy, dtype=np.float64), nan=0.0)
            valid &= np.asarray(aligned.covered, dtype=bool) & np.isfinite(med)
            quiet = valid & (occ < cfg.quiet_occupancy)  # a survey made with the jammer on has its band occupied
        near_any = np.zeros(m, dtype=bool)
        for lo, hi in excluded_bands(self.jammers, cfg.guard_hz):
            near_any |= (freqs_hz >= lo) & (freqs_hz <= hi)
        outside = np.flatnonzero(quiet & ~near_any)
        if outside.size < cfg.min_bins:
            outside = outside[:0]
        out: list[_Bins | None] = []
        for j in self.jammers:
            inside = np.flatnonzero(valid & (freqs_hz >= j.f_lo_hz + cfg.guard_hz) & (freqs_hz <= j.f_hi_hz - cfg.guard_hz))
            if inside.size < cfg.min_bins:  # a narrow band: its own bins, no guard
                inside = np.flatnonzero(valid & (freqs_hz >= j.f_lo_hz) & (freqs_hz <= j.f_hi_hz))
            if inside.size < cfg.min_bins or (med is None and outside.size == 0):
                out.append(None)
                continue
            s_in = s_out = None
            survey_db = None
            if med is not None:
                s_in = 10.0 ** (med[inside] / 10.0)
                if outside.size:
                    s_out = 10.0 ** (med[outside] / 10.0)
                    survey_db = _db(_median(s_in)) - _db(_median(s_out))
            out.append(_Bins(inside, outside, s_in, s_out, survey_db))
        self._bins[key] = out
        return out

    def _level(self, b: _Bins, mean_lin: NDArray) -> tuple[float, bool]:
        """(level over the quiet level dB, survey held it on)."""
        live_in = mean_lin[b.inside].astype(np.float64)
        if b.survey_in_lin is None:
            return _db(_median(live_in)) - _db(_median(mean_lin[b.outside].astype(np.float64))), False
        r_in = _db(_median(live_in / b.survey_in_lin))
        r_out = 0.0
        if b.survey_out_lin is not None:
            r_out = _db(_median(mean_lin[b.outside].astype(np.float64) / b.survey_out_lin))
        survey_on = b.survey_db is not None and b.survey_db >= self.config.on_db
        return r_in - r_out + (b.survey_db if survey_on and b.survey_db is not None else 0.0), survey_on

    # --- schedule ------------------------------------------------------------------------------
    def _session(self, j: DeclaredJammer, t: float) -> ExamSession | None:
        return next((s for s in self.sessions if j.runs_in(s) and s.start_s <= t < s.end_s), None)

    def _in_grace(self, j: DeclaredJammer, t: float) -> bool:
        return any(s.start_s - j.grace_s <= t < s.end_s + j.grace_s for s in self.sessions if j.runs_in(s))

    # --- the check -----------------------------------------------------------------------------
    def check(self, freqs_hz: NDArray, aligned, mean_lin: NDArray, t_s: float, frame_s: float, *,
              center_hz: float | None = None) -> list[DetectionEvent]:
        """Measure every declared jammer in the stack (its mean ``mean_lin``, linear (m,), on the
        grid ``freqs_hz``, at stream time ``t_s``, its last frame) against the survey ``aligned``
        (None: without a survey); returns the ``declared_jammer`` events."""
        self._on_bands = []
        if freqs_hz.size < 2 or not self.jammers:
            return []
        events: list[DetectionEvent] = []
        for j, b, st in zip(self.jammers, self._bins_for(freqs_hz, aligned, center_hz), self._state):
            if b is None:
                continue
            level, survey_on = self._level(b, mean_lin)
            st.survey_on = survey_on
            on = level >= self.config.on_db
            state: Literal["on", "off"] = "on" if on else "off"
            if st.state != state:
                st.state, st.since_s = state, t_s
            st.level_db, st.measured_s = round(level, 2), t_s
            session = self._session(j, t_s)
            if on:
                band = (j.f_lo_hz - self.config.guard_hz, j.f_hi_hz + self.config.guard_hz,
                        _db(float(np.mean(mean_lin[b.inside], dtype=np.float64))))
                self._on_bands.append(band)
                self._last_on[id(j)] = (*band, t_s)
                if survey_on and b.survey_db is not None:
                    st.on_level_db = round(b.survey_db, 2)
                elif session is not None and st.on_level_session != session.name:
                    st.on_level_db, st.on_level_session = round(level, 2), session.name
            events.extend(self._rules(j, st, on, session, t_s, frame_s))
        return events

    def _rules(self, j: DeclaredJammer, st: _State, on: bool, session: ExamSession | None, t: float,
               frame_s: float) -> list[DetectionEvent]:
        out: list[DetectionEvent] = []
        if not self.sessions:
            return out
        want: Literal["off", "on_outside_session"] | None = None
        if session is not None and not on:
            want = "off"
        elif session is None and on and not self._in_grace(j, t):
            want = "on_outside_session"
        sname = session.name if session is not None else None
        if st.episode is not None and (want != st.episode or (want == "off" and sname != st.episode_session)):
            if st.reported:
                why = {"off": "back on" if on else "the session ended",
                       "on_outside_session": "off again" if not on else "a session (or its grace time) began"}[st.episode]
                out.append(self._event(j, st, t, frame_s, ended=True, why=why))
            st.episode, st.episode_since, st.episode_session, st.reported = None, None, None, False
        if want is None:
            return out
        if st.episode is None:
            st.episode, st.episode_since, st.episode_session = want, t, sname
        assert st.episode_since is not None
        if not st.reported and t - st.episode_since >= j.off_after_s:
            st.reported = True
            out.append(self._event(j, st, t, frame_s, ended=False, why=""))
        return out

    def _event(self, j: DeclaredJammer, st: _State, t: float, frame_s: float, *, ended: bool, why: str) -> DeclaredJammerEvent:
        assert st.episode is not None and st.episode_since is not None
        khz = int(round(j.center_hz / 1000.0))
        where = f" ({j.room})" if j.room else ""
        lvl = "n/a" if st.level_db is None else f"{st.level_db:+.1f} dB"
        ref = "" if st.on_level_db is None else f", {st.on_level_db:+.1f} dB when on"
        dur = t - st.episode_since
        if st.episode == "off":
            text = (f"declared jammer {j.name}{where} off during session {st.episode_session} for {dur:.0f} s "
                    f"(band level {lvl} over its quiet level{ref}): the exam's protection failed")
            tid, severity = f"{DECLARED_JAMMER_PREFIX}{khz}", "high"
        else:
            text = (f"declared jammer {j.name}{where} on outside its sessions for {dur:.0f} s "
                    f"(band level {lvl} over its quiet level)")
            tid, severity = f"{DECLARED_JAMMER_PREFIX}O{khz}", "low"
        reasons = (text,) if not ended else (text, f"ended: {why} at {t:.1f} s")
        return DeclaredJammerEvent(
            track_id=tid, center_hz=round(float(j.center_hz), 1), bandwidth_hz=round(float(j.bandwidth_hz), 1),
            first_seen_s=round(st.episode_since, 4), last_seen_s=round(t + frame_s, 4), jammer=j.name,
            state=st.episode, reasons=reasons, session=st.episode_session, room=j.room, ended=ended,
            level_db=st.level_db, on_level_db=st.on_level_db, severity=severity)

    # --- what the rest of the stack sees -------------------------------------------------------
    def keep(self, emissions: list[Emission]) -> list[Emission]:
        """``emissions`` less those of a jammer measured on in this stack (center in its band ±
        ``guard_hz``, peak less than ``through_db`` over the band's mean level)."""
        if not self._on_bands or not emissions:
            return emissions
        thr = self.config.through_db
        return [e for e in emissions
                if not any(lo <= e.center_hz <= hi and e.peak_dbfs < level + thr for lo, hi, level in self._on_bands)]

    def keep_since(self, emissions: list[Emission], t_start_s: float) -> list[Emission]:
        """:meth:`keep` for what a long window (``detection._integration``) found over stream time
        from ``t_start_s``: less the emissions of a jammer measured on at any time since then (the
        window mixes its on and off frames), by the level it had when last on."""
        bands = [(lo, hi, level) for lo, hi, level, t in self._last_on.values() if t >= t_start_s]
        if not bands or not emissions:
            return emissions
        thr = self.config.through_db
        return [e for e in emissions if not any(lo <= e.center_hz <= hi and e.peak_dbfs < level + thr for lo, hi, level in bands)]

    def filter_events(self, events: list[DetectionEvent]) -> list[DetectionEvent]:
        """``events`` less the ``missing`` events of surveyed stations inside a jammer measured on."""
        if not self._on_bands:
            return events
        return [e for e in events if not (isinstance(e, MissingEvent)
                                          and any(lo <= e.center_hz <= hi for lo, hi, _ in self._on_bands))]

    def status(self) -> list[dict[str, Any]]:
        """Per jammer: ``name``, ``room``, ``f_lo_hz``, ``f_hi_hz``, ``sessions`` (None: all),
        ``state`` (``on``/``off``/``unknown``: not measured yet), ``level_db`` (over the quiet
        level), ``on_level_db``, ``since_s`` (of the state), ``measured_s``, ``survey_on``,
        ``expected`` (``on`` in a session, ``either`` in grace time, ``off`` outside, None without
        a schedule) and ``alert`` (the open episode: ``off``/``on_outside_session``/None)."""
        out = []
        for j, st in zip(self.jammers, self._state):
            t = st.measured_s
            expected = None
            if self.sessions and t is not None:
                expected = "on" if self._session(j, t) is not None else ("either" if self._in_grace(j, t) else "off")
            out.append({"name": j.name, "room": j.room, "f_lo_hz": float(j.f_lo_hz), "f_hi_hz": float(j.f_hi_hz),
                        "sessions": None if j.sessions is None else list(j.sessions), "state": st.state,
                        "level_db": st.level_db, "on_level_db": st.on_level_db, "since_s": st.since_s,
                        "measured_s": st.measured_s, "survey_on": st.survey_on, "expected": expected,
                        "alert": st.episode if st.reported else None})
        return out
