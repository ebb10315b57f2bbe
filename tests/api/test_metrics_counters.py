"""``/metrics`` counters added by issue #24: retunes, non-finite samples and the frames left out for them."""

from __future__ import annotations

from types import SimpleNamespace

from detector.api.routes.metrics import metrics_text
from detector.pipeline.status import MonitorStatus


class _Store:
    def list(self, limit=1):
        return [], 0

    def open_alerts(self):
        return []


def test_retunes_and_nonfinite_samples_are_counters():
    st = MonitorStatus(retunes=7, nonfinite_samples=1234, frames_excluded=56)
    ctx = SimpleNamespace(monitor=SimpleNamespace(health=st.as_dict), store=_Store())
    text = metrics_text(ctx)
    assert "# TYPE examwatch_retunes_total counter" in text or "# TYPE examwatch_retunes counter" in text
    assert "examwatch_retunes_total 7.0" in text
    assert "examwatch_nonfinite_samples_total 1234.0" in text
    assert "examwatch_frames_excluded_total 56.0" in text and st.as_dict()["frames_excluded"] == 56
    assert "examwatch_reopen_count 0.0" in text  # the gauges are still there
