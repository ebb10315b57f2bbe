"""The application layer: the source-spec dispatcher, the run workflows and the monitor's assembly.

:mod:`~detector.app.sources` opens every source spec (the simulated site included);
:mod:`~detector.app.runs` runs a survey or a detection over a timeline of sources;
:mod:`~detector.app.analysis` is the ``spectrum`` command's analysis; :mod:`~detector.app.correction`
applies a dongle's calibration to its samples; :mod:`~detector.app.push` wires push and the SSE
stream into a monitor.
"""
