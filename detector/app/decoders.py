"""Maintained decoders run at run time on a recording or an IQ slice (the I/O edge of #23 item 3).

* **rtl_433** (Debian ``rtl-433``) for ISM-band sensors, remotes, car keys, tire-pressure sensors.
  It reads raw IQ files given as ``-r FORMAT:RATE:CENTRE:FILE`` (rtl_433 22.11 ignores ``-s``/``-f``
  for file input) and prints one JSON object per decoded message with ``-F json``.
* **multimon-ng** (Debian ``multimon-ng``) for POCSAG 512/1200/2400 and FLEX pagers. It reads
  16-bit mono audio at 22 050 Hz (``-t raw``); the IQ is FM-demodulated (a phase discriminator) and
  resampled to that rate first.

Both are found on ``PATH`` (``shutil.which``) when called. A decoder that is not installed, that
times out, that fails or that decodes nothing gives a :class:`DecodeResult` with that ``status``
and a sentence in ``detail``; nothing here raises for a missing tool or for garbage input.
``.ci/install-decoders`` installs both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import signal

__all__ = ["Decoded", "DecodeResult", "RAW_FORMATS", "decoder_path", "rtl433_decode_file", "rtl433_decode_iq",
           "multimon_decode_iq", "parse_multimon_lines", "MULTIMON_RATE_HZ"]

Status = Literal["decoded", "nothing decoded", "not installed", "timeout", "failed"]
RAW_FORMATS = ("cu8", "cs8", "cs16", "cf32")
MULTIMON_RATE_HZ = 22050
MULTIMON_DEMODS = ("POCSAG512", "POCSAG1200", "POCSAG2400", "FLEX")
INSTALL_HINT = {"rtl_433": "apt-get install rtl-433", "multimon-ng": "apt-get install multimon-ng"}


@dataclass(frozen=True)
class Decoded:
    """One decoded message: ``model`` (rtl_433's device model, or the pager protocol such as
    "POCSAG1200"), ``time_s`` (offset in the input, s, when the decoder gives it) and its other
    ``fields`` as the decoder printed them."""

    decoder: str
    model: str
    time_s: float | None = None
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DecodeResult:
    """A decoder's answer: ``status``, the ``messages`` decoded and a one-sentence ``detail``."""

    decoder: str
    status: Status
    messages: tuple[Decoded, ...] = ()
    detail: str = ""

    @property
    def models(self) -> tuple[str, ...]:
        """The distinct models decoded, in order of first appearance."""
        return tuple(dict.fromkeys(m.model for m in self.messages))

    def to_json(self) -> dict:
        return {"decoder": self.decoder, "status": self.status, "detail": self.detail, "models": list(self.models),
                "messages": [{"model": m.model, "time_s": m.time_s, **m.fields} for m in self.messages]}


def decoder_path(name: str) -> str | None:
    """The decoder's executable on PATH (``shutil.which``), or None."""
    return shutil.which(name)


def _not_installed(name: str) -> DecodeResult:
    return DecodeResult(name, "not installed", (), f"{name} is not installed (not on PATH; {INSTALL_HINT[name]})")


def _run(name: str, args: list[str], timeout_s: float, stdin: bytes | None = None) -> tuple[DecodeResult | None, str]:
    exe = decoder_path(name)
    if exe is None:
        return _not_installed(name), ""
    try:
        proc = subprocess.run([exe, *args], input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return DecodeResult(name, "timeout", (), f"{name} did not finish within {timeout_s:g} s"), ""
    except OSError as exc:
        return DecodeResult(name, "failed", (), f"{name} could not be started: {exc}"), ""
    out = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        return DecodeResult(name, "failed", (), f"{name} exited with status {proc.returncode}: {tail[0]}"), out
    return None, out


def _rtl433_messages(out: str) -> tuple[Decoded, ...]:
    msgs = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or "model" not in obj:
            continue
        t = obj.pop("time", None)
        time_s = None
        if isinstance(t, str) and t.startswith("@") and t.endswith("s"):
            try:
                time_s = float(t[1:-1])
            except ValueError:
                time_s = None
        model = str(obj.pop("model"))
        msgs.append(Decoded("rtl_433", model, time_s, obj))
    return tuple(msgs)


def rtl433_decode_file(path: str | Path, sample_format: str, sample_rate_hz: float, center_hz: float, *,
                       timeout_s: float = 30.0) -> DecodeResult:
    """Run ``rtl_433 -r FORMAT:RATE:CENTRE:FILE -F json -M time:rel`` on a raw IQ file.

    Parameters
    ----------
    path : path of a headerless interleaved I/Q file.
    sample_format : one of ``RAW_FORMATS`` (cu8, cs8, cs16, cf32).
    sample_rate_hz, center_hz : the recording's sample rate and centre frequency, Hz.
    timeout_s : seconds before the run is abandoned (status "timeout").

    Returns
    -------
    DecodeResult
        "decoded" with the messages, "nothing decoded", "not installed", "timeout" or "failed".

    Raises
    ------
    ValueError
        An unknown ``sample_format`` or a non-positive rate.
    """
    if sample_format not in RAW_FORMATS:
        raise ValueError(f"sample_format must be one of {', '.join(RAW_FORMATS)}, not {sample_format!r}")
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
    spec = f"{sample_format}:{int(round(sample_rate_hz))}:{int(round(center_hz))}:{Path(path)}"
    bad, out = _run("rtl_433", ["-q", "-r", spec, "-F", "json", "-M", "time:rel", "-M", "level"], timeout_s)
    if bad is not None:
        return bad
    msgs = _rtl433_messages(out)
    if not msgs:
        return DecodeResult("rtl_433", "nothing decoded", (), "rtl_433 ran and decoded no device")
    models = ", ".join(dict.fromkeys(m.model for m in msgs))
    return DecodeResult("rtl_433", "decoded", msgs, f"rtl_433 decoded {len(msgs)} message(s): {models}")


def rtl433_decode_iq(iq: np.ndarray, sample_rate_hz: float, center_hz: float, *, timeout_s: float = 30.0) -> DecodeResult:
    """rtl_433 on an IQ slice (complex, shape (n,)), written to a temporary cf32 file first."""
    if decoder_path("rtl_433") is None:
        return _not_installed("rtl_433")
    x = np.asarray(iq, dtype=np.complex64).ravel()
    with tempfile.TemporaryDirectory(prefix="examwatch-rtl433-") as tmp:
        path = Path(tmp) / "slice.cf32"
        x.tofile(path)
        return rtl433_decode_file(path, "cf32", sample_rate_hz, center_hz, timeout_s=timeout_s)


_MULTIMON = re.compile(r"^(POCSAG512|POCSAG1200|POCSAG2400|FLEX[A-Z_]*)\s*[:|]\s*(.*)$")


def parse_multimon_lines(out: str) -> tuple[Decoded, ...]:
    """multimon-ng's text output → messages: ``POCSAG1200: Address: 1234567  Function: 3  Alpha: …``
    and ``FLEX|2024-…|1600/2/K/A|…|ALN|text`` lines (other lines are ignored)."""
    msgs = []
    for line in out.splitlines():
        m = _MULTIMON.match(line.strip())
        if not m:
            continue
        proto, rest = m.group(1), m.group(2)
        fields: dict = {}
        if proto.startswith("POCSAG"):
            for key, val in re.findall(r"(Address|Function|Alpha|Numeric):\s*(.*?)(?=\s+(?:Address|Function|Alpha|Numeric):|$)", rest):
                fields[key.lower()] = val.strip()
        else:
            parts = rest.split("|")
            fields["fields"] = parts
            if parts:
                fields["message"] = parts[-1]
        msgs.append(Decoded("multimon-ng", proto, None, fields))
    return tuple(msgs)


def fm_audio(iq: np.ndarray, sample_rate_hz: float, audio_rate_hz: int = MULTIMON_RATE_HZ) -> np.ndarray:
    """FM discriminator (phase difference) → audio at ``audio_rate_hz`` as int16, shape (m,),
    scaled so the largest deviation is 90 % of full scale."""
    x = np.asarray(iq, dtype=np.complex128).ravel()
    if x.size < 2:
        return np.zeros(0, dtype=np.int16)
    d = np.angle(x[1:] * np.conj(x[:-1]))
    g = np.gcd(int(round(sample_rate_hz)), audio_rate_hz)
    audio = signal.resample_poly(d, audio_rate_hz // g, int(round(sample_rate_hz)) // g)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    scale = 0.9 * 32767 / peak if peak > 0 else 0.0
    return np.clip(audio * scale, -32768, 32767).astype(np.int16)


def multimon_decode_iq(iq: np.ndarray, sample_rate_hz: float, *, timeout_s: float = 30.0,
                       demods: tuple[str, ...] = MULTIMON_DEMODS) -> DecodeResult:
    """multimon-ng's pager decoders (POCSAG, FLEX) on an NFM IQ slice (complex, shape (n,), centred
    on the pager channel), through :func:`fm_audio` on stdin (``-t raw -``)."""
    if decoder_path("multimon-ng") is None:
        return _not_installed("multimon-ng")
    audio = fm_audio(iq, sample_rate_hz)
    args = ["-q", "-t", "raw", "-c"]
    for d in demods:
        args += ["-a", d]
    bad, out = _run("multimon-ng", [*args, "-"], timeout_s, stdin=audio.astype("<i2").tobytes())
    if bad is not None:
        return bad
    msgs = parse_multimon_lines(out)
    if not msgs:
        return DecodeResult("multimon-ng", "nothing decoded", (), "multimon-ng ran and decoded no pager message")
    return DecodeResult("multimon-ng", "decoded", msgs, f"multimon-ng decoded {len(msgs)} pager message(s)")
