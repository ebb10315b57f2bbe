"""Alert decisions from tracks, with reasons and an explainable suspicion score.

A track becomes an alert when it was flagged in K of the last M observed frames (persistence; frames
left out of detection for NaN/inf samples are not counted, :meth:`~detector.detection.Tracker.blind`) or repeats
in bursts, unless a whitelisted channel explains it (and it is not far above its baseline level).
Where the baseline covers it, its peak must exceed the survey's high quantile by ``min_excess_db``;
on a channel that was on the air most of the survey (occupancy ≥ ``known_channel_occupancy``:
a known station) by ``known_channel_excess_db`` (an out-of-profile level, THEORY §1.4), so that
the fading of a moving receiver does not alert on known stations.
The severity comes from a score whose terms are reported separately (``score_terms``):

* ``excess``   — dB over the baseline's high quantile (or the SNR over the floor without baseline),
  0.1 per dB, at most 3;
* ``persistence`` — duty cycle and repeated bursts, up to 2 (+0.5 if the bursts are periodic);
* ``class``    — nfm_voice 2, fsk_data 2, pulsed 1, carrier 1, unknown 0.5, wideband 0;
* ``band``     — 1.5 in bands favoured by cheating devices (PMR446, 433 MHz SRD, 150–174 and
  400–470 MHz two-way radio, 868 MHz SRD), else 0;
* ``schedule`` — 2 when the track started inside an exam session (1 more when it started more
  than a minute after the session began), 0 when it was already on before the session.

Severity: score ≥ 7 high, ≥ 4 medium, else low.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.detection._tracking import Track
from detector.detection._whitelist import Whitelist

__all__ = ["DecisionConfig", "CHEATING_BANDS_HZ", "decide", "score_track", "ExamSession"]

CHEATING_BANDS_HZ = (
    (446.0e6, 446.2e6, "PMR446"),
    (433.05e6, 434.79e6, "433 MHz SRD"),
    (150e6, 174e6, "VHF two-way"),
    (400e6, 470e6, "UHF two-way"),
    (863e6, 870e6, "868 MHz SRD"),
)

_CLASS_SCORE = {"nfm_voice": 2.0, "fsk_data": 2.0, "pulsed": 1.0, "carrier": 1.0, "unknown": 0.5, "wideband": 0.0}


@dataclass(frozen=True)
class ExamSession:
    """An exam session in scene/recording seconds (``start_s``, ``end_s``)."""

    start_s: float
    end_s: float
    name: str = "exam"


@dataclass(frozen=True)
class DecisionConfig:
    k: int = 3
    m: int = 5
    min_bursts: int = 3
    min_snr_db: float = 6.0
    min_excess_db: float = 3.0
    known_channel_occupancy: float = 0.5
    known_channel_excess_db: float = 10.0


def _band(f_hz: float) -> str | None:
    for lo, hi, name in CHEATING_BANDS_HZ:
        if lo <= f_hz <= hi:
            return name
    return None


def score_track(tr: Track, sessions: tuple[ExamSession, ...] = ()) -> tuple[float, dict[str, float], list[str]]:
    """Suspicion score of a track, its terms and the reasons in words."""
    reasons: list[str] = []
    terms: dict[str, float] = {}
    if tr.excess_db is not None:
        terms["excess"] = round(min(3.0, max(0.0, tr.excess_db) * 0.1), 2)
        reasons.append(f"{tr.excess_db:.1f} dB over the site baseline")
    else:
        terms["excess"] = round(min(3.0, max(0.0, tr.snr_db) * 0.1), 2)
        reasons.append(f"SNR {tr.snr_db:.1f} dB over the noise floor (no baseline here)")
    pers = min(2.0, 2.0 * tr.duty_cycle + 0.25 * max(0, tr.bursts - 1))
    if tr.burst_period_s is not None:
        pers += 0.5
        reasons.append(f"periodic bursts every {tr.burst_period_s:.2f} s")
    terms["persistence"] = round(pers, 2)
    reasons.append(f"{tr.frames_active} active frames, {tr.bursts} burst(s), duty cycle {tr.duty_cycle:.2f}")
    terms["class"] = _CLASS_SCORE.get(tr.classification, 0.5)
    reasons.append(f"class {tr.classification}")
    band = _band(tr.center_hz)
    terms["band"] = 1.5 if band else 0.0
    if band:
        reasons.append(f"in the {band} band favoured by cheating devices")
    sched = 0.0
    for s in sessions:
        if s.start_s <= tr.first_seen_s <= s.end_s:
            sched = 2.0 + (1.0 if tr.first_seen_s - s.start_s > 60 else 0.0)
            reasons.append(f"started {tr.first_seen_s - s.start_s:.0f} s into {s.name}")
            break
    terms["schedule"] = sched
    return round(sum(terms.values()), 2), terms, reasons


def decide(
    tr: Track,
    *,
    config: DecisionConfig = DecisionConfig(),
    whitelist: Whitelist | None = None,
    site: str | None = None,
    sessions: tuple[ExamSession, ...] = (),
    baseline_used: bool = False,
) -> bool:
    """Update ``tr.alert``, ``alert_reasons``, ``score_terms`` and ``severity``; return whether it alerts.

    Once alerted, a track stays alerted.
    """
    score, terms, reasons = score_track(tr, sessions)
    tr.score_terms = terms
    if not tr.alert:
        # the last M observed frames (``recent`` is on the track's observed clock: blind frames,
        # left out of detection, are no evidence either way)
        recent = [t for t in tr.recent if t >= tr.last_seen_s - tr.blind_s - (config.m - 0.5) * tr.frame_s]
        persistent = len(recent) >= config.k
        repeated = tr.bursts >= config.min_bursts
        strong = tr.snr_db >= config.min_snr_db
        if (persistent or repeated) and strong:
            why = f"persistent: {len(recent)} of the last {config.m} frames" if persistent else f"repeated: {tr.bursts} bursts"
            if baseline_used and tr.excess_db is None:
                return False
            if tr.excess_db is not None and tr.excess_db < config.min_excess_db:
                # the baseline covers it and its peak is not above the survey's high quantile
                return False
            if (tr.baseline_occupancy or 0.0) >= config.known_channel_occupancy and \
                    (tr.excess_db or 0.0) < config.known_channel_excess_db:
                # a channel on the air most of the survey (a known station): only an out-of-profile
                # level counts, not the fading and shadowing excursions of a moving receiver
                return False
            if whitelist is not None:
                ch = whitelist.match(tr.center_hz, site=site)
                if ch is not None and ch.level_dbfs is not None:
                    # whitelisted by a dismissal: far above the level it was dismissed at
                    above = tr.peak_dbfs - ch.level_dbfs
                    if not above >= whitelist.far_above_db:
                        return False
                    tr.notes.append(f"whitelisted channel {ch.name} but {above:.1f} dB above its level when dismissed")
                elif ch is not None:
                    # "far above its baseline level" needs a level: the survey must have seen the
                    # channel on the air (occupancy > 1 %); a channel quiet in the survey stays
                    # whitelisted whatever its level
                    seen = (tr.baseline_occupancy or 0.0) > 0.01
                    far = seen and tr.excess_db is not None and tr.excess_db >= whitelist.far_above_db
                    if not far:
                        return False
                    tr.notes.append(f"whitelisted channel {ch.name} but {tr.excess_db:.1f} dB above its baseline level")
            tr.alert = True
            tr.alert_reasons = [why, *tr.notes, *reasons]
    else:
        tr.alert_reasons = [tr.alert_reasons[0], *tr.notes, *reasons]
    tr.severity = "high" if score >= 7 else "medium" if score >= 4 else "low"
    return tr.alert
