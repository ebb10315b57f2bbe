"""Pure DSP: sample conversion, framed Welch power spectra, spectrograms, DC-spike handling.

Units (defined once, here). Samples are complex with full scale at magnitude 1.0. Power is given per
RBW bin ("spectrum" scaling of ``scipy.signal.welch``): a complex exponential of amplitude A reads
``20·log10(A)`` dBFS at its bin, so a full-scale tone is 0 dBFS; white noise of total power σ² reads
``10·log10(σ²·RBW/fs)`` dBFS per bin, where RBW is the window's equivalent noise bandwidth
(Hann: 1.5 × fs/nfft). Frame stacks are ``(n_frames, n_bins)``, frequency ascending (fft-shifted).

No function here reads files, the clock or the network.
"""

from detector.dsp._convert import (cu8_to_complex64, cs8_to_complex64, cs16_to_complex64, cf32_to_complex64, count_nonfinite,
                                  replace_nonfinite)
from detector.dsp._channel import channel_bins, channel_power_db
from detector.dsp._stream import FrameStream, fft_backends
from detector.dsp._peaks import Peak, find_peaks, look_threshold_db, mark_images, noise_floor
from detector.dsp._psd import (
    PsdPlan,
    default_nfft,
    make_plan,
    framed_psd,
    welch_psd,
    frame_psd_stack,
    spectrogram,
    power_to_db,
    dc_bins,
    interpolate_dc,
)

__all__ = [
    "channel_bins",
    "channel_power_db",
    "FrameStream",
    "fft_backends",
    "Peak",
    "noise_floor",
    "look_threshold_db",
    "find_peaks",
    "mark_images",
    "cu8_to_complex64",
    "cs8_to_complex64",
    "cs16_to_complex64",
    "cf32_to_complex64",
    "count_nonfinite",
    "replace_nonfinite",
    "PsdPlan",
    "default_nfft",
    "make_plan",
    "framed_psd",
    "welch_psd",
    "frame_psd_stack",
    "spectrogram",
    "power_to_db",
    "dc_bins",
    "interpolate_dc",
]
