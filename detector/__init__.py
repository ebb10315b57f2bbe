"""examwatch: radio monitoring of exam sites.

Packages follow the data flow of ``DESIGN.md``: ``detector.sources`` (IQ and sweeps) →
``detector.dsp`` (power spectra) → detection → localization → alerts → API. Core value types live in
:mod:`detector.core.types`; errors in :mod:`detector.core.errors`.
"""

__version__ = "0.1.0"
