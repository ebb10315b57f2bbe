"""By-products of a stronger emission in the same capture (issue #18 items 1 and 2): emissions
marked ``artefact`` per frame (:func:`mark_byproducts`), tracks marked from their frames
(:func:`note_frame`) and kept from alerting (:func:`artefact_gate`).

**What is predicted.** Per frame, the strongest emissions (at most ``max_parents``, each with an
SNR of at least ``parent_min_snr_db``) are the *parents*; with their offsets ``f`` from the tuned
center (their peak bins), the frequencies below, folded (aliased) into the captured band
[−fs/2, fs/2) since the ADC samples the clipped waveform at fs:

* ``image``: −f, the IQ image about the tuned center (gain/phase imbalance of the I and Q paths;
  under clipping the image is strong too). Always predicted, overloaded or not.
* ``clipping``: k·f for k = −3, 5 (−7, … beyond the default ``single_k``): I and Q clipped each on its own (the cu8 rails) are an odd
  memoryless nonlinearity of cos and sin apart, whose complex output holds the terms
  e^{jkωt} with k ≡ 1 (mod 4) (an odd function of cos ωt has harmonics at odd k; combined as
  I + jQ, only k = 1, −3, 5, −7, … survive).
* ``harmonic``: k·f for the other k of ``single_k`` (2 and 3 by default: the even and the other
  odd orders, from a DC offset and asymmetric clipping). Higher orders fit the real recordings
  no better and cover ever more of the band (each prediction holds a few kHz).
* ``intermodulation``: a·f₁ + b·f₂ of two parents (both within ``pair_within_db`` of the strongest), a, b ≠ 0, |a| + |b| ≤ ``max_order``,
  a + b odd: the odd-order products 2f₁ − f₂, 2f₂ − f₁, 3f₁ − 2f₂, … (a + b = 1, the in-band
  products of a compressing front end, Razavi, *RF Microelectronics*, 2nd ed., §2.2) and those the
  I/Q clipping adds (a + b = −3, 5, …, e.g. −2f₁ − f₂).

Clipping, harmonic and intermodulation products are predicted only while the receiver is
overloaded (:mod:`detector.detection._overload`): without clipping or compression they lie far
under the floor, and a real emission on one of those frequencies must not be marked.

**Marking.** An emission (the *child*) is marked when its peak or center lies within
``tol_bins`` bins + half the product's width (|k| times the parent's occupied bandwidth, or
|a|·B₁ + |b|·B₂, at most ``max_width_hz``) + half its own bandwidth of a predicted frequency, and
every parent of that product is at least ``margin_db`` stronger (peak) in the same frame. The
nearest prediction (then the lowest order) names it (``artefact``, ``artefact_of``).

**Tracks.** A frame of a track is an artefact frame when every emission it took in that frame is
marked. A track is marked at its first artefact frame (unless it already alerts: an alert is never
withdrawn) and keeps the mark until it has been seen in ``unmark_frames`` frames in a row that were
not artefact frames (it outlived its parent, or moved off the product: it is real, and may alert).
A marked track is still tracked and reported (nothing is hidden), with ``artefact`` on its events;
it never alerts, and its emissions do not start tracks together with unmarked ones (so that the
products of two strong tones do not fuse them into one wide track).

**What it cannot tell apart.** A real transmitter that sits on a predicted frequency while its
parents are on and ≥ ``margin_db`` stronger is marked (it alerts once they go off or it outlives
them); a by-product weaker than ``margin_db`` under its parent only, or farther from the prediction
than the tolerance (a parent whose peak bin is not its carrier), is not marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ByproductConfig", "mark_byproducts", "note_frame", "artefact_gate", "single_products", "pair_products"]


@dataclass(frozen=True)
class ByproductConfig:
    """Knobs of the by-product rule (see the module docstring)."""

    margin_db: float = 6.0
    max_parents: int = 3
    parent_min_snr_db: float = 20.0
    #: one parent's products k·f predicted while overloaded (the image, k = −1, always)
    single_k: tuple[int, ...] = (-3, 5, -7, 9, -11, 2, 3)
    #: two parents' products a·f₁ + b·f₂ predicted while overloaded: |a| + |b| ≤ ``max_order``
    #: and a + b in ``pair_sums``, of parents within ``pair_within_db`` of the strongest (a product of
    #: a product and a tone is a higher-order product of the tones: predicted from the tones)
    max_order: int = 7
    pair_within_db: float = 15.0
    pair_sums: tuple[int, ...] = (1, -3, 5, -7)
    tol_bins: float = 2.0
    max_width_hz: float = 10e3
    unmark_frames: int = 10


def _kind_of(k: int) -> str:
    return "image" if k == -1 else "clipping" if k % 4 == 1 else "harmonic"


def single_products(ks: tuple[int, ...], *, overloaded: bool) -> list[tuple[int, str]]:
    """``(k, kind)`` of one parent's products k·f: (−1, image) always; with ``overloaded`` every k
    of ``ks`` (kinds: clipping for k ≡ 1 mod 4, else harmonic), lowest order first."""
    out = [(-1, "image")]
    if overloaded:
        out += [(k, _kind_of(k)) for k in sorted(set(ks) - {0, 1, -1}, key=abs)]
    return out


def pair_products(max_order: int, sums: tuple[int, ...]) -> list[tuple[int, int]]:
    """``(a, b)`` of two parents' products a·f₁ + b·f₂ (a, b ≠ 0, 3 ≤ |a| + |b| ≤ ``max_order``,
    a + b in ``sums``), lowest order first."""
    out = []
    for order in range(3, max_order + 1):
        for a in range(-order + 1, order):
            for sb in (1, -1):
                b = sb * (order - abs(a))
                if a and b and a + b in sums:
                    out.append((a, b))
    return out


def _fold(f: float, fs: float) -> float:
    return (f + fs / 2) % fs - fs / 2


def _coef(c: int, name: str) -> str:
    return ("" if c == 1 else "−" if c == -1 else f"{c}".replace("-", "−")) + name


def _mhz(f: float) -> str:
    return f"{f / 1e6:.4f} MHz"


def mark_byproducts(emissions: list, *, center_hz: float | None, sample_rate_hz: float | None, bin_hz: float,
                    overloaded: bool, config: ByproductConfig = ByproductConfig()) -> int:
    """Mark the by-products among one frame's ``emissions`` (:class:`~detector.detection.Emission`,
    absolute Hz; sets ``artefact`` and ``artefact_of`` in place); returns how many were marked.
    Needs the tuned ``center_hz`` and ``sample_rate_hz`` (None: sweeps, nothing is marked)."""
    if center_hz is None or not sample_rate_hz or len(emissions) < 2:
        return 0
    c = config
    fs = float(sample_rate_hz)
    parents = sorted((e for e in emissions if e.snr_db >= c.parent_min_snr_db), key=lambda e: -e.peak_dbfs)[: c.max_parents]
    if not parents:
        return 0
    strongest = parents[0].peak_dbfs
    # the parents of clipping, harmonic and intermodulation products: within ``pair_within_db`` of
    # the strongest (a product of a product is a higher-order product of the strong ones); the
    # image is predicted for every parent
    strong = [p for p in parents if p.peak_dbfs >= strongest - c.pair_within_db]
    # (frequency offset, tolerance, weakest parent's peak, kind, order, reason)
    preds: list[tuple[float, float, float, str, int, str]] = []
    singles = single_products(c.single_k, overloaded=overloaded)
    for p in parents:
        fp = p.peak_hz - center_hz
        for k, kind in (singles if any(p is q for q in strong) else singles[:1]):
            f = _fold(k * fp, fs)
            width = min(abs(k) * p.bandwidth_hz, c.max_width_hz)
            what = (f"image of {_mhz(p.peak_hz)} (mirrored about the tuned center {_mhz(center_hz)})" if k == -1
                    else f"{kind} {_coef(k, 'f')} of {_mhz(p.peak_hz)}")
            preds.append((f, c.tol_bins * bin_hz + width / 2, p.peak_dbfs, kind, abs(k), what))
    if overloaded and len(strong) >= 2:
        pairs = pair_products(c.max_order, c.pair_sums)
        for i in range(len(strong)):
            for j in range(i + 1, len(strong)):
                p, q = strong[i], strong[j]
                f1, f2 = p.peak_hz - center_hz, q.peak_hz - center_hz
                for a, b in pairs:
                    f = _fold(a * f1 + b * f2, fs)
                    width = min(abs(a) * p.bandwidth_hz + abs(b) * q.bandwidth_hz, c.max_width_hz)
                    terms = f"{_coef(a, 'f1')}{'+' if b > 0 else ''}{_coef(b, 'f2')}"
                    what = f"intermodulation {terms} of {_mhz(p.peak_hz)} (f1) and {_mhz(q.peak_hz)} (f2)"
                    preds.append((f, c.tol_bins * bin_hz + width / 2, min(p.peak_dbfs, q.peak_dbfs), "intermodulation",
                                  abs(a) + abs(b), what))
    if not preds:
        return 0
    pf = np.array([x[0] for x in preds])
    tol = np.array([x[1] for x in preds])
    weakest = np.array([x[2] for x in preds])
    order = np.array([x[4] for x in preds])
    marked = 0
    for e in emissions:
        if e.peak_dbfs > strongest - c.margin_db:
            continue
        d = np.minimum(np.abs(pf - (e.peak_hz - center_hz)), np.abs(pf - (e.center_hz - center_hz)))
        ok = (d <= tol + e.bandwidth_hz / 2) & (weakest >= e.peak_dbfs + c.margin_db)
        if not ok.any():
            continue
        idx = np.flatnonzero(ok)
        best = int(idx[np.lexsort((order[idx], d[idx]))[0]])  # the nearest prediction, then the lowest order
        e.artefact, e.artefact_of = preds[best][3], preds[best][5]
        marked += 1
    return marked


def note_frame(tr, group: list) -> None:
    """Update a track's artefact mark from the emissions ``group`` it took in this frame (see the
    module docstring)."""
    if group and all(getattr(e, "artefact", None) for e in group):
        tr.artefact_frames += 1
        tr.clean_run = 0
        if tr.artefact is None and not tr.alert:
            first = max((e for e in group if e.artefact), key=lambda e: e.peak_dbfs)  # the strongest names it
            tr.artefact, tr.artefact_of = first.artefact, first.artefact_of
    else:
        tr.clean_run += 1
        if tr.artefact is not None and tr.clean_run >= ByproductConfig.unmark_frames:
            tr.notes.append(f"was marked {tr.artefact} ({tr.artefact_of}) but outlived it: "
                            f"{tr.clean_run} frames in a row without the stronger emission's product")
            tr.artefact = tr.artefact_of = None


def artefact_gate(tr) -> bool:
    """True (and the track kept from alerting, with the reason) when ``tr`` is marked as an
    artefact and does not alert yet; the caller then skips the alert decision."""
    if tr.artefact is None or tr.alert:
        return False
    tr.alert_reasons = [f"artefact: {tr.artefact_of}"]
    return True
