"""Saving and loading a :class:`SiteBaseline` as one compressed ``.npz`` file.

Layout (format ``"examwatch-baseline"``, version 1):

============  ===========================  =====================================================
key           dtype, shape                 content
============  ===========================  =====================================================
``meta``      str (0-d)                    JSON object: ``format``, ``version``, ``site``,
                                           ``rbw_hz``, ``n_looks``, ``unit``, ``margin_db``,
                                           ``first_start``/``last_end`` (ISO 8601 UTC or null),
                                           ``span_s``, ``gain_db``, ``calibration_profile``,
                                           ``sources``, the level grid (``level_min_db``,
                                           ``level_step_db``, ``n_levels``) and ``hist_offset``
``freqs_hz``  float64 (m,)                 grid bin centers (Hz)
``hist``      int32 (or int64) (m, c)      histogram columns ``hist_offset … hist_offset+c−1``
                                           (the columns outside hold only zeros)
``occupied``  int64 (m,)                   occupied-frame counts
``frames``    int64 (m,)                   frames per bin
``sum_lin``   float64 (m,)                 sum of linear power
============  ===========================  =====================================================

The histogram is mostly zeros; trimming its empty level columns and ``np.savez_compressed`` keep
a file at a few bytes per bin and frame-level.
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from detector.baseline._model import (
    FORMAT_VERSION,
    LEVEL_MIN_DB,
    LEVEL_STEP_DB,
    N_LEVELS,
    SiteBaseline,
)
from detector.core.errors import InputError

__all__ = ["FORMAT_NAME", "save", "load"]

#: Value of the ``format`` key in a baseline file's metadata.
FORMAT_NAME = "examwatch-baseline"
_ARRAYS = ("freqs_hz", "hist", "occupied", "frames", "sum_lin")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def save(baseline: SiteBaseline, path: str | os.PathLike[str]) -> Path:
    """Write ``baseline`` to exactly ``path`` (no suffix added) as a compressed ``.npz`` file.

    The file is written beside ``path`` under a temporary name and renamed into place, so a
    crash never leaves a truncated baseline.

    Parameters
    ----------
    baseline : SiteBaseline
    path : str or path-like
        Destination; overwritten when it exists. Its directory must exist.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The file cannot be written.
    """
    dest = Path(path)
    nz = np.flatnonzero(baseline.hist.any(axis=0))
    lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
    hist = baseline.hist[:, lo:hi]
    if hist.size == 0 or int(hist.max()) <= np.iinfo(np.int32).max:
        hist = hist.astype(np.int32)
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "site": baseline.site,
        "rbw_hz": baseline.rbw_hz,
        "n_looks": baseline.n_looks,
        "unit": baseline.unit,
        "margin_db": baseline.margin_db,
        "first_start": _iso(baseline.first_start),
        "last_end": _iso(baseline.last_end),
        "span_s": baseline.span_s,
        "gain_db": baseline.gain_db,
        "calibration_profile": baseline.calibration_profile,
        "sources": list(baseline.sources),
        "level_min_db": LEVEL_MIN_DB,
        "level_step_db": LEVEL_STEP_DB,
        "n_levels": N_LEVELS,
        "hist_offset": lo,
    }
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:  # a file handle: np.savez would append ".npz" to a bare name
            np.savez_compressed(
                fh,
                meta=np.array(json.dumps(meta)),
                freqs_hz=np.asarray(baseline.freqs_hz, dtype=np.float64),
                hist=hist,
                occupied=np.asarray(baseline.occupied, dtype=np.int64),
                frames=np.asarray(baseline.frames, dtype=np.int64),
                sum_lin=np.asarray(baseline.sum_lin, dtype=np.float64),
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def load(path: str | os.PathLike[str]) -> SiteBaseline:
    """Read a baseline written by :func:`save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    SiteBaseline

    Raises
    ------
    detector.core.errors.InputError
        The file does not exist, is not an examwatch baseline (not an ``.npz``, no or foreign
        metadata, missing or inconsistent arrays), or has a newer format version than this code
        reads; the message is one sentence naming the file.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"baseline file {p} is a folder, not a baseline file (give the .npz that `examwatch survey` wrote).")
    if not p.is_file():
        raise InputError(f"baseline file {p} does not exist.")
    try:
        z = np.load(p, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InputError(f"{p} is not an examwatch baseline file (it is a bare .npy array).")
        with z:
            if "meta" not in z.files:
                raise InputError(f"{p} is not an examwatch baseline file (it has no baseline metadata).")
            meta = json.loads(str(z["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise InputError(f"{p} is not an examwatch baseline file (its format is not {FORMAT_NAME!r}).")
            version = meta.get("version")
            if not isinstance(version, int) or version < 1:
                raise InputError(f"{p} has an invalid baseline format version {version!r}.")
            if version > FORMAT_VERSION:
                raise InputError(
                    f"{p} is a version {version} baseline, newer than the version {FORMAT_VERSION} this "
                    "examwatch reads; upgrade examwatch."
                )
            if (meta.get("level_min_db"), meta.get("level_step_db"), meta.get("n_levels")) != (
                LEVEL_MIN_DB, LEVEL_STEP_DB, N_LEVELS
            ):
                raise InputError(f"{p} uses a level grid this examwatch does not know.")
            missing = [k for k in _ARRAYS if k not in z.files]
            if missing:
                raise InputError(f"{p} is not a complete baseline file (missing {', '.join(missing)}).")
            arrays = {k: z[k] for k in _ARRAYS}
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        # numpy's own message suggests loading with allow_pickle: never do that with an unknown file
        why = "not a zip/npz file" if "pickle" in str(exc) else str(exc)
        raise InputError(f"{p} is not a readable examwatch baseline file ({why}).") from None
    try:
        packed = arrays["hist"]
        off = int(meta.get("hist_offset", 0))
        m = arrays["freqs_hz"].shape[0]
        if packed.ndim != 2 or packed.shape[0] != m or not 0 <= off <= N_LEVELS - packed.shape[1]:
            raise ValueError(f"histogram of shape {packed.shape} at offset {off} does not fit {m} bins")
        hist = np.zeros((m, N_LEVELS), dtype=np.int64)
        hist[:, off : off + packed.shape[1]] = packed
        start = meta.get("first_start")
        end = meta.get("last_end")
        return SiteBaseline(
            arrays["freqs_hz"],
            hist,
            arrays["occupied"],
            arrays["frames"],
            arrays["sum_lin"],
            site=meta["site"],
            rbw_hz=meta["rbw_hz"],
            n_looks=meta["n_looks"],
            margin_db=meta["margin_db"],
            unit=meta["unit"],
            first_start=None if start is None else datetime.fromisoformat(start),
            last_end=None if end is None else datetime.fromisoformat(end),
            span_s=meta.get("span_s", 0.0),
            gain_db=meta.get("gain_db"),
            calibration_profile=meta.get("calibration_profile"),
            sources=meta.get("sources", []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{p} is a damaged examwatch baseline file ({exc}).") from None
