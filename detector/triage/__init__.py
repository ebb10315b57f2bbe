"""Triage of a detected emission (pure: arrays in, frozen dataclasses out): the modulation and
symbol rate of its data bursts (``estimate_symbols``)."""

from detector.triage._symbols import SymbolEstimate, WidthCluster, cluster_widths, elementary_period_s, estimate_symbols

__all__ = ["SymbolEstimate", "WidthCluster", "cluster_widths", "elementary_period_s", "estimate_symbols"]
