"""The site configuration of a simulated scene (what a site TOML would say about it)."""

from __future__ import annotations

from detector.config.site import SiteConfig, WhitelistEntry
from detector.core.geo import enu_to_llh

__all__ = ["site_from_scene"]


def site_from_scene(scene, name: str | None = None) -> SiteConfig:
    """The site of a simulated scene (sessions in scene seconds, whitelist from the scene)."""
    lat0, lon0 = scene.site.lat0, scene.site.lon0
    buildings = [[tuple(map(float, enu_to_llh(x, y, lat0, lon0))) for x, y in poly] for poly in scene.site.buildings]
    return SiteConfig(name=name or scene.site.name, lat=lat0, lon=lon0, buildings=buildings,
                      whitelist=[WhitelistEntry(center_hz=e.f_c_hz, bandwidth_hz=e.bandwidth_hz + 5e3, name=e.id)
                                 for e in scene.emitters if e.whitelisted],
                      session_seconds=[tuple(w) for w in scene.timeline.exam], source=f"sim:{scene.name}")
