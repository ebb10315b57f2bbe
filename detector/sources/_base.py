"""The source interface shared by files, the RTL-SDR and the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Protocol

from detector.core.types import IQBlock

__all__ = ["IQSource", "SourceInfo", "DEFAULT_BLOCK_SAMPLES"]

#: Default block length (complex samples): 2^18 = 0.1 s at 2.4 MS/s, ~1 s at 250 kS/s.
DEFAULT_BLOCK_SAMPLES = 1 << 18


@dataclass(frozen=True)
class SourceInfo:
    """What a source knows about itself before it is read."""

    kind: str  # "raw", "wav", "sigmf", "rtlsdr", "sim"
    name: str
    center_hz: float
    sample_rate_hz: float
    sample_format: str | None = None
    n_samples: int | None = None  # None for endless sources
    start: datetime | None = None
    serial: str | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.n_samples is None else self.n_samples / self.sample_rate_hz


class IQSource(Protocol):
    """A source of :class:`~detector.core.types.IQBlock`s read one block at a time.

    ``blocks()`` never loads a whole recording; endless sources (a dongle) yield until closed.
    """

    info: SourceInfo

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]: ...

    def close(self) -> None: ...
