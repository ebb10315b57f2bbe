"""Cross-site incidents (issue #22 item 4): the same emission seen at several exam sites at once.

An organised group feeds answers to several sites from one transmitter (a high one, or a relay
network on one channel), or starts several transmitters together. The center links alerts of
*different sites* into one incident when they are the same emission:

* **frequency**: their centers differ by at most ``freq_tol_hz`` + ``freq_tol_ppm`` × frequency
  (default 5 kHz + 5 ppm: two calibrated dongles, each within a few ppm, and the width of a
  12.5 kHz channel's estimate);
* **onset**: their first sightings are at most ``onset_tol_s`` apart (default 10 s: the vehicles'
  clocks are GPS/NTP-synchronised to well under a second; detection delays of a few seconds);
* **class**: the same classification (``nfm_voice`` with ``nfm_voice``…; an alert still
  ``unknown`` links only with ``unknown``).

Links are transitive (a single-linkage cluster: union–find over the qualifying pairs); an
incident needs alerts of at least two sites. Alerts of one site never form an incident on their
own (two vehicles at one site seeing one transmitter are one site's business). Computed from the
stored alerts on every request, so an incident's membership follows the alerts as they are
updated; its id is derived from its earliest alert (``I-`` + that alert's id without ``A-``), stable
while that alert stays in it.

Pure: alerts in, incidents out, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

__all__ = ["Incident", "link_incidents", "FREQ_TOL_HZ", "FREQ_TOL_PPM", "ONSET_TOL_S"]

FREQ_TOL_HZ = 5000.0
FREQ_TOL_PPM = 5.0
ONSET_TOL_S = 10.0


@dataclass(frozen=True)
class Incident:
    """Alerts of several sites linked as one emission (module docstring)."""

    id: str
    center_hz: float            #: median of the members' centers
    classification: str | None
    first_seen: datetime        #: the earliest member's first sighting
    last_seen: datetime
    sites: tuple[str, ...]
    alerts: tuple[dict, ...]    #: per member: alert_id, site, vehicle_id, center_hz, first_seen, status, severity
    spread_hz: float            #: max − min of the members' centers
    onset_spread_s: float       #: latest − earliest first sighting

    def as_dict(self) -> dict:
        return {"id": self.id, "center_hz": self.center_hz, "classification": self.classification,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "sites": list(self.sites),
                "alerts": list(self.alerts), "spread_hz": self.spread_hz, "onset_spread_s": self.onset_spread_s}


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def link_incidents(alerts: Iterable[object], *, freq_tol_hz: float = FREQ_TOL_HZ, freq_tol_ppm: float = FREQ_TOL_PPM,
                   onset_tol_s: float = ONSET_TOL_S) -> list[Incident]:
    """The incidents among ``alerts`` (objects with ``id``, ``site``, ``center_hz``,
    ``classification``, ``first_seen``, ``last_seen`` (aware datetimes), and optionally
    ``vehicle_id``, ``status``, ``severity``), newest first.

    Alerts are sorted by onset, so each one is compared only with those that started within
    ``onset_tol_s`` before it: O(n log n + pairs).

    Raises
    ------
    ValueError
        A negative tolerance.
    """
    if freq_tol_hz < 0 or freq_tol_ppm < 0 or onset_tol_s < 0:
        raise ValueError("the tolerances must be ≥ 0")
    items: Sequence = sorted(alerts, key=lambda a: (a.first_seen, a.id))
    n = len(items)
    parent = list(range(n))
    t = [a.first_seen.timestamp() for a in items]
    for j in range(n):
        b = items[j]
        i = j - 1
        while i >= 0 and t[j] - t[i] <= onset_tol_s:
            a = items[i]
            if a.site != b.site and (a.classification or None) == (b.classification or None):
                tol = freq_tol_hz + freq_tol_ppm * 1e-6 * max(a.center_hz, b.center_hz)
                if abs(a.center_hz - b.center_hz) <= tol:
                    ra, rb = _find(parent, i), _find(parent, j)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
            i -= 1
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(_find(parent, k), []).append(k)
    out = []
    for root, members in groups.items():
        sites = sorted({items[k].site for k in members})
        if len(sites) < 2:
            continue
        ms = [items[k] for k in members]
        freqs = sorted(a.center_hz for a in ms)
        mid = len(freqs) // 2
        median = freqs[mid] if len(freqs) % 2 else 0.5 * (freqs[mid - 1] + freqs[mid])
        first = items[root]
        out.append(Incident(
            id="I-" + str(first.id).removeprefix("A-"), center_hz=round(median, 1), classification=first.classification,
            first_seen=min(a.first_seen for a in ms), last_seen=max(a.last_seen for a in ms), sites=tuple(sites),
            alerts=tuple({"alert_id": a.id, "site": a.site, "vehicle_id": getattr(a, "vehicle_id", None),
                          "center_hz": a.center_hz, "first_seen": a.first_seen, "status": getattr(a, "status", None),
                          "severity": getattr(a, "severity", None)} for a in ms),
            spread_hz=round(freqs[-1] - freqs[0], 1),
            onset_spread_s=round(max(t[k] for k in members) - min(t[k] for k in members), 3)))
    out.sort(key=lambda inc: inc.first_seen, reverse=True)
    return out
