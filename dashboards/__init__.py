"""Figures drawn with matplotlib (Agg backend): functions that take data and return a Figure."""
