"""The command center's own routers (:mod:`.ingest`, :mod:`.overview`, :mod:`.vehicles`) and their
dependencies; the read routes it shares with the vehicle are :mod:`detector.api.routes`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

__all__ = ["Center", "CenterSettings", "SilentAfter"]


@dataclass(frozen=True)
class CenterSettings:
    """What the center's routes read besides the store (``app.state.center``)."""

    store: object  # a CenterStore
    known: tuple[str, ...]  # vehicle ids of the tokens file
    silent_after_s: float  # default silence threshold of /overview and /vehicles


def get_center(request: Request) -> CenterSettings:
    return request.app.state.center


Center = Annotated[CenterSettings, Depends(get_center)]
SilentAfter = Annotated[float | None, Query(alias="silent_after_s", gt=0, le=86400 * 30, allow_inf_nan=False,
                                               description="A vehicle is silent after this many seconds without contact "
                                                           "(default: the server's --silent-after).")]
