"""Core value types, errors, units and small helpers shared by every layer.

:mod:`~detector.core.types` (``IQBlock``, ``Spectrum``, ``Position``), :mod:`~detector.core.errors`
(the exception hierarchy and exit codes), :mod:`~detector.core.units` (frequency parsing),
:mod:`~detector.core.geo` (site-local metres ↔ WGS84) and :mod:`~detector.core.textfile` (reading a
user's text file with one clear error). Nothing here imports another examwatch package.
"""
