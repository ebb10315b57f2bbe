"""Simulation: synthetic IQ building blocks (``_synth``) for tests and the demo; the full simulated
exam site (scenes, moving vehicle, ground truth, scorer) builds on them (issue #4)."""

from detector.sim._synth import awgn, cu8_bytes, gate, iq_imbalance, nfm, rtl_noise_dbfs, rtl_receiver, tone

__all__ = ["awgn", "tone", "nfm", "gate", "iq_imbalance", "cu8_bytes", "rtl_receiver", "rtl_noise_dbfs"]
