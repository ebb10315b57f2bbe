"""The live view of the monitor for the API: the latest spectrum (and its JSON, cached per frame)
and a ring of recent frames for waterfalls.

:class:`LiveView` is updated by the processing after every step and read by the API threads; it
owns its caches (:class:`SpectrumJsonCache`, the waterfall ring and its frame mark) explicitly.
"""

from __future__ import annotations

import json
from collections import deque

import numpy as np

__all__ = ["FrameRing", "LiveView", "SpectrumJsonCache", "Waterfall"]


class SpectrumJsonCache:
    """The serialised latest spectrum, kept while the snapshot is the same (the API's hot path)."""

    def __init__(self) -> None:
        self._key: int | None = None
        self._body: bytes | None = None

    def get(self, snap: dict, render) -> bytes:
        key = id(snap["spectrum"])
        if self._key != key or self._body is None:
            body = json.dumps(render(snap), separators=(",", ":")).encode()
            self._key, self._body = key, body
        return self._body


class Waterfall:
    """Recent frames: (offset_s, freqs_hz, power dB float32) of one frame in ``every`` (about 5
    minutes at 10 ms frames, every 10th frame and 3000 rows)."""

    def __init__(self, every: int = 10, maxlen: int = 3000) -> None:
        self.every = every
        self._rows: deque = deque(maxlen=maxlen)
        self._mark = -1  # frames_processed // every of the last row kept

    def offer(self, frames_processed: int, spec) -> bool:
        """Keep ``spec`` when it is the first of a new group of ``every`` frames."""
        mark = frames_processed // self.every
        if mark == self._mark:
            return False
        self._mark = mark
        self._rows.append((spec.offset_s, spec.freqs_hz, spec.power))
        return True

    def view(self, seconds: float | None = None) -> dict | None:
        rows = list(self._rows)
        if not rows:
            return None
        freqs = rows[-1][1]
        rows = [r for r in rows if r[1].size == freqs.size and r[1][0] == freqs[0]]
        if seconds is not None:
            rows = [r for r in rows if r[0] >= rows[-1][0] - seconds]
        return {"times_s": np.array([r[0] for r in rows]), "freqs_hz": freqs,
                "power_db": np.vstack([r[2] for r in rows]).astype(np.float32)}

    def __len__(self) -> int:
        return len(self._rows)


class FrameRing:
    """The last ``maxlen`` frames (one per processing step: the step's last frame), numbered 1, 2, …
    for live streams that send what arrived since they last looked (:meth:`after`)."""

    def __init__(self, maxlen: int = 64) -> None:
        self._frames: deque = deque(maxlen=maxlen)
        self.seq = 0

    def offer(self, spec, result) -> None:
        """Keep ``spec`` (a :class:`~detector.core.types.Spectrum`) and its ``FrameResult`` as the next frame."""
        if self._frames and self._frames[-1][1] is spec:
            return  # the same frame again (a step without new frames)
        self.seq += 1
        self._frames.append((self.seq, spec, result))

    def after(self, seq: int) -> list[tuple]:
        """``(seq, spectrum, result)`` of the frames numbered above ``seq`` still kept, oldest first."""
        return [f for f in list(self._frames) if f[0] > seq]

    def __len__(self) -> int:
        return len(self._frames)


class LiveView:
    """The latest spectrum and the waterfall of ``engine`` (see the module docstring)."""

    def __init__(self, engine, *, waterfall: Waterfall | None = None) -> None:
        self.engine = engine
        self.latest: dict | None = None
        self.waterfall = waterfall if waterfall is not None else Waterfall()
        #: every step's frame, numbered, for the live spectrum stream (``GET /api/v1/spectrum/stream``)
        self.frames = FrameRing()
        self._json = SpectrumJsonCache()

    def update(self) -> None:
        """After a processing step: the engine's last spectrum (in dBm when the calibration profile
        has a power table for this gain) becomes the latest."""
        eng = self.engine
        if eng.last_spectrum is None:
            return
        spec = eng.calibrated_spectrum()
        self.latest = {"spectrum": spec, "result": eng.last_result}
        self.waterfall.offer(eng.frames_processed, spec)
        self.frames.offer(spec, eng.last_result)

    def baseline_quantiles(self, spec) -> tuple[np.ndarray, np.ndarray] | None:
        """The site baseline's p50 and p99 on ``spec``'s grid, in ``spec``'s unit (dBFS, or dBm with
        its ``meta["dbm_offset_db"]``): two float64 arrays of shape (n,), NaN where the baseline does
        not cover a bin; None without a baseline (or one that does not cover the grid)."""
        eng = self.engine
        if getattr(eng, "baseline", None) is None:
            return None
        aligned = eng._aligned_for(spec.freqs_hz, spec.rbw_hz)  # noqa: SLF001
        if aligned is None:
            return None
        off = spec.meta.get("dbm_offset_db") if spec.unit == "dBm" else None
        add = off if off is not None else 0.0
        return (np.asarray(aligned.median_db, dtype=np.float64) + add, np.asarray(aligned.p99_db, dtype=np.float64) + add)

    @staticmethod
    def noise_floor_db(spec, result) -> float | None:
        """The frame's noise floor in ``spec``'s unit (dB; in dBm the median of the bins' dBm
        offsets is added); None when the frame has none."""
        floor = None if result is None else result.noise_floor_dbfs
        if floor is None or floor != floor:
            return None
        off = spec.meta.get("dbm_offset_db") if spec.unit == "dBm" else None
        return float(floor) + (float(np.median(off)) if off is not None else 0.0)

    def spectrum_json(self) -> bytes | None:
        snap = self.latest
        return None if snap is None else self._json.get(snap, self._render)

    def spectrum(self) -> dict | None:
        snap = self.latest
        return None if snap is None else self._render(snap)

    def _render(self, snap: dict) -> dict:
        spec, res = snap["spectrum"], snap["result"]
        off = spec.meta.get("dbm_offset_db") if spec.unit == "dBm" else None
        floor = None if res is None else res.noise_floor_dbfs
        out = {"freqs_hz": spec.freqs_hz.tolist(), "power": np.round(spec.power.astype(np.float64), 2).tolist(), "unit": spec.unit,
               "rbw_hz": spec.rbw_hz, "center_hz": spec.center_hz, "offset_s": spec.offset_s, "n_looks": spec.n_looks,
               "noise_floor_dbfs": floor,
               "noise_floor_dbm": None if off is None or floor is None or floor != floor else round(floor + float(np.median(off)), 2),
               "emissions": [] if res is None else [
                   {"center_hz": e.center_hz, "bandwidth_hz": e.bandwidth_hz, "peak_dbfs": e.peak_dbfs, "snr_db": e.snr_db,
                    "excess_db": e.excess_db} for e in res.emissions],
               "baseline": None}
        eng = self.engine
        aligned = eng._aligned_for(spec.freqs_hz, spec.rbw_hz) if eng.baseline is not None else None  # noqa: SLF001
        if aligned is not None:
            def clean(a):
                a = np.asarray(a, dtype=np.float64) + (off if off is not None else 0.0)  # same unit as the spectrum
                a = np.round(a, 2)
                return [None if v != v else v for v in a.tolist()]
            out["baseline"] = {"median_db": clean(aligned.median_db), "p90_db": clean(aligned.p90_db),
                               "p99_db": clean(aligned.p99_db)}
        return out
