"""Recorded IQ: raw interleaved files, WAV IQ and SigMF, each read block by block."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from detector.dsp import cf32_to_complex64, count_nonfinite, cs8_to_complex64, cs16_to_complex64, cu8_to_complex64
from detector.core.errors import InputError
from detector.core.textfile import read_text
from detector.sources._base import DEFAULT_BLOCK_SAMPLES, IQSource, SourceInfo
from detector.sources._names import RAW_FORMATS
from detector.core.types import IQBlock

__all__ = ["RawIQFile", "WavIQFile", "SigMFFile", "SIGMF_DATATYPES"]

log = logging.getLogger("examwatch.sources")

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


class _OpenFileSource(IQSource):
    """A recording read through one open file handle ``_fh`` by ``_read(start, n)``."""

    _fh = None
    info: SourceInfo

    def _read(self, start: int, n: int):  # pragma: no cover - every subclass reads its own format
        raise NotImplementedError

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


class RawIQFile(_OpenFileSource):
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



class WavIQFile(_OpenFileSource):
    """A stereo WAV IQ recording (left = I, right = Q), int16, int32, uint8 or float32 (RIFF or RF64).

    The sample type and rate come from the WAV header, never from ``--format``. The center
    frequency is ``center_hz`` (``--center``) when given, else the ``auxi`` chunk's, else
    ``default_center_hz`` (the file name's); the start time
    is ``start`` when given, else the ``auxi`` chunk's StartTime (read as UTC). The chunk list is
    walked by :func:`detector.sources._wav.parse_wav`, so a header a streaming recorder never
    finished (data size 0, 0xFFFFFFFF or larger than the file) still gives the samples up to the
    end of the file; such oddities are in :attr:`warnings` and logged once (``examwatch.sources``).
    Samples are read block by block with ``seek`` + ``numpy.fromfile``; non-finite float samples
    are counted in :attr:`nonfinite_samples` (and left for the DSP, which excludes them).
    """

    def __init__(self, path: str | Path, *, center_hz: float | None, sample_rate_hz: float | None = None,
                 start: datetime | None = None, default_center_hz: float | None = None) -> None:
        from detector.sources._wav import parse_wav

        self.path = Path(path)
        lay = parse_wav(self.path)
        if lay.channels != 2:
            raise InputError(f"{self.path}: an IQ WAV needs 2 channels (I, Q); this one has {lay.channels}")
        if lay.n_frames == 0:
            raise InputError(f"{self.path}: WAV holds no samples")
        rate = lay.sample_rate_hz
        if sample_rate_hz is not None and abs(sample_rate_hz - rate) > 0.5:
            raise InputError(f"{self.path}: --rate {sample_rate_hz:g} contradicts the WAV header's {rate:g} Hz")
        center = center_hz if center_hz is not None else lay.auxi_center_hz
        if center is None:
            center = default_center_hz  # from an rtl_433-style file name
        if center is None:
            raise InputError(f"{self.path}: the center frequency is unknown (no auxi chunk); give --center (e.g. --center 433.92M)")
        full = {"u1": None, "i2": 32768.0, "i4": 2147483648.0, "f4": 1.0, "f8": 1.0}[lay.dtype.str[1:]]
        if full is None:
            self._scale, self._zero = 1 / 127.5, 127.5
        else:
            self._scale, self._zero = 1.0 / full, 0.0
        self._dtype = lay.dtype
        self._offset = lay.data_offset
        self._float = lay.dtype.kind == "f"
        self.layout = lay
        self.warnings: list[str] = list(lay.warnings)
        for w in self.warnings:
            log.warning("%s: %s", self.path.name, w)
        self.nonfinite_samples = 0
        self._fh = None
        self.info = SourceInfo(
            kind="wav", name=self.path.name, center_hz=float(center), sample_rate_hz=rate,
            sample_format=f"wav-{lay.dtype.name}", n_samples=lay.n_frames,
            start=start if start is not None else lay.auxi_start,
        )

    def _read(self, pos: int, count: int) -> np.ndarray:
        if self._fh is None:
            self._fh = open(self.path, "rb")
        self._fh.seek(self._offset + pos * 2 * self._dtype.itemsize)
        raw = np.fromfile(self._fh, dtype=self._dtype, count=2 * count)
        if raw.size != 2 * count:
            raise InputError(f"{self.path}: file shrank while reading (expected {count} samples at {pos})")
        chunk = raw.astype(np.float32)
        if self._zero:
            chunk -= np.float32(self._zero)
        if self._scale != 1.0:
            chunk *= np.float32(self._scale)
        if self._float:
            self.nonfinite_samples += count_nonfinite(chunk.view(np.complex64))
        return chunk.view(np.complex64)



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
