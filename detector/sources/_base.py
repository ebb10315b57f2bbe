"""The source interface shared by files, the RTL-SDR and the simulator.

Every IQ source is an :class:`IQSource`: it knows its :class:`SourceInfo`, has a
:class:`SourceState`, yields blocks (:meth:`IQSource.blocks`) or is read one block at a time
(:meth:`IQSource.read`), says whether it can be retuned (:attr:`IQSource.tunable`,
:meth:`IQSource.tune`) and whether it has ended, and is closed with :meth:`IQSource.close`. The
monitor's pipeline uses only this interface (never ``hasattr``).

State changes: ``OPENED`` when constructed → ``RUNNING`` after a block was read → ``DEGRADED``
when a read raised (the next good read makes it ``RUNNING`` again) → ``ENDED`` when a finite source
has no more samples → ``CLOSED`` after :meth:`IQSource.close`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from detector.core.errors import InputError, SourceEnded
from detector.core.types import IQBlock

__all__ = ["IQSource", "SourceInfo", "SourceState", "DEFAULT_BLOCK_SAMPLES", "as_source"]

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


class SourceState(str, enum.Enum):
    """Where a source is in its life (see the module docstring)."""

    OPENED = "opened"
    RUNNING = "running"
    DEGRADED = "degraded"
    ENDED = "ended"
    CLOSED = "closed"


class IQSource:
    """Base class of every source of :class:`~detector.core.types.IQBlock`s.

    Subclasses set ``info`` and implement :meth:`blocks` (a recording: blocks from its start,
    never loading the whole file) and/or :meth:`_read_block` (a source read on demand: a dongle,
    the simulated SDR; then ``readable = True`` and :meth:`blocks` may be left to the base class),
    :meth:`_close`, and for tunable sources ``tunable = True`` and :meth:`tune`.

    :meth:`read` is the pipeline's way in: for a ``readable`` source it reads ``n_samples`` at the
    current time (any size, call by call); for a recording it returns the next block of
    ``blocks(n_samples)`` (the size of the first call). At the end it raises
    :class:`~detector.core.errors.SourceEnded`.
    """

    info: SourceInfo
    #: read(n) reads n samples at the current position (any n, call by call); False: the next block
    readable: bool = False
    #: tune(center_hz) retunes the receiver
    tunable: bool = False
    _state: SourceState = SourceState.OPENED
    _iter: Iterator[IQBlock] | None = None

    # ---- the interface --------------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        if self._state in (SourceState.OPENED, SourceState.RUNNING) and self._exhausted():
            return SourceState.ENDED
        return self._state

    @property
    def ended(self) -> bool:
        """No more samples (a finite source read to its end)."""
        return self.state is SourceState.ENDED

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        """Blocks of ``block_samples`` until the end (endless sources: until closed)."""
        while not self.ended and self._state is not SourceState.CLOSED:
            try:
                yield self.read(block_samples)
            except SourceEnded:
                return

    def read(self, n_samples: int) -> IQBlock:
        """The next block (see the class docstring); the state follows the outcome."""
        try:
            block = self._read_block(n_samples)
        except SourceEnded:
            self._state = SourceState.ENDED
            raise
        except Exception:
            self._state = SourceState.DEGRADED
            raise
        self._state = SourceState.RUNNING
        return block

    def tune(self, center_hz: float) -> None:
        """Retune (tunable sources only)."""
        raise InputError(f"{self.info.name}: this source cannot be tuned")

    def close(self) -> None:
        """Release the source (idempotent); its state is then ``CLOSED``."""
        try:
            self._close()
        finally:
            self._state = SourceState.CLOSED
            self._iter = None

    # ---- for subclasses ---------------------------------------------------------------------------
    def _read_block(self, n_samples: int) -> IQBlock:
        """Default for recordings: the next block of :meth:`blocks` (``n_samples`` of the first call)."""
        if self._iter is None:
            self._iter = iter(self.blocks(n_samples))
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = None
            raise SourceEnded(f"{self.info.name}: end of the source") from None

    def _exhausted(self) -> bool:
        """True when a source that knows its end (the simulated SDR) has reached it."""
        return False

    def _close(self) -> None:
        pass


class _LegacySource(IQSource):
    """An object with only ``info``, ``blocks()`` and ``close()`` (the interface before #17) as an
    :class:`IQSource`: read block by block from its ``blocks()``."""

    def __init__(self, obj) -> None:
        self._obj = obj
        self.info = obj.info

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[IQBlock]:
        return iter(self._obj.blocks(block_samples))

    def _close(self) -> None:
        self._obj.close()


def as_source(obj) -> IQSource:
    """``obj`` itself when it is an :class:`IQSource`, else ``obj`` (with ``info``, ``blocks()``,
    ``close()``) wrapped as one."""
    return obj if isinstance(obj, IQSource) else _LegacySource(obj)
