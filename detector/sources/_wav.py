"""The chunk list of a WAV IQ file (RIFF or RF64), read without scipy so that broken headers survive.

:func:`parse_wav` walks the chunks after ``RIFF``/``RF64`` + ``WAVE``: ``ds64`` (RF64's 64-bit
sizes, EBU Tech 3306), ``fmt `` (PCM 8/16/32-bit, IEEE float 32/64-bit, and their
``WAVE_FORMAT_EXTENSIBLE`` spellings), ``data`` and ``auxi``; any other chunk (``LIST``, ``JUNK``,
``PAD ``, ``fact`` …) is skipped, and an odd chunk size is followed by one pad byte (unless the
writer left it out: a known chunk id right after the odd chunk is taken as the next chunk).

A ``data`` size of 0 or 0xFFFFFFFF (streaming recorders write the header before they know the
length, and some never come back to fix it) or one larger than the file means "to the end of the
file": the samples are read, and a warning says so. A trailing partial sample frame is dropped,
with a warning.

The ``auxi`` chunk (SpectraVue, SDR#, HDSDR, SDRuno, SDRconnect) holds, little-endian::

    offset  0  SYSTEMTIME StartTime   8 × uint16: year, month, dayOfWeek, day, hour, minute, second, ms
    offset 16  SYSTEMTIME StopTime    8 × uint16
    offset 32  uint32 CenterFreq      Hz
    offset 36  uint32 ADFrequency, IFFrequency, Bandwidth, IQOffset, DBOffset, MaxVal, Unused4, Unused5
    offset 68  char[96] NextFilename  (optional; a 164-byte chunk)

References: Moetronix, *SpectraVue User Guide* v3.18, "auxi chunk"
(https://www.moetronix.com/files/spectravue.pdf); F. Venturi's SDRplay RSP recorder and its
metadata reader (``struct.unpack('<8H8H9I96s', …)``), github.com/fventuri; EBU Tech 3306 (RF64).
Only the start time and the center frequency are used. The SYSTEMTIME carries no zone: it is read
as UTC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from detector.core.errors import InputError

__all__ = ["WavLayout", "parse_wav", "parse_auxi"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_UNKNOWN = 0xFFFFFFFF
#: chunk ids seen in WAV IQ recordings (to tell a missing pad byte after an odd chunk)
_KNOWN = {b"fmt ", b"data", b"auxi", b"ds64", b"LIST", b"JUNK", b"junk", b"PAD ", b"fact", b"bext", b"cue ", b"iXML",
          b"smpl", b"inst", b"id3 ", b"ID3 ", b"FLLR", b"elm1", b"minf", b"regn", b"umid"}


@dataclass
class WavLayout:
    """Where the samples of a WAV file are and what they are."""

    dtype: np.dtype  # of one channel value, little-endian
    channels: int
    sample_rate_hz: float
    data_offset: int  # bytes from the file start to the first sample
    n_frames: int  # whole sample frames (one value per channel each)
    container: str = "RIFF"  # RIFF | RF64
    auxi_center_hz: float | None = None
    auxi_start: datetime | None = None
    chunks: list[str] = field(default_factory=list)  # ids in file order
    warnings: list[str] = field(default_factory=list)


def _systemtime(raw: bytes) -> datetime | None:
    year, month, _dow, day, hour, minute, second, ms = struct.unpack("<8H", raw)
    if year == 0:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_auxi(payload: bytes) -> tuple[float | None, datetime | None]:
    """``(center Hz, start UTC)`` of an ``auxi`` chunk's payload (None for a missing or zero field)."""
    start = _systemtime(payload[:16]) if len(payload) >= 16 else None
    center = None
    if len(payload) >= 36:
        (freq,) = struct.unpack_from("<I", payload, 32)
        center = float(freq) if freq else None
    return center, start


def _dtype(tag: int, bits: int, path: Path) -> np.dtype:
    if tag == _PCM and bits in (8, 16, 32):
        return np.dtype({8: "u1", 16: "<i2", 32: "<i4"}[bits])
    if tag == _FLOAT and bits in (32, 64):
        return np.dtype({32: "<f4", 64: "<f8"}[bits])
    kind = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"format tag {tag:#x}")
    raise InputError(f"{path}: WAV sample type {kind} {bits}-bit is not supported (int16, int32, uint8, float32)")


def _printable(cid: bytes) -> bool:
    return len(cid) == 4 and all(32 <= c < 127 for c in cid)


def parse_wav(path: str | Path) -> WavLayout:
    """Walk the chunks of the WAV file at ``path`` (see the module docstring).

    Raises
    ------
    InputError
        Not a RIFF/RF64 WAVE file (RIFX, big-endian, is refused by name), no ``fmt `` or no
        ``data`` chunk, an unsupported sample type, or a data chunk without one whole sample.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: file is empty")
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64", b"RIFX"):
            raise InputError(f"{path}: not a WAV file (no RIFF/RF64 WAVE header)")
        if head[:4] == b"RIFX":
            raise InputError(f"{path}: big-endian WAV (RIFX) is not supported")
        container = head[:4].decode()
        ds64_data: int | None = None
        fmt: tuple[int, int, int, int] | None = None  # tag, channels, rate, bits
        data: tuple[int, int] | None = None  # offset, bytes
        lay_center = lay_start = None
        chunks: list[str] = []
        warnings: list[str] = []
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            hdr = fh.read(8)
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if not _printable(cid):
                break
            name = cid.decode("ascii")
            chunks.append(name)
            body = pos + 8
            if cid == b"data":
                avail = size - body
                if container == "RF64" and csize == _UNKNOWN and ds64_data is not None:
                    csize = ds64_data  # 0 (or all ones) when the recorder never wrote it: to the end, as for RIFF
                    declared_ok = 0 < csize <= avail
                else:
                    declared_ok = csize not in (0, _UNKNOWN) and csize <= avail
                if not declared_ok:
                    what = {0: "0", _UNKNOWN: "0xFFFFFFFF", 2 ** 64 - 1: "0xFFFFFFFFFFFFFFFF"}.get(
                        csize, f"{csize} bytes, larger than the file")
                    warnings.append(f"WAV data size is {what} (an unfinished header); reading the samples "
                                    f"to the end of the file ({avail} bytes)")
                    data = (body, avail)
                    break
                data = (body, csize)
            elif body + csize > size:
                if data is None:
                    warnings.append(f"WAV chunk {name!r} runs past the end of the file; ignored")
                break
            else:
                payload_needed = cid in (b"fmt ", b"auxi", b"ds64")
                payload = fh.read(csize) if payload_needed else b""
                if cid == b"fmt " and csize >= 16:
                    tag, ch, rate, _bps, _align, bits = struct.unpack_from("<HHIIHH", payload)
                    if tag == _EXTENSIBLE and csize >= 40:
                        tag = struct.unpack_from("<H", payload, 24)[0]  # first 2 bytes of the SubFormat GUID
                    fmt = (tag, ch, rate, bits)
                elif cid == b"ds64" and csize >= 24:
                    ds64_data = struct.unpack_from("<Q", payload, 8)[0]
                elif cid == b"auxi":
                    lay_center, lay_start = parse_auxi(payload)
            pos = body + csize
            if csize & 1:  # a pad byte follows, unless the writer forgot it and a known chunk starts here
                here, padded = _id_at(fh, pos), _id_at(fh, pos + 1)
                if not (here in _KNOWN and padded not in _KNOWN):
                    pos += 1
    if fmt is None:
        raise InputError(f"{path}: not a readable WAV file (no 'fmt ' chunk before the samples)")
    if data is None:
        raise InputError(f"{path}: not a readable WAV file (no 'data' chunk)")
    tag, ch, rate, bits = fmt
    dtype = _dtype(tag, bits, path)
    if ch < 1 or rate <= 0:
        raise InputError(f"{path}: WAV header gives {ch} channels at {rate} Hz")
    frame_bytes = ch * dtype.itemsize
    offset, nbytes = data
    n_frames, rest = divmod(nbytes, frame_bytes)
    if rest:
        warnings.append(f"the last {rest} bytes of the WAV data are not a whole sample frame "
                        f"({frame_bytes} bytes); dropped")
    return WavLayout(dtype=dtype, channels=ch, sample_rate_hz=float(rate), data_offset=offset, n_frames=n_frames,
                     container=container, auxi_center_hz=lay_center, auxi_start=lay_start, chunks=chunks,
                     warnings=warnings)


def _id_at(fh, pos: int) -> bytes:
    fh.seek(pos)
    return fh.read(4)
