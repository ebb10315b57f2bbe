"""A simulated tunable RTL-SDR at the exam site, and its PSD-level fast path.

Size: about 410 lines, kept whole: the IQ path and the PSD fast path share one receiver model and
must agree within 0.5 dB (tested), which is easiest to check side by side.

:class:`SimSDR` has the interface of :class:`detector.sources.rtlsdr.RtlSdrSource`: ``tune()``
to a center frequency (settling samples discarded, scene time advancing), ``read(n)`` for a block
of cu8-equivalent IQ at the current scene time, ``blocks()`` until the end of its window. Only
emitters inside the tuned band appear. Time runs as fast as the CPU allows, or paced to real
time with ``realtime=True``.

The IQ of a block: each active emitter's baseband waveform (continuous phase across blocks) at
its observed offset (``f_c − ε·f_center``: the dongle's ppm error ε shifts every emission), scaled
to its received power at the vehicle's position (``World``) relative to the ADC full scale
P_FS(G) = −22 − G dBm, plus thermal noise (−174 + NF + 10·log10 fs dBm), then the receiver's
IQ imbalance, DC offset and 8-bit quantization with clipping (``SCENES.md`` §3.6). Rare dropped
USB buffers (16 kB) leave a gap: the next block starts later and is flagged ``retuned``.

:class:`SimPsd` is the fast path for hours-long scenes: frames of the same plan drawn as
expected PSD × Gamma(L, 1)/L per bin (THEORY §1.1), the expected PSD built from per-modulation
templates measured on the same waveform generators, so both paths agree (tested within 0.5 dB).

Simplifications: the sample clock error is not applied to offsets (only the LO error); path
loss and shadowing are constant within a block (≤ 0.26 s, ≤ 2 m of travel), fast fading changes
every 1024 samples; no intermodulation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import scipy.fft
import scipy.signal
from numpy.typing import NDArray

from detector.dsp import cu8_to_complex64, make_plan, welch_psd
from detector.sim._synth import cu8_bytes, iq_imbalance
from detector.sim.scene import Emitter, Scene
from detector.sim.world import World, enu_to_llh
from detector.sources._base import DEFAULT_BLOCK_SAMPLES, IQSource, SourceInfo
from detector.core.types import IQBlock, Position, Spectrum

__all__ = ["SimSDR", "SimPsd", "emitter_intervals", "window_bounds"]

_AUDIO_FS = 16000.0
_USB_BUFFER = 8192  # complex samples in a 16 kB buffer


def emitter_intervals(scene: Scene, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    """On-air intervals (scene s) per emitter: the schedule plus Poisson calls."""
    out = {}
    end = max(b for _, b in [scene.timeline.survey, *scene.timeline.exam])
    for e in scene.emitters:
        iv = [tuple(map(float, x)) for x in e.schedule]
        if e.calls_per_hour > 0:
            a, b = e.poisson_window or (0.0, end)
            t = a
            while True:
                t += rng.exponential(3600.0 / e.calls_per_hour)
                if t >= b:
                    break
                dur = float(e.call_median_s * np.exp(rng.normal(0, e.call_sigma_ln)))
                iv.append((t, min(t + dur, b)))
        out[e.id] = sorted(iv)
    return out


def window_bounds(scene: Scene, window: str) -> tuple[float, float]:
    """Scene seconds of ``"survey"``, ``"exam"`` (all sessions: first start to last end) or ``"all"``."""
    if window == "survey":
        return tuple(scene.timeline.survey)
    if window == "exam":
        return scene.timeline.exam[0][0], scene.timeline.exam[-1][1]
    if window == "all":
        return 0.0, max(b for _, b in [scene.timeline.survey, *scene.timeline.exam])
    raise ValueError(f"unknown window {window!r} (survey, exam, all)")


@dataclass
class _Wave:
    """Waveform state of one emitter (phase and filter memory carried across blocks)."""

    phase: float = 0.0
    zi: NDArray | None = None
    bit_phase: float = 0.0
    bits: list = field(default_factory=list)


class _Generators:
    """Unit-power baseband waveforms per modulation, continuous across calls."""

    def __init__(self, fs: float) -> None:
        self.fs = fs
        self._sos_voice = scipy.signal.butter(4, (300.0, 3000.0), btype="bandpass", fs=_AUDIO_FS, output="sos")
        self._sos_wfm = scipy.signal.butter(4, 15000.0, btype="lowpass", fs=4 * _AUDIO_FS, output="sos")

    def _audio(self, st: _Wave, n: int, rng, sos, afs) -> NDArray[np.float64]:
        na = int(np.ceil(n * afs / self.fs)) + 2
        if st.zi is None:
            st.zi = np.zeros((sos.shape[0], 2))
        a, st.zi = scipy.signal.sosfilt(sos, rng.standard_normal(na), zi=st.zi)
        a = np.clip(a / 0.35, -1.0, 1.0)  # ~ unit peak (speech-like envelope)
        ta = np.arange(na) / afs
        return np.interp(np.arange(n) / self.fs, ta, a)

    def wave(self, e: Emitter, st: _Wave, n: int, offset_hz: float, rng) -> NDArray[np.complex64]:
        fs = self.fs
        if e.modulation == "cw":
            inst = np.full(n, offset_hz)
        elif e.modulation == "nfm":
            inst = offset_hz + e.deviation_hz * self._audio(st, n, rng, self._sos_voice, _AUDIO_FS)
        elif e.modulation == "wfm":
            au = self._audio(st, n, rng, self._sos_wfm, 4 * _AUDIO_FS)
            t = np.arange(n) / fs
            inst = offset_hz + 75e3 * (0.9 * au + 0.1 * np.sin(2 * np.pi * 19e3 * t + st.bit_phase))
            st.bit_phase = (st.bit_phase + 2 * np.pi * 19e3 * n / fs) % (2 * np.pi)
        elif e.modulation == "fsk":
            spb = fs / e.fsk_baud
            nb = int(np.ceil((n + st.bit_phase) / spb)) + 1
            bits = rng.integers(0, 2, nb) * 2 - 1
            idx = ((np.arange(n) + st.bit_phase) / spb).astype(int)
            inst = offset_hz + bits[idx] * e.fsk_shift_hz
            st.bit_phase = (st.bit_phase + n) % spb
        elif e.modulation == "ofdm":
            # a flat plateau: white noise only in the occupied band, built in the frequency domain
            f = scipy.fft.fftfreq(n, 1 / fs)
            band = np.flatnonzero(np.abs(f - offset_hz) <= e.bandwidth_hz / 2)
            spec = np.zeros(n, dtype=np.complex64)
            spec[band] = (rng.standard_normal(band.size, dtype=np.float32)
                          + 1j * rng.standard_normal(band.size, dtype=np.float32))
            x = scipy.fft.ifft(spec, overwrite_x=True)
            x *= np.float32(n / np.sqrt(2.0 * max(band.size, 1)))  # ifft divides by n: unit power
            return x.astype(np.complex64, copy=False)
        else:  # pragma: no cover - validated by the scene model
            raise ValueError(e.modulation)
        ph = np.cumsum(inst)
        ph *= 2 * np.pi / fs
        ph += st.phase
        st.phase = float(ph[-1] % (2 * np.pi))
        ph %= 2 * np.pi
        ph32 = ph.astype(np.float32)
        out = np.empty(n, dtype=np.complex64)
        out.real = np.cos(ph32)
        out.imag = np.sin(ph32)
        return out


def _overlap_mask(intervals, t0: float, n: int, fs: float) -> NDArray[np.bool_] | None:
    """Boolean on-air mask of a block starting at t0, or None when the emitter is off throughout."""
    t1 = t0 + n / fs
    mask = None
    for a, b in intervals:
        if b <= t0 or a >= t1:
            continue
        if mask is None:
            mask = np.zeros(n, dtype=bool)
        mask[max(0, int((a - t0) * fs)):min(n, int(np.ceil((b - t0) * fs)))] = True
    return mask


class _SceneRadio:
    """What is shared by the IQ and PSD paths: world, intervals, tuning, ppm, levels."""

    def __init__(self, scene: Scene, *, seed: int | None, window: str, receiver: int = 0) -> None:
        self.receiver = int(receiver)
        self.scene = scene.receiver_variant(self.receiver)
        self.seed = scene.seed if seed is None else int(seed)
        root = np.random.SeedSequence(self.seed)
        ss_world, ss_calls, self._ss_blocks = root.spawn(3)
        self.world = World(scene, ss_world)
        self.intervals = emitter_intervals(scene, np.random.default_rng(ss_calls))
        self.window = window
        self.t_start, self.t_end = window_bounds(scene, window)
        rx = scene.receiver
        self.center_hz = rx.center_hz
        self.sample_rate_hz = rx.sample_rate_hz
        self.t = self.t_start
        self.tune_count = 0

    def ppm_at(self, t_s: float) -> float:
        rx = self.scene.receiver
        return rx.ppm + rx.drift_ppm * (1.0 - np.exp(-t_s / rx.drift_tau_s))

    def observed_hz(self, e: Emitter, t_s: float) -> float:
        """Absolute frequency at which this dongle sees the emitter: f_c − ε·f_center."""
        return e.f_c_hz - self.ppm_at(t_s) * 1e-6 * self.center_hz

    def noise_dbfs(self) -> float:
        rx = self.scene.receiver
        return -174.0 + rx.nf_db + 10 * np.log10(self.sample_rate_hz) - rx.full_scale_dbm

    def in_band(self, e: Emitter, t_s: float) -> bool:
        off = self.observed_hz(e, t_s) - self.center_hz
        return abs(off) + e.bandwidth_hz / 2 < self.sample_rate_hz / 2

    def position(self, t_s: float) -> Position:
        x, y = self.world.vehicle.reported_xy(t_s)
        lat, lon = enu_to_llh(x, y, self.scene.site.lat0, self.scene.site.lon0)
        return Position(float(lat), float(lon))

    def block_rng(self, t0: float) -> np.random.Generator:
        key = int(round(t0 * self.sample_rate_hz))
        ent = [self.seed, self.tune_count, key >> 32, key & 0xFFFFFFFF]
        if self.receiver:  # another dongle of the vehicle: its own noise (receiver 0's is the scene's)
            ent.insert(1, 1_000_003 * self.receiver)
        return np.random.default_rng(np.random.SeedSequence(ent))

    def levels_dbfs(self, t0: float, t1: float) -> dict[str, float]:
        """Received level (dBFS) of every in-band emitter for the block [t0, t1)."""
        fs_dbm = self.scene.receiver.full_scale_dbm
        out = {}
        t_mid = 0.5 * (t0 + t1)
        for e in self.scene.emitters:
            if not self.in_band(e, t_mid):
                continue
            p = self.world.rx_power_dbm(e.id, t_mid)[0]  # fast fading is applied within the block
            out[e.id] = float(p - fs_dbm)
        return out

    def tune(self, center_hz: float, sample_rate_hz: float | None = None) -> None:
        self.center_hz = float(center_hz)
        if sample_rate_hz is not None:
            self.sample_rate_hz = float(sample_rate_hz)
        self.tune_count += 1
        self.t += self.scene.receiver.settle_s
        self._retuned = True


class SimSDR(_SceneRadio, IQSource):
    """Simulated RTL-SDR over a window of a scene (see the module docstring).

    Parameters
    ----------
    scene : Scene
    seed : int, optional
        Overrides the scene's seed.
    window : {"survey", "exam", "all"}
        Scene seconds this source covers; ``blocks()`` ends there.
    realtime : bool
        Pace reads to the wall clock.
    clean : bool
        No receiver impairments (no DC, IQ imbalance, quantization, ppm, drops): for checks of
        the generator against theory.
    receiver : int
        Which of the vehicle's receivers this is (:meth:`Scene.receiver_variant`: the same world,
        its own noise and impairments); 0 is the scene's own receiver.
    """

    def __init__(self, scene: Scene, *, seed: int | None = None, window: str = "exam", realtime: bool = False,
                 clean: bool = False, receiver: int = 0) -> None:
        super().__init__(scene, seed=seed, window=window, receiver=receiver)
        self.realtime = realtime
        self.clean = clean
        self._gen = _Generators(self.sample_rate_hz)
        self._waves: dict[str, _Wave] = {e.id: _Wave() for e in scene.emitters}
        self._retuned = True
        self._wall0 = None
        self.dropped_buffers = 0
        self.info = SourceInfo(kind="sim", name=f"sim:{scene.name}[{window}]" + (f" receiver {receiver}" if receiver else ""),
                               center_hz=self.center_hz,
                               sample_rate_hz=self.sample_rate_hz,
                               n_samples=int(round((self.t_end - self.t_start) * self.sample_rate_hz)), sample_format="cu8")
        self.truth_power: list[tuple[float, str, float]] = []  # (t_mid, emitter, dBm) for the ground truth

    def tune(self, center_hz: float, sample_rate_hz: float | None = None) -> None:
        super().tune(center_hz, sample_rate_hz)
        if sample_rate_hz is not None:
            self._gen = _Generators(self.sample_rate_hz)
        self.info = SourceInfo(**{**self.info.__dict__, "center_hz": self.center_hz, "sample_rate_hz": self.sample_rate_hz})

    def generate(self, t0: float, n: int) -> NDArray[np.complex64]:
        """Complex samples of ``n`` samples from scene time ``t0`` (impairments applied)."""
        fs = self.sample_rate_hz
        rng = self.block_rng(t0)
        x = np.empty(n, dtype=np.complex64)
        sig = np.sqrt(10 ** (self.noise_dbfs() / 10) / 2)
        x.real = rng.standard_normal(n, dtype=np.float32) * np.float32(sig)
        x.imag = rng.standard_normal(n, dtype=np.float32) * np.float32(sig)
        t_mid = t0 + n / (2 * fs)
        levels = self.levels_dbfs(t0, t0 + n / fs)
        fs_dbm = self.scene.receiver.full_scale_dbm
        for e in self.scene.emitters:
            if e.id not in levels:
                continue
            mask = _overlap_mask(self.intervals[e.id], t0, n, fs)
            if mask is None:
                continue
            self.truth_power.append((t_mid, e.id, levels[e.id] + fs_dbm))
            off = (e.f_c_hz if self.clean else self.observed_hz(e, t_mid)) - self.center_hz
            w = self._gen.wave(e, self._waves[e.id], n, off, rng)
            # fast fading, one gain per 1024 samples (≤ 8 mm of travel at 8 m/s)
            t_chunks = t0 + (np.arange(0, n, 1024) + 512) / fs
            fade = np.sqrt(self.world.fading_gain(e.id, t_chunks)).astype(np.float32)
            amp = np.float32(10 ** (levels[e.id] / 20)) * np.repeat(fade, 1024)[:n]
            x += np.where(mask, w * amp, np.complex64(0))
        if self.clean:
            return x
        rx = self.scene.receiver
        x = iq_imbalance(x, rx.iq_gain_db, rx.iq_phase_deg)
        return cu8_to_complex64(cu8_bytes(x, dc_lsb=rx.dc_offset_lsb))

    readable = True
    tunable = True

    def _exhausted(self) -> bool:
        return self.t >= self.t_end - 1e-9

    def _read_block(self, n_samples: int) -> IQBlock:
        """One block of ``n_samples`` at the current scene time; the time then advances."""
        fs = self.sample_rate_hz
        if self.realtime:
            now = time.monotonic()
            if self._wall0 is None:
                self._wall0 = now - (self.t - self.t_start)
            lag = (self.t - self.t_start) - (now - self._wall0)
            if lag > 0:
                time.sleep(lag)
        t0 = self.t
        x = self.generate(t0, n_samples)
        retuned, self._retuned = self._retuned, False
        p = self.scene.receiver.drop_probability
        if p > 0 and not self.clean:
            drops = self.block_rng(t0 + 1e-3).random(max(1, n_samples // _USB_BUFFER)) < p
            if drops.any():
                self.dropped_buffers += int(drops.sum())
                self.t += drops.sum() * _USB_BUFFER / fs
                self._retuned = True  # the next block follows a gap
        self.t += n_samples / fs
        return IQBlock(x, self.center_hz, fs, offset_s=t0, position=self.position(t0 + n_samples / (2 * fs)),
                       gain_db=self.scene.receiver.gain_db, retuned=retuned)

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        """Blocks until the end of the window (the last one shorter)."""
        fs = self.sample_rate_hz
        while self.t < self.t_end - 0.5 / fs:
            n = min(block_samples, int(round((self.t_end - self.t) * fs)))
            if n <= 0:
                break
            yield self.read(n)

    def _close(self) -> None:
        pass


class SimPsd(_SceneRadio):
    """PSD-level fast path: :class:`~detector.core.types.Spectrum` frames of the scene without IQ.

    Frames use the same plan as the IQ path (``nfft``, Hann, 50 % overlap, ``segments_per_frame``)
    and the same levels, ppm and impairment model (DC offset, IQ image, quantization noise).
    """

    def __init__(self, scene: Scene, *, nfft: int, segments_per_frame: int, seed: int | None = None,
                 window: str = "exam") -> None:
        super().__init__(scene, seed=seed, window=window)
        self.plan = make_plan(self.sample_rate_hz, nfft=nfft)
        self.spf = segments_per_frame
        self.frame_s = segments_per_frame * self.plan.step / self.sample_rate_hz
        self.looks = segments_per_frame * self.plan.looks_per_segment
        self._templates: dict[str, NDArray[np.float64]] = {}

    def _template(self, e: Emitter, frac_bins: float) -> NDArray[np.float64]:
        """Mean PSD per bin (linear) of the unit-power waveform at ``frac_bins`` of a bin from
        bin 0, measured once per modulation and twentieth of a bin (scalloping included)."""
        q = round(frac_bins * 20) / 20
        key = (e.modulation, e.deviation_hz, e.bandwidth_hz, e.fsk_shift_hz, e.fsk_baud, q)
        if key not in self._templates:
            gen = _Generators(self.sample_rate_hz)
            rng = np.random.default_rng(12345)
            n = int(self.sample_rate_hz * 0.5)
            self._templates[key] = welch_psd(gen.wave(e, _Wave(), n, q * self.plan.bin_hz, rng), self.plan)
        return self._templates[key]

    def _shifted(self, e: Emitter, offset_hz: float) -> NDArray[np.float64]:
        shift = offset_hz / self.plan.bin_hz
        k = int(np.floor(shift))
        return np.roll(self._template(e, shift - k), k)

    def expected(self, t0: float) -> NDArray[np.float64]:
        """Expected linear power per bin of the frame starting at ``t0``."""
        fs = self.sample_rate_hz
        rx = self.scene.receiver
        n = self.spf * self.plan.step + self.plan.nfft
        t_mid = t0 + n / (2 * fs)
        noise = 10 ** (self.noise_dbfs() / 10) + 2 * (1 / 127.5) ** 2 / 12  # thermal + quantization
        p = np.full(self.plan.nfft, noise * self.plan.rbw_hz / fs)
        levels = self.levels_dbfs(t0, t0 + n / fs)
        for e in self.scene.emitters:
            if e.id not in levels:
                continue
            mask = _overlap_mask(self.intervals[e.id], t0, n, fs)
            if mask is None:
                continue
            duty = float(mask.mean())
            off = self.observed_hz(e, t_mid) - self.center_hz
            fade = float(np.mean(self.world.fading_gain(e.id, t0 + (np.arange(0, n, 1024) + 512) / fs)))
            p += duty * fade * 10 ** (levels[e.id] / 10) * self._shifted(e, off)
        g = 10 ** (rx.iq_gain_db / 20)
        phi = np.deg2rad(rx.iq_phase_deg)
        mu2 = abs((1 + g * np.exp(-1j * phi)) / 2) ** 2
        nu2 = abs((1 - g * np.exp(1j * phi)) / 2) ** 2
        p = mu2 * p + nu2 * p[::-1][np.r_[self.plan.nfft - 1, 0:self.plan.nfft - 1]] if self.plan.nfft % 2 == 0 else p
        dc = (rx.dc_offset_lsb[0] / 127.5) ** 2 + (rx.dc_offset_lsb[1] / 127.5) ** 2
        k0 = int(np.argmin(np.abs(self.plan.offsets_hz)))
        w = self.plan.window.astype(np.float64)
        resp = np.abs(np.fft.fftshift(np.fft.fft(w))) ** 2 / np.sum(w) ** 2
        p += dc * np.roll(resp, k0 - int(np.argmax(resp)))
        return p

    def frames(self) -> Iterator[Spectrum]:
        """Frames until the end of the window."""
        adv = self.spf * self.plan.step / self.sample_rate_hz
        freqs = self.center_hz + self.plan.offsets_hz
        while self.t + adv <= self.t_end + 1e-9:
            t0 = self.t
            exp = self.expected(t0)
            rng = self.block_rng(t0 + 0.5)
            draw = exp * rng.gamma(self.looks, 1.0 / self.looks, size=exp.size)
            self.t += adv
            yield Spectrum(freqs_hz=freqs, power=(10 * np.log10(np.maximum(draw, 1e-30))).astype(np.float32),
                           rbw_hz=self.plan.rbw_hz, offset_s=t0, duration_s=adv, n_looks=self.looks,
                           center_hz=self.center_hz, position=self.position(t0 + adv / 2))
