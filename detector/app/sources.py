"""The source-spec dispatcher: every spec a command takes, the simulated site included.

:func:`open_source` opens ``sim:`` specs as a :class:`~detector.sim.sdr.SimSDR` and hands every
other spec (recordings, ``rtlsdr:``) to :func:`detector.sources.open_iq`; the sources layer
itself never imports the simulation.
"""

from __future__ import annotations

from datetime import datetime

from detector.sources import check_source_options, open_iq, source_kind

__all__ = ["open_source", "source_kind"]


def open_source(
    spec: str,
    *,
    sample_format: str | None = None,
    sample_rate_hz: float | None = None,
    center_hz: float | None = None,
    start: datetime | None = None,
    device_factory=None,
    sim_window: str = "exam",
    sim_seed: int | None = None,
    realtime: bool = False,
    sim_receiver: int = 0,
):
    """Open an IQ source from a spec and the common source options.

    Parameters
    ----------
    spec : str
        ``sim:default``, ``sim:SCENE.toml``, ``rtlsdr:…`` or a path (see :mod:`detector.sources`).
    sample_format, sample_rate_hz, center_hz, start, device_factory
        As :func:`detector.sources.open_iq`; for ``sim:`` a center or rate retunes the
        simulated receiver.
    sim_window : {"survey", "exam", "all"}
        For ``sim:`` specs: which window of the scene the source covers (``survey`` reads the
        survey, ``replay``/``monitor``/``demo`` the exam sessions).
    sim_seed : int, optional
        Overrides the scene's seed.
    realtime : bool
        ``sim:`` only: pace the simulated receiver to the wall clock.
    sim_receiver : int
        ``sim:`` only: which of the vehicle's simulated receivers (0: the scene's own; others see
        the same world with their own noise and impairments).

    Raises
    ------
    InputError
        As :func:`detector.sources.open_iq`; an unknown or invalid scene.
    DeviceError
        ``rtlsdr:`` with no librtlsdr or no dongle.
    """
    if source_kind(spec) != "sim":
        return open_iq(spec, sample_format=sample_format, sample_rate_hz=sample_rate_hz, center_hz=center_hz,
                       start=start, device_factory=device_factory)
    check_source_options(sample_format, sample_rate_hz, center_hz)
    from detector.sim.scene import scene_from_spec
    from detector.sim.sdr import SimSDR

    scene = scene_from_spec(spec)
    sdr = SimSDR(scene, seed=sim_seed, window=sim_window, realtime=realtime, receiver=sim_receiver)
    if center_hz is not None or sample_rate_hz is not None:
        sdr.tune(center_hz or sdr.center_hz, sample_rate_hz)
    return sdr
