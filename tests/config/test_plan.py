"""Watch plans (``detector/plan.py``): the TOML format of the README, its errors, and the hop scheduler."""

from __future__ import annotations

import pytest

from detector.core.errors import InputError
from detector.config.plan import Scheduler, WatchPlan, load_plan, single_band_plan


def write(tmp_path, text):
    p = tmp_path / "plan.toml"
    p.write_text(text)
    return p


def test_the_readme_keys_make_a_plan_and_name_is_optional(tmp_path):
    plan = load_plan(write(tmp_path, '[[band]]\nstart_hz = "446.0M"\nstop_hz = "446.2M"\npriority = 3\ndwell_s = 2.0\n'
                                     'revisit_s = 10.0\n\n[[band]]\nname = "SRD433"\nstart_hz = 433050000\nstop_hz = "434.79M"\n'))
    a, b = plan.bands
    assert (a.name, a.start_hz, a.stop_hz, a.priority, a.dwell_s, a.revisit_s) == ("446–446.2 MHz", 446.0e6, 446.2e6, 3, 2.0, 10.0)
    assert (b.name, b.start_hz, b.stop_hz, b.priority, b.dwell_s, b.revisit_s) == ("SRD433", 433.05e6, 434.79e6, 1, 1.0, 30.0)


@pytest.mark.parametrize("text, needle", [
    ("", "needs at least one [[band]]"),
    ('[[band]]\nstart_hz = "446.2M"\nstop_hz = "446.0M"\n', "stop_hz must be above start_hz"),
    ('[[band]]\nstart_hz = "10M"\nstop_hz = "11M"\n', "outside the RTL-SDR range 24–1766 MHz"),
    ('[[band]]\nstart_hz = "446M"\nstop_hz = "447M"\npriority = 11\n', "band.0.priority"),
    ('[[band]]\nstart_hz = "446M"\nstop_hz = "447M"\ndwel_s = 2\n', "band.0.dwel_s"),
    ('[[band]\n', "not valid TOML"),
])
def test_bad_plans_name_the_file_and_the_problem(tmp_path, text, needle):
    with pytest.raises(InputError) as e:
        load_plan(write(tmp_path, text))
    assert needle in str(e.value) and "plan.toml" in str(e.value)


def test_a_folder_or_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        load_plan(tmp_path)
    with pytest.raises(InputError, match="watch plan not found"):
        load_plan(tmp_path / "nope.toml")


def test_hops_cover_each_band_with_the_usable_width():
    s = Scheduler(WatchPlan(band=[{"start_hz": 433.05e6, "stop_hz": 434.79e6}]), sample_rate_hz=1e6)
    centers = [h.center_hz for h in s.hops]
    assert len(centers) == 3  # 1.74 MHz in hops of at most 0.8 MHz
    step = centers[1] - centers[0]
    assert step <= 0.8e6 and centers[0] - step / 2 == pytest.approx(433.05e6) and centers[-1] + step / 2 == pytest.approx(434.79e6)
    assert Scheduler(single_band_plan(446.1e6, 1e6), 1e6).single


def exam_bands() -> WatchPlan:
    """The five exam bands (the default plan before issue #19)."""
    return WatchPlan(name="exam-bands", band=[
        dict(name="PMR446", start_hz=446.0e6, stop_hz=446.2e6, priority=5, dwell_s=2.0, revisit_s=10.0),
        dict(name="SRD433", start_hz=433.05e6, stop_hz=434.79e6, priority=4, dwell_s=2.0, revisit_s=10.0),
        dict(name="UHF-two-way", start_hz=400e6, stop_hz=470e6, priority=2, dwell_s=0.2, revisit_s=60.0),
        dict(name="VHF-two-way", start_hz=150e6, stop_hz=174e6, priority=2, dwell_s=0.2, revisit_s=60.0),
        dict(name="SRD868", start_hz=863e6, stop_hz=870e6, priority=3, dwell_s=1.0, revisit_s=20.0),
    ])


def test_priority_and_revisit_decide_the_order_and_an_open_track_extends_the_dwell():
    s = Scheduler(exam_bands(), sample_rate_hz=2.4e6)
    names = [s.next_hop(float(t)).band for t in range(0, 600)]
    # every hop is visited once first (57 hops, one a second here); then PMR446 (priority 5,
    # revisit 10 s) comes back far more often than a UHF hop (priority 2, revisit 60 s)
    first_round = len(s.hops)
    assert len(set(map(id, s.hops))) == first_round and set(names[:first_round]) == {b.name for b in exam_bands().bands}
    pmr = [t for t, n in enumerate(names) if n == "PMR446" and t >= first_round]
    assert len(pmr) > 50 and max(b - a for a, b in zip(pmr, pmr[1:])) <= 10
    uhf = sum(n == "UHF-two-way" for n in names) / len([h for h in s.hops if h.band == "UHF-two-way"])
    assert uhf < len(pmr)
    hop = next(h for h in s.hops if h.band == "PMR446")
    assert s.dwell_for(hop, 700.0) == 2.0
    s.extend(446.1e6, 730.0)
    assert s.dwell_for(hop, 700.0) == 10.0 and s.dwell_for(hop, 731.0) == 2.0


def test_a_band_may_say_why_it_is_watched(tmp_path):
    plan = load_plan(write(tmp_path, '[[band]]\nstart_hz = "446.0M"\nstop_hz = "446.2M"\nreason = "PMR446 hand-helds"\n'))
    assert plan.bands[0].reason == "PMR446 hand-helds"
    assert load_plan(write(tmp_path, '[[band]]\nstart_hz = "446.0M"\nstop_hz = "446.2M"\n')).bands[0].reason == ""
