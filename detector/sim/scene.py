"""Scene files: the simulated exam site (``SCENES.md`` §3), validated with pydantic.

A scene is TOML. ``sim:default`` is built in (``default.toml`` beside this module): a compressed
timeline — a survey of a few minutes, then an exam session in which the hidden transmitter starts a
couple of minutes in — so that ``examwatch demo`` finishes quickly. Scene seconds are the time
axis of every event, of the ground truth and of the scorer.

Positions are local ENU metres about the site origin (``SCENES.md`` §3.1); frequencies in Hz
(strings such as ``"446.08125M"`` accepted); powers in dBm (EIRP) or dB.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.core.errors import InputError
from detector.core.units import parse_hz

__all__ = [
    "Scene", "Emitter", "Receiver", "Route", "Propagation", "Timeline", "Site", "GpsModel",
    "load_scene", "scene_from_spec",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hz(v):
    return parse_hz(v, name="frequency") if isinstance(v, str) else float(v)


class Site(_Model):
    name: str = "exam-site"
    lat0: float = 50.0
    lon0: float = 10.0
    #: building footprint polygons, ENU metres [[x, y], ...]
    buildings: list[list[tuple[float, float]]] = Field(default_factory=lambda: [[(-30, -15), (30, -15), (30, 15), (-30, 15)]])


class Timeline(_Model):
    """Windows in scene seconds: the survey (baseline) and the exam sessions (monitoring)."""

    survey: tuple[float, float] = (0.0, 120.0)
    exam: list[tuple[float, float]] = Field(default_factory=lambda: [(150.0, 390.0)])

    @model_validator(mode="after")
    def _order(self):
        for a, b in [self.survey, *self.exam]:
            if not b > a >= 0:
                raise ValueError(f"window ({a}, {b}) must have 0 ≤ start < end")
        return self


class Receiver(_Model):
    """RTL-SDR R820T2/RTL2832U model (``SCENES.md`` §3.6)."""

    center_hz: float = 446.0e6
    sample_rate_hz: float = 1.024e6
    gain_db: float = 40.0
    noise_figure_db: Optional[float] = None  # None: NF(G) = 3.7 + 0.8·(49.6 − G), floor 3.7 dB
    dc_offset_lsb: tuple[float, float] = (1.5, -1.0)
    iq_gain_db: float = 0.3
    iq_phase_deg: float = 2.0
    ppm: float = 3.0
    drift_ppm: float = 0.0  # warm-up drift reached with τ = drift_tau_s
    drift_tau_s: float = 600.0
    settle_s: float = 0.03
    drop_probability: float = 1e-4  # per 16 kB USB buffer
    quantize: bool = True
    #: receivers of the vehicle (issue #19): ``monitor sim:SCENE`` watches with this many simulated
    #: dongles (``Scene.receiver_variant``), as ``sim:SCENE?receivers=N`` does
    count: int = Field(default=1, ge=1, le=16)

    _hz_fields = field_validator("center_hz", "sample_rate_hz", mode="before")(_hz)

    @property
    def nf_db(self) -> float:
        return self.noise_figure_db if self.noise_figure_db is not None else max(3.7, 3.7 + 0.8 * (49.6 - self.gain_db))

    @property
    def full_scale_dbm(self) -> float:
        """Input power (dBm) that reaches ADC full scale at this gain: P_FS(G) ≈ −22 − G."""
        return -22.0 - self.gain_db


class Emitter(_Model):
    """One transmitter. ``schedule`` lists (start, end) scene seconds; ``calls_per_hour`` adds
    Poisson calls (duration lognormal, median ``call_median_s``) over ``poisson_window``."""

    id: str
    kind: Literal["background", "licensed_intermittent", "anomalous_benign", "target"] = "background"
    f_c_hz: float
    modulation: Literal["cw", "nfm", "fsk", "wfm", "ofdm"] = "nfm"
    bandwidth_hz: float = 11e3
    eirp_dbm: float = 13.0
    position: tuple[float, float] = (0.0, 0.0)
    #: optional straight-line motion (ENU m/s) for passers-by
    velocity_mps: tuple[float, float] = (0.0, 0.0)
    height_m: float = 1.0
    indoor: bool = False
    path_loss_exponent: float = 3.0
    schedule: list[tuple[float, float]] = Field(default_factory=list)
    calls_per_hour: float = 0.0
    call_median_s: float = 8.0
    call_sigma_ln: float = 0.7
    poisson_window: Optional[tuple[float, float]] = None
    deviation_hz: float = 2500.0
    fsk_shift_hz: float = 5000.0
    fsk_baud: float = 4800.0
    whitelisted: bool = False

    _hz_fields = field_validator("f_c_hz", "bandwidth_hz", mode="before")(_hz)


class Propagation(_Model):
    shadow_sigma_db: float = 6.0
    shadow_dc_m: float = 30.0
    shadow_grid_m: float = 5.0
    building_loss_db: float = 12.0
    fast_fading: Literal["rayleigh", "rice", "none"] = "rice"
    rice_k_db: float = 3.0


class Route(_Model):
    """The vehicle's loop: waypoints (ENU m), speed, stops at corners; parked outside the exam."""

    waypoints: list[tuple[float, float]] = Field(default_factory=lambda: [(-120, -90), (120, -90), (120, 90), (-120, 90), (-120, -90)])
    speed_mps: float = 8.0
    stop_s: float = 5.0
    park: tuple[float, float] = (-120.0, 0.0)
    antenna_ripple_db: float = 1.5


class GpsModel(_Model):
    bias_sigma_m: float = 3.0
    bias_tau_s: float = 60.0
    noise_sigma_m: float = 1.5
    rate_hz: float = 1.0


class Scene(_Model):
    """A simulated exam site with ground truth (see the module docstring)."""

    name: str = "default"
    seed: int = 2026
    version: int = 1
    site: Site = Field(default_factory=Site)
    timeline: Timeline = Field(default_factory=Timeline)
    receiver: Receiver = Field(default_factory=Receiver)
    propagation: Propagation = Field(default_factory=Propagation)
    route: Route = Field(default_factory=Route)
    gps: GpsModel = Field(default_factory=GpsModel)
    emitters: list[Emitter] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self):
        ids = [e.id for e in self.emitters]
        if len(ids) != len(set(ids)):
            raise ValueError("emitter ids must be unique")
        return self

    @property
    def sessions(self) -> list[tuple[float, float]]:
        return list(self.timeline.exam)

    def with_seed(self, seed: int) -> "Scene":
        return self.model_copy(update={"seed": int(seed)})

    def receiver_variant(self, k: int) -> "Scene":
        """The scene as seen by the vehicle's receiver ``k`` (several dongles in one vehicle, issue
        #19): the same world (route, emitters, shadowing); receiver 0 is the scene's own, the
        others have impairments of their own (crystal error, DC offset, IQ imbalance), as
        different dongles do."""
        if k == 0:
            return self
        rx = self.receiver
        sign = 1.0 if k % 2 else -1.0
        dc_i, dc_q = rx.dc_offset_lsb
        update = {"ppm": rx.ppm + sign * 4.0 * ((k + 1) // 2) + 1.5 * k,
                  "dc_offset_lsb": (dc_i - 0.5 * sign * k, dc_q + 0.4 * k),
                  "iq_gain_db": rx.iq_gain_db + 0.1 * k * sign,
                  "iq_phase_deg": rx.iq_phase_deg - 0.5 * k * sign}
        return self.model_copy(update={"receiver": rx.model_copy(update=update)})


def _validated(data: dict, where: str) -> Scene:
    try:
        return Scene.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{where}: invalid scene: {loc}: {first['msg']} ({exc.error_count()} error(s))") from None


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene TOML file. Raises :class:`InputError` with the first problem."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: scene file not found")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    return _validated(data, str(p))


def scene_from_spec(spec: str) -> Scene:
    """``sim:default`` (built in) or ``sim:PATH.toml``."""
    if not spec.startswith("sim:"):
        raise InputError(f"{spec!r} is not a sim: spec (use sim:default or sim:PATH.toml)")
    name = spec[4:]
    if name in ("", "default"):
        text = resources.files("detector.sim").joinpath("default.toml").read_text()
        return _validated(tomllib.loads(text), "sim:default")
    return load_scene(name)
