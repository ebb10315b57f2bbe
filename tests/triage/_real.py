"""Load a real recording of the manifest as complex128 (numpy only; test helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_DTYPES = {"cu8": np.uint8, "cs8": np.int8, "cs16": np.int16, "cf32": np.float32}


def load_iq(real_dir: Path, entry: dict) -> np.ndarray:
    raw = np.fromfile(real_dir / entry["file"], dtype=_DTYPES[entry["dtype"]], offset=entry["header_bytes"])
    raw = raw[: raw.size // 2 * 2].astype(np.float64)
    if entry["dtype"] == "cu8":
        raw = (raw - 127.5) / 127.5
    return raw[0::2] + 1j * raw[1::2]
