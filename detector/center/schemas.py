"""The command center's messages and results: :class:`Heartbeat` (a vehicle's heartbeat body),
:class:`CenterAlert` (an alert as the center shows it), :class:`IngestResult`, the
:class:`IngestError` of a refused push, and :func:`load_vehicle_tokens` (the vehicle-tokens file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from detector.alerts import AlertPublic
from detector.core.errors import InputError
from detector.push.messages import SpectrumSummary

__all__ = ["CenterAlert", "Heartbeat", "IngestError", "IngestResult", "load_vehicle_tokens"]


class IngestError(InputError):
    """A pushed alert the center refuses (bad body, key mismatch, id of another vehicle)."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.alert_id: str | None = None


class Heartbeat(BaseModel):
    """A vehicle's heartbeat (HTTP ``POST /ingest/heartbeat`` or MQTT ``…/status``): who, where,
    when (``at``, UNIX seconds) and its ``/health``, push counters and a spectrum summary.
    Anything else is refused (422), so that a stray body never replaces a vehicle's health."""

    model_config = ConfigDict(extra="forbid")
    vehicle_id: str | None = None
    site: str | None = None
    at: float | None = None
    health: dict | None = None
    push: dict | None = None
    spectrum: SpectrumSummary | None = None

    @classmethod
    def parse(cls, body) -> "Heartbeat":
        """Validate ``body``; :class:`IngestError` (422) names the first problem."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise IngestError(f"heartbeat: {'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}") from None

    def status(self) -> dict:
        """What the center keeps as the vehicle's health (everything but the spectrum)."""
        return self.model_dump(exclude={"spectrum"})

    def spectrum_dict(self) -> dict | None:
        return None if self.spectrum is None else self.spectrum.model_dump()


class CenterAlert(AlertPublic):
    """An alert as the center shows it: the vehicle's alert plus who pushed it and when it arrived."""

    vehicle_id: str
    received_at: datetime | None = None


@dataclass
class IngestResult:
    status: str  # stored | stale | duplicate
    seq: int | None
    version: int
    need_evidence: list[str] = field(default_factory=list)


def load_vehicle_tokens(path: Path) -> dict[str, str]:
    """Parse a vehicle-tokens file: one ``vehicle_id token`` per line; ``#`` starts a comment.

    Returns ``{token: vehicle_id}``. Malformed lines, repeated vehicle ids and repeated tokens are
    an :class:`InputError` naming the line.
    """
    path = Path(path)
    from detector.core.textfile import read_text

    text = read_text(path, "--vehicle-tokens")
    tokens: dict[str, str] = {}
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{path}:{n}: expected 'vehicle_id token', got {len(parts)} field(s).")
        vid, tok = parts
        if vid in seen:
            raise InputError(f"{path}:{n}: vehicle {vid!r} is listed twice.")
        if tok in tokens:
            raise InputError(f"{path}:{n}: the token of {vid!r} is also the token of {tokens[tok]!r}.")
        if len(tok) < 8:
            raise InputError(f"{path}:{n}: the token of {vid!r} is shorter than 8 characters.")
        seen.add(vid)
        tokens[tok] = vid
    return tokens
