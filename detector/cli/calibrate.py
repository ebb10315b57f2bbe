"""``examwatch calibrate ppm|iq|power``: measure a dongle's frequency error, DC/IQ imbalance and
dBFS → dBm table, and save them in its calibration profile (:mod:`calibration`).

``ppm`` and ``iq`` read any IQ source with the source options of ``spectrum`` (a recording needs no
dongle serial; saving a profile does: ``--serial`` or ``rtlsdr:serial=...``). ``power`` reads a
CSV of reference measurements. With ``--json`` stdout holds one JSON object; progress and notes
go to stderr. Bad calibration input (no reference signal, too few points, wrong columns, a
profile for another dongle) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from detector.cli._common import CenterOpt, FormatOpt, JsonOpt, RateOpt, console_err, opt_hz, positive_hz, progress_bar
from detector.core.errors import InputError
from detector.app.sources import open_source
from detector.sources import recording_help, source_kind
from detector.core.units import format_hz, parse_hz
from detector.core.timefmt import utc_iso

calibrate_app = typer.Typer(
    help="Calibrate a dongle: frequency error (ppm), DC offset and IQ imbalance, dBFS → dBm; save its profile.",
    no_args_is_help=True,
)

SourceArg = Annotated[str, typer.Argument(help=f"{recording_help()}, rtlsdr:... or sim:...")]
SerialOpt = Annotated[Optional[str], typer.Option("--serial", help="Dongle serial the profile is for (default: the source's, e.g. rtlsdr:serial=...).")]
ProfileOutOpt = Annotated[Optional[Path], typer.Option("--profile-out", help="Save (or update) the dongle's calibration profile at this path (.json or .toml).")]
DurationOpt = Annotated[Optional[float], typer.Option("--duration", help="Seconds of IQ to use (default: the first 10 s of a recording or sim: scene; a few seconds from a dongle).")]

#: Longest stretch of IQ read into memory (s).
_MAX_SECONDS = 10.0


def _now_utc() -> str:
    return utc_iso(datetime.now(timezone.utc).replace(microsecond=0))


def _read_iq(src, duration_s: float | None, default_live_s: float) -> tuple[np.ndarray, float, float, float]:
    """Concatenate blocks of ``src`` up to ``duration_s``: (samples, center_hz, rate_hz, t0_s)."""
    fs = src.info.sample_rate_hz
    if duration_s is None:
        duration_s = default_live_s if src.info.n_samples is None else min(src.info.duration_s, _MAX_SECONDS)
        if src.info.n_samples is not None and src.info.duration_s > _MAX_SECONDS:
            console_err.print(f"using the first {_MAX_SECONDS:g} s of {src.info.duration_s:.1f} s (--duration to change)")
    if not duration_s > 0:
        raise InputError(f"--duration must be > 0, got {duration_s}")
    if duration_s > 60:
        raise InputError(f"--duration {duration_s:g} s is too long to hold in memory; use ≤ 60 s (and --window-s for drift)")
    want = int(round(duration_s * fs))
    parts, got, t0, center = [], 0, None, src.info.center_hz
    with progress_bar(f"reading {src.info.name}", duration_s) as update:
        for block in src.blocks(min(1 << 18, max(want, 1))):
            if t0 is None:
                t0, center = block.offset_s, block.center_hz
            take = block.samples[: want - got]
            parts.append(take)
            got += take.size
            update(got / fs)
            if got >= want:
                break
    if not parts or got == 0:
        raise InputError(f"{src.info.name}: no samples to calibrate from")
    return np.concatenate(parts), float(center), float(fs), float(t0 or 0.0)


def _resolve_serial(serial: str | None, src, profile_out: Path | None) -> str | None:
    known = getattr(src.info, "serial", None)
    if serial and known and serial != known:
        raise InputError(f"--serial {serial} differs from the source's dongle serial {known}")
    serial = serial or known
    if profile_out is not None and not serial:
        raise InputError("the source has no dongle serial: give --serial to save a profile")
    return serial


def _save_section(path: Path, serial: str, **section) -> Path:
    """Create or update the profile at ``path`` for ``serial``; another serial there is an error."""
    from calibration import CalibrationProfile, ProfileMismatchError
    from calibration.profiles import load_profile, save_profile

    now = _now_utc()
    if path.exists():
        prof = load_profile(path)
        if prof.serial != serial:
            raise ProfileMismatchError(
                f"{path} holds the calibration profile of dongle {prof.serial!r}, not {serial!r}; "
                "write this dongle's profile to another file"
            )
        prof = prof.updated(date_utc=now, **section)
    else:
        prof = CalibrationProfile(serial=serial, created_utc=now, updated_utc=now, **section)
    return save_profile(prof, path)


#: the largest frequency error usual for an RTL-SDR without a TCXO (R820T dongles: tens of ppm)
TYPICAL_MAX_PPM = 100.0


def _clock_for(spec: str, clock: str) -> str:
    if clock == "auto":
        return "lo" if source_kind(spec) == "sim" else "shared"
    if clock not in ("shared", "lo"):
        raise InputError(f"--clock must be auto, shared or lo, got {clock!r}")
    return clock


def _estimate(method: str, x: np.ndarray, *, fs: float, center: float, ref: float, clock: str, min_snr: float,
              search_ppm: float, raster_step: float | None, raster_origin: float, prior_ppm: float,
              prior_unc: float):
    import calibration as cal

    try:
        if method == "carrier":
            return cal.estimate_ppm_carrier(x, sample_rate_hz=fs, center_hz=center, reference_hz=ref, clock=clock,
                                            min_snr_db=min_snr, search_ppm=search_ppm)
        if method in ("fm", "fm-carrier"):
            return cal.estimate_ppm_fm(x, sample_rate_hz=fs, center_hz=center, station_hz=ref, clock=clock,
                                       reference="pilot" if method == "fm" else "carrier", min_snr_db=min_snr,
                                       search_ppm=search_ppm)
        if method == "raster":
            if raster_step is None:
                raise InputError("--method raster needs --raster-step (e.g. 12.5k)")
            return cal.estimate_ppm_raster(x, sample_rate_hz=fs, center_hz=center, near_hz=ref,
                                           raster_step_hz=raster_step, raster_origin_hz=raster_origin,
                                           prior_ppm=prior_ppm, prior_uncertainty_ppm=prior_unc, clock=clock,
                                           min_snr_db=min_snr)
    except InputError:
        raise
    except ValueError as exc:  # a bad combination of options
        hint = " (the simulator shifts only the LO: use --method fm-carrier)" if "pilot measures" in str(exc) else ""
        raise InputError(f"{exc}{hint}") from None
    raise InputError(f"--method must be carrier, fm, fm-carrier or raster, got {method!r}")


@calibrate_app.command("ppm")
def ppm_cmd(
    source: SourceArg,
    reference: Annotated[str, typer.Option("--reference-hz", "-F", help="True frequency of the reference: the carrier, the FM station, or the raster transmitter (e.g. 446.1M).")],
    method: Annotated[str, typer.Option("--method", help="carrier: a known carrier; fm: an FM station's 19 kHz pilot; fm-carrier: an FM station's carrier; raster: a licensed transmitter on a channel raster.")] = "carrier",
    raster_step: Annotated[Optional[str], typer.Option("--raster-step", help="Channel raster for --method raster (e.g. 12.5k).")] = None,
    raster_origin: Annotated[str, typer.Option("--raster-origin", help="Raster origin: channels at origin + k·step (default 0).")] = "0",
    prior_ppm: Annotated[float, typer.Option("--prior-ppm", help="Known error before (ppm) for --method raster.")] = 0.0,
    prior_uncertainty: Annotated[float, typer.Option("--prior-uncertainty", help="Uncertainty of --prior-ppm (ppm); 60 = an uncalibrated generic dongle.")] = 60.0,
    clock: Annotated[str, typer.Option("--clock", help="auto (lo for sim:, else shared), shared (one crystal for LO and ADC, as on RTL-SDRs) or lo (LO error only).")] = "auto",
    min_snr: Annotated[float, typer.Option("--min-snr", help="Smallest SNR (dB) accepted for the reference.")] = 10.0,
    search_ppm: Annotated[float, typer.Option("--search-ppm", help="Look for the reference within this many ppm of --reference-hz.")] = 200.0,
    window: Annotated[Optional[float], typer.Option("--window-s", help="Also estimate per window of this many seconds and fit a drift model.")] = None,
    duration: DurationOpt = None,
    serial: SerialOpt = None,
    profile_out: ProfileOutOpt = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure the dongle's frequency error (ppm) from a known reference in SOURCE.

    ppm is positive when the dongle tunes high (signals appear below their true frequency): the
    value rtl-sdr's freq_correction (rtlsdr:...,ppm=) takes. With --json, stdout holds
    {"ppm", "uncertainty_ppm", "reference_hz", "measured_hz", ...}.
    """
    import calibration as cal

    ref = parse_hz(reference, name="--reference-hz")
    if not ref > 0:
        raise InputError(f"--reference-hz must be > 0, got {reference}")
    step = positive_hz(raster_step, "--raster-step")
    origin = opt_hz(raster_origin, "--raster-origin") or 0.0
    if window is not None and not window > 0:
        raise InputError(f"--window-s must be > 0, got {window}")
    if not search_ppm > 0:
        raise InputError(f"--search-ppm must be > 0, got {search_ppm:g}")
    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    src = open_source(source, sample_format=format, sample_rate_hz=rate_hz, center_hz=center_hz)
    try:
        ser = _resolve_serial(serial, src, profile_out)
        x, c_hz, fs, t0 = _read_iq(src, duration, 4.0)
    finally:
        src.close()
    clk = _clock_for(source, clock)
    kw = dict(fs=fs, center=c_hz, ref=ref, clock=clk, min_snr=min_snr, search_ppm=search_ppm, raster_step=step,
              raster_origin=origin, prior_ppm=prior_ppm, prior_unc=prior_uncertainty)
    est = _estimate(method, x, **kw)
    if abs(est.ppm) > TYPICAL_MAX_PPM:
        console_err.print(f"[yellow]warning:[/] {est.ppm:+.1f} ppm is more than an RTL-SDR's crystal is usually off "
                          f"(up to about ±{TYPICAL_MAX_PPM:.0f} ppm; TCXO dongles ±1–2 ppm): check that "
                          f"{format_hz(ref)} is a steady, known reference (a licensed carrier or broadcast station, "
                          "not the emission under test)", highlight=False)
    drift = None
    windows = []
    if window is not None:
        wn = int(round(window * fs))
        n_win = x.size // wn
        if x.size - n_win * wn >= 0.99 * wn:  # a last window short by a few samples (dropped buffers) counts
            n_win += 1
        if n_win < 2:
            raise InputError(f"--window-s {window:g} leaves {n_win} window(s) in {x.size / fs:.2f} s; need ≥ 2")
        failed = 0
        for k in range(n_win):
            try:
                e = _estimate(method, x[k * wn:(k + 1) * wn], **kw)
            except cal.CalibrationError:
                failed += 1
                continue
            windows.append({"t_s": round(t0 + (k + 0.5) * wn / fs, 6), "ppm": round(e.ppm, 6),
                            "uncertainty_ppm": round(e.uncertainty_ppm, 6)})
        if failed:
            console_err.print(f"{failed} of {n_win} windows had no usable reference and were skipped")
        if len(windows) < 2:
            raise InputError(f"only {len(windows)} window(s) with a usable reference; need ≥ 2 to track drift")
        drift = cal.track_drift([w["t_s"] for w in windows], [w["ppm"] for w in windows],
                                [w["uncertainty_ppm"] for w in windows])
    written = None
    if profile_out is not None:
        sec = cal.PpmCalibration(ppm=est.ppm, uncertainty_ppm=est.uncertainty_ppm, method=est.method,
                                 date_utc=_now_utc(), reference_hz=est.reference_hz, measured_hz=est.measured_hz,
                                 clock=est.clock, source=source, drift=None if drift is None else drift.to_json())
        written = str(_save_section(profile_out, ser, ppm=sec))
    out = est.to_json()
    out.update({"source": source, "serial": ser, "freq_correction": int(round(est.ppm)),
                "drift": None if drift is None else drift.to_json(), "windows": windows or None, "profile": written})
    if json_out:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"ppm {est.ppm:+.3f} ± {est.uncertainty_ppm:.3f}  (rtl-sdr freq_correction {int(round(est.ppm))})  "
               f"reference {format_hz(est.reference_hz)} measured at {format_hz(est.measured_hz)}  "
               f"method {est.method}, clock {est.clock}, SNR {est.snr_db:.1f} dB, {est.duration_s:.2f} s")
    if est.method.startswith("fm"):
        d = est.details
        typer.echo(f"pilot {d['pilot_hz']:.4f} Hz → {d['pilot_ppm']:+.3f} ppm;  carrier {format_hz(d['carrier_hz'])} → "
                   f"{d['carrier_ppm']:+.3f} ppm;  difference {d['difference_ppm']:+.3f} ppm")
    if drift is not None:
        typer.echo(f"drift ({drift.model}, {len(windows)} windows): {drift.ppm[0]:+.3f} → {drift.ppm[-1]:+.3f} ppm, "
                   f"residual rms {drift.residual_rms_ppm:.3f} ppm, max {drift.residual_max_ppm:.3f} ppm")
    if written:
        console_err.print(f"wrote {written}")


@calibrate_app.command("iq")
def iq_cmd(
    source: SourceArg,
    duration: DurationOpt = None,
    serial: SerialOpt = None,
    profile_out: ProfileOutOpt = None,
    format: FormatOpt = None,
    rate: RateOpt = None,
    center: CenterOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Estimate DC offset and IQ imbalance blindly from SOURCE and the image rejection before and after correction.

    With --json, stdout holds {"dc_offset": {"i", "q"}, "gain_imbalance_db", "phase_imbalance_deg",
    "image_rejection_before_db", "image_rejection_after_db", ...}; DC in full-scale units, image
    rejection = strongest tone over its mirror image (dB).
    """
    import calibration as cal

    rate_hz = positive_hz(rate, "--rate")
    center_hz = opt_hz(center, "--center")
    src = open_source(source, sample_format=format, sample_rate_hz=rate_hz, center_hz=center_hz)
    try:
        ser = _resolve_serial(serial, src, profile_out)
        x, c_hz, fs, _ = _read_iq(src, duration, 1.0)
    finally:
        src.close()
    imb = cal.estimate_iq_imbalance(x)
    before = cal.image_rejection(x, sample_rate_hz=fs)
    after = cal.image_rejection(cal.correct_iq(x, imb), sample_rate_hz=fs, tone_offset_hz=before.tone_offset_hz)
    written = None
    if profile_out is not None:
        sec = cal.IqCalibration(dc_i=imb.dc_i, dc_q=imb.dc_q, gain_imbalance_db=imb.gain_imbalance_db,
                                phase_imbalance_deg=imb.phase_imbalance_deg, method="blind second-order moments",
                                date_utc=_now_utc(), image_rejection_before_db=before.rejection_db,
                                image_rejection_after_db=after.rejection_db, source=source)
        written = str(_save_section(profile_out, ser, iq=sec))
    out = {
        "dc_offset": {"i": round(imb.dc_i, 6), "q": round(imb.dc_q, 6)},
        "gain_imbalance_db": round(imb.gain_imbalance_db, 4),
        "phase_imbalance_deg": round(imb.phase_imbalance_deg, 4),
        "image_rejection_before_db": round(before.rejection_db, 2),
        "image_rejection_after_db": round(after.rejection_db, 2),
        "tone_offset_hz": round(before.tone_offset_hz, 1),
        "tone_dbfs": round(before.tone_dbfs, 2),
        "image_at_floor_before": before.image_at_floor,
        "image_at_floor_after": after.image_at_floor,
        "model_image_rejection_db": round(imb.model_image_rejection_db, 2),
        "center_hz": c_hz,
        "sample_rate_hz": fs,
        "n_samples": int(x.size),
        "source": source,
        "serial": ser,
        "profile": written,
    }
    if json_out:
        typer.echo(json.dumps(out))
        return
    bound = lambda flag: " (image at the noise floor: a lower bound)" if flag else ""  # noqa: E731
    typer.echo(f"DC offset I {imb.dc_i:+.5f} Q {imb.dc_q:+.5f} FS;  gain imbalance {imb.gain_imbalance_db:+.3f} dB, "
               f"phase imbalance {imb.phase_imbalance_deg:+.3f}°")
    typer.echo(f"image rejection at {before.tone_offset_hz / 1e3:+.1f} kHz: before {before.rejection_db:.1f} dB"
               f"{bound(before.image_at_floor)}, after {after.rejection_db:.1f} dB{bound(after.image_at_floor)}")
    if written:
        console_err.print(f"wrote {written}")


@calibrate_app.command("power")
def power_cmd(
    table: Annotated[Path, typer.Argument(help="CSV of reference measurements: gen_dbm,freq_hz,gain_db,measured_dbfs[,noise_dbfs_per_hz].")],
    serial: Annotated[str, typer.Option("--serial", help="Dongle serial the table was measured with.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Save (or update) the dongle's profile at this path (.json or .toml).")] = None,
    min_freqs: Annotated[int, typer.Option("--min-freqs", help="Frequencies each gain needs.", min=1)] = 2,
    json_out: JsonOpt = False,
) -> None:
    """Build the dBFS → dBm table (per gain, interpolated in frequency) from reference measurements.

    Each row: a generator at gen_dbm (after cable loss) and freq_hz, tuner at gain_db, carrier read
    at measured_dbfs. dBm = dBFS + (gen_dbm − measured_dbfs), interpolated linearly in frequency and gain.
    """
    import calibration as cal

    if not serial.strip():
        raise InputError("--serial must not be empty")
    if not table.is_file():
        raise InputError(f"{table}: no such file")
    try:
        text = table.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{table}: not a text CSV file") from None
    cols = cal.parse_power_csv(text, name=str(table))
    pt = cal.build_power_table(cols["gen_dbm"], cols["freq_hz"], cols["gain_db"], cols["measured_dbfs"],
                               cols.get("noise_dbfs_per_hz"), min_freqs_per_gain=min_freqs)
    written = None
    if out is not None:
        sec = cal.PowerCalibration(table=pt, method="signal-generator substitution, linear interpolation",
                                   date_utc=_now_utc(), source=str(table))
        written = str(_save_section(out, serial, power=sec))
    gains = []
    for g, fr, of, nz in zip(pt.gains_db, pt.freqs_hz, pt.offsets_db, pt.noise_dbm_per_hz):
        gains.append({"gain_db": float(g), "n_freqs": int(fr.size), "freq_min_hz": float(fr[0]),
                      "freq_max_hz": float(fr[-1]), "offset_db_min": round(float(of.min()), 3),
                      "offset_db_max": round(float(of.max()), 3),
                      "noise_dbm_per_hz": None if not np.isfinite(nz) else round(float(nz), 2)})
    result = {"serial": serial, "n_rows": pt.n_rows, "gains": gains, "profile": written}
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"power table for dongle {serial}: {pt.n_rows} rows, {len(gains)} gain(s)")
    for g in gains:
        nz = "" if g["noise_dbm_per_hz"] is None else f", noise {g['noise_dbm_per_hz']:.1f} dBm/Hz"
        typer.echo(f"  gain {g['gain_db']:5.1f} dB: {g['n_freqs']} freqs {format_hz(g['freq_min_hz'])}–"
                   f"{format_hz(g['freq_max_hz'])}, dBm − dBFS {g['offset_db_min']:+.2f} … {g['offset_db_max']:+.2f} dB{nz}")
    if written:
        console_err.print(f"wrote {written}")
    else:
        console_err.print("no profile written (give -o PROFILE.json to save it)")
