"""Recorded IQ: raw interleaved files, WAV IQ and SigMF, each read block by block."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from detector.dsp import cf32_to_complex64, cs8_to_complex64, cs16_to_complex64, cu8_to_complex64
from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.sources._base import DEFAULT_BLOCK_SAMPLES, IQSource, SourceInfo
from detector.sources._names import RAW_FORMATS
from detector.core.types import IQBlock

__all__ = ["RawIQFile", "WavIQFile", "SigMFFile", "SIGMF_DATATYPES"]

_CONVERT = {
    "cu8": cu8_to_complex64,
    "cs8": cs8_to_complex64,
    "cs16": lambda raw: cs16_to_complex64(raw.astype(np.int16, copy=False)),
    "cf32": lambda raw: cf32_to_complex64(raw.astype(np.float32, copy=False)),
}

#: SigMF ``core:datatype`` → raw format of this package.
SIGMF_DATATYPES = {"cu8": "cu8", "ci8": "cs8", "ci16_le": "cs16", "cf32_le": "cf32"}


def _blocks_from_offsets(
    read, n_samples: int, block_samples: int, info: SourceInfo
) -> Iterator[IQBlock]:
    if block_samples < 1:
        raise ValueError(f"block_samples must be ≥ 1, got {block_samples}")
    pos = 0
    while pos < n_samples:
        count = min(block_samples, n_samples - pos)
        samples = read(pos, count)
        offset_s = pos / info.sample_rate_hz
        start = info.start + timedelta(seconds=offset_s) if info.start else None
        yield IQBlock(samples, info.center_hz, info.sample_rate_hz, start=start, offset_s=offset_s, retuned=pos == 0)
        pos += count


class RawIQFile(IQSource):
    """A raw interleaved I/Q file (``cu8``, ``cs8``, ``cs16`` LE, ``cf32`` LE).

    Parameters
    ----------
    path : path
    sample_format : {"cu8", "cs8", "cs16", "cf32"}
    sample_rate_hz, center_hz : float
    start : datetime, optional
        UTC time of the first sample, when known.
    header_bytes : int
        Bytes to skip at the start.

    Raises
    ------
    InputError
        Missing or empty file, or a size that is not a whole number of samples (a truncated last
        sample): the message names the file and the byte counts.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_format: str,
        sample_rate_hz: float,
        center_hz: float,
        start: datetime | None = None,
        header_bytes: int = 0,
    ) -> None:
        self.path = Path(path)
        if sample_format not in RAW_FORMATS:
            raise InputError(f"unknown sample format {sample_format!r}; use one of {', '.join(RAW_FORMATS)}")
        dtype, bytes_per_sample = RAW_FORMATS[sample_format]
        self._dtype = np.dtype(dtype)
        self._convert = _CONVERT[sample_format]
        self._header = header_bytes
        size = self.path.stat().st_size - header_bytes
        if size <= 0:
            raise InputError(f"{self.path}: file is empty (no IQ samples)")
        if size % bytes_per_sample:
            raise InputError(
                f"{self.path}: {size} bytes is not a whole number of {sample_format} samples "
                f"({bytes_per_sample} bytes each): the last sample is truncated"
            )
        self._bps = bytes_per_sample
        self.info = SourceInfo(
            kind="raw",
            name=self.path.name,
            center_hz=center_hz,
            sample_rate_hz=sample_rate_hz,
            sample_format=sample_format,
            n_samples=size // bytes_per_sample,
            start=start,
        )
        self._fh = None

    def _read(self, pos: int, count: int) -> np.ndarray:
        if self._fh is None:
            self._fh = open(self.path, "rb")
        self._fh.seek(self._header + pos * self._bps)
        raw = np.fromfile(self._fh, dtype=self._dtype, count=2 * count)
        if raw.size != 2 * count:
            raise InputError(f"{self.path}: file shrank while reading (expected {count} samples at {pos})")
        if not self._dtype.isnative:
            raw = raw.astype(self._dtype.newbyteorder("="))
        return self._convert(raw)

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        """Yield the file as :class:`IQBlock`s of ``block_samples`` (the last may be shorter)."""
        try:
            yield from _blocks_from_offsets(self._read, self.info.n_samples, block_samples, self.info)
        finally:
            self._close()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class WavIQFile(IQSource):
    """A stereo WAV IQ recording (left = I, right = Q), int16, int32, uint8 or float32.

    The sample type and rate come from the WAV header, never from ``--format``; the center
    frequency must be given. Read with ``scipy.io.wavfile`` memory-mapped, so blocks are sliced
    without loading the file.
    """

    def __init__(self, path: str | Path, *, center_hz: float, sample_rate_hz: float | None = None, start: datetime | None = None) -> None:
        import scipy.io.wavfile

        self.path = Path(path)
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: file is empty")
        try:
            rate, data = scipy.io.wavfile.read(self.path, mmap=True)
        except Exception as exc:  # noqa: BLE001 - scipy's reader fails in many ways on a broken header
            raise InputError(f"{self.path}: not a readable WAV file ({type(exc).__name__}: {exc})") from None
        if data.ndim != 2 or data.shape[1] != 2:
            raise InputError(f"{self.path}: an IQ WAV needs 2 channels (I, Q); this one has {1 if data.ndim == 1 else data.shape[1]}")
        if data.shape[0] == 0:
            raise InputError(f"{self.path}: WAV holds no samples")
        if sample_rate_hz is not None and abs(sample_rate_hz - rate) > 0.5:
            raise InputError(f"{self.path}: --rate {sample_rate_hz:g} contradicts the WAV header's {rate} Hz")
        kinds = {np.dtype("int16"): 32768.0, np.dtype("int32"): 2147483648.0, np.dtype("float32"): 1.0, np.dtype("float64"): 1.0}
        if data.dtype == np.uint8:
            self._scale, self._zero = 1 / 127.5, 127.5
        elif data.dtype in kinds:
            self._scale, self._zero = 1.0 / kinds[data.dtype], 0.0
        else:
            raise InputError(f"{self.path}: WAV sample type {data.dtype} is not supported (int16, int32, uint8, float32)")
        self._data = data
        self.info = SourceInfo(
            kind="wav", name=self.path.name, center_hz=center_hz, sample_rate_hz=float(rate),
            sample_format=f"wav-{data.dtype}", n_samples=int(data.shape[0]), start=start,
        )

    def _read(self, pos: int, count: int) -> np.ndarray:
        chunk = np.asarray(self._data[pos : pos + count], dtype=np.float32)
        if self._zero:
            chunk = chunk - np.float32(self._zero)
        if self._scale != 1.0:
            chunk = chunk * np.float32(self._scale)
        return np.ascontiguousarray(chunk).view(np.complex64).reshape(-1)

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        yield from _blocks_from_offsets(self._read, self.info.n_samples, block_samples, self.info)

    def _close(self) -> None:
        self._data = None


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class SigMFFile(IQSource):
    """A SigMF recording (``.sigmf-meta`` + ``.sigmf-data``) read through the ``sigmf`` package.

    Supported ``core:datatype``: ``cu8``, ``ci8``, ``ci16_le``, ``cf32_le``. Sample rate from
    ``core:sample_rate``, center frequency from the first capture's ``core:frequency``, start time
    from ``core:datetime``; options override missing fields only (a contradiction is an error).
    """

    def __init__(self, path: str | Path, *, center_hz: float | None = None, sample_rate_hz: float | None = None) -> None:
        from sigmf import sigmffile
        from sigmf.error import SigMFError

        p = Path(path)
        meta = p if p.suffix == ".sigmf-meta" else p.with_suffix(".sigmf-meta")
        if not meta.exists():
            raise InputError(f"{meta}: SigMF metadata file not found")
        try:
            raw_meta = json.loads(read_text(meta, "SigMF metadata"))
            datatype = raw_meta["global"]["core:datatype"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{meta}: not valid SigMF metadata ({exc})") from None
        if datatype not in SIGMF_DATATYPES:
            raise InputError(f"{meta}: SigMF datatype {datatype!r} is not supported ({', '.join(SIGMF_DATATYPES)})")
        data = meta.with_suffix(".sigmf-data")
        if not data.exists() or data.stat().st_size == 0:
            raise InputError(f"{data}: SigMF data file missing or empty")
        _, bps = RAW_FORMATS[SIGMF_DATATYPES[datatype]]
        if data.stat().st_size % bps:
            raise InputError(f"{data}: {data.stat().st_size} bytes is not a whole number of {datatype} samples: "
                             "the last sample is truncated")
        try:
            self._sf = sigmffile.fromfile(str(meta), skip_checksum=True)
        except (SigMFError, ValueError, OSError) as exc:
            raise InputError(f"{meta}: SigMF file rejected: {exc}") from None
        g = self._sf.get_global_info()
        caps = self._sf.get_captures() or [{}]
        rate = g.get("core:sample_rate", sample_rate_hz)
        freq = caps[0].get("core:frequency", center_hz)
        if rate is None:
            raise InputError(f"{meta}: no core:sample_rate; give --rate")
        if freq is None:
            raise InputError(f"{meta}: no core:frequency in the first capture; give --center")
        if sample_rate_hz is not None and abs(float(sample_rate_hz) - float(rate)) > 0.5:
            raise InputError(f"{meta}: --rate {sample_rate_hz:g} contradicts core:sample_rate {rate}")
        self.annotations = self._sf.get_annotations()
        self.info = SourceInfo(
            kind="sigmf", name=meta.name[: -len(".sigmf-meta")], center_hz=float(freq), sample_rate_hz=float(rate),
            sample_format=SIGMF_DATATYPES[datatype], n_samples=int(data.stat().st_size // bps),
            start=_parse_iso(caps[0].get("core:datetime")),
        )
        self._cu8 = datatype == "cu8"

    def _read(self, pos: int, count: int) -> np.ndarray:
        x = self._sf.read_samples(start_index=pos, count=count)
        x = np.asarray(x).reshape(-1).astype(np.complex64, copy=False)
        if self._cu8:
            # sigmf scales unsigned bytes as (v - 128)/128; RTL-SDR's zero level is 127.5.
            x = (x * np.float32(128.0) + np.complex64(0.5 + 0.5j)) * np.float32(1 / 127.5)
        return x.astype(np.complex64, copy=False)

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        yield from _blocks_from_offsets(self._read, self.info.n_samples, block_samples, self.info)

    def _close(self) -> None:
        pass
