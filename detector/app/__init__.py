"""The application layer: the composition root, the source-spec dispatcher and the run workflows.

:mod:`~detector.app.monitor_app` composes every run in one place (:func:`build_engine` for survey,
replay, demo and the bench; :class:`MonitorApp` for ``monitor`` and ``demo``: store, token, lock,
engine, monitor, API, SSE and push, with an explicit shutdown sequence);
:mod:`~detector.app.monitor_setup` resolves the monitor's site, source, plan and baseline fit;
:mod:`~detector.app.sources` opens every source spec (the simulated site included);
:mod:`~detector.app.runs` runs a survey or a detection over a timeline of sources;
:mod:`~detector.app.analysis` is the ``spectrum`` command's analysis; :mod:`~detector.app.correction`
applies a dongle's calibration to its samples; :mod:`~detector.app.gps` gives the pipeline the
receiver's position (``--gps``); :mod:`~detector.app.push` makes the push sender and the SSE router.
"""
