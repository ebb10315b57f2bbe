"""Receivers of one monitor (issue #19 item 1): specs, site tables, and each receiver's share of the plan."""

from __future__ import annotations

import pytest

from detector.config.intercept import ReceiverModel, assign
from detector.config.plan import default_plan, load_plan, single_band_plan
from detector.config.receivers import (ReceiverConfig, receiver_names, receiver_schedulers, sim_receivers_plan,
                                       split_sim_receivers)
from detector.config.site import load_site
from detector.core.errors import InputError

FS = 2.4e6


def test_sim_receiver_counts_are_parsed_and_checked():
    assert split_sim_receivers("sim:default?receivers=4") == ("sim:default", 4)
    assert split_sim_receivers("sim:default") == ("sim:default", 1)
    assert split_sim_receivers("rtlsdr:0") == ("rtlsdr:0", 1)
    with pytest.raises(InputError, match="1–16"):
        split_sim_receivers("sim:default?receivers=0")
    with pytest.raises(InputError, match="whole number"):
        split_sim_receivers("sim:default?receivers=four")
    with pytest.raises(InputError, match="unknown sim: option 'gain'"):
        split_sim_receivers("sim:default?gain=3")


def test_a_receiver_table_gives_its_source_spec():
    assert ReceiverConfig(serial="00000002", gain_db=30).source_spec() == "rtlsdr:serial=00000002,gain=30"
    assert ReceiverConfig(spec="rtlsdr:1", gain_db=25.5, ppm=-37).source_spec() == "rtlsdr:1,gain=25.5,ppm=-37"
    assert ReceiverConfig(spec="rtlsdr:1,gain=10", gain_db=25).source_spec() == "rtlsdr:1,gain=10"  # the spec wins
    assert ReceiverConfig(spec="sim:default").source_spec() == "sim:default"
    assert ReceiverConfig().source_spec() is None
    assert receiver_names(3) == ["rx0", "rx1", "rx2"]
    assert receiver_names(2, [ReceiverConfig(name="stare"), ReceiverConfig()]) == ["stare", "rx1"]
    with pytest.raises(InputError, match="unique"):
        receiver_names(2, [ReceiverConfig(name="a"), ReceiverConfig(name="a")])


def test_site_file_takes_receiver_tables(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "s"\n[[receiver]]\nname = "stare"\nserial = "1"\nbands = ["PMR446"]\n'
                 '[[receiver]]\nspec = "rtlsdr:1"\n')
    site = load_site(p)
    assert [r.name for r in site.receivers] == ["stare", None]
    assert site.receivers[0].bands == ["PMR446"]
    p.write_text('name = "s"\n[receiver]\nserial = "1"\n')  # the one-receiver table is still read
    assert load_site(p).receiver.serial == "1" and load_site(p).receivers == []
    p.write_text('name = "s"\n[[receiver]]\nspec = "rtlsdr:0"\nfrequency = 3\n')
    with pytest.raises(InputError, match="frequency"):
        load_site(p)


def test_receivers_share_the_plan_as_the_planner_assigns_it():
    plan = default_plan()
    model = ReceiverModel(sample_rate_hz=FS)
    shares = receiver_schedulers(plan, FS, 4, model=model)
    layout = assign(plan, 4, model=model)
    assert [[h.center_hz for h in s.scheduler.hops] for s in shares] == [[h.center_hz for h in hs] for hs in layout.receivers]
    every = sorted(h.center_hz for s in shares for h in s.scheduler.hops)
    from detector.config.plan import Scheduler
    assert every == sorted(h.center_hz for h in Scheduler(plan, FS).hops)  # every hop once
    # the planner lets one receiver stare at PMR446 (one hop), the others sweep the rest
    stare = [s for s in shares if s.bands == ("PMR446",)]
    assert len(stare) == 1 and stare[0].scheduler.single


def test_named_bands_are_kept_and_the_rest_assigned():
    plan = default_plan()
    shares = receiver_schedulers(plan, FS, 3, fixed=[["SRD433"], [], []])
    assert shares[0].bands == ("SRD433",)
    assert all("SRD433" not in s.bands for s in shares[1:])
    assert {b for s in shares[1:] for b in s.bands} == {b.name for b in plan.bands} - {"SRD433"}
    with pytest.raises(InputError, match="not in the watch plan"):
        receiver_schedulers(plan, FS, 2, fixed=[["NOPE"]])


def test_more_receivers_than_hops_is_refused():
    with pytest.raises(InputError, match="receiver 1 has nothing to watch"):
        receiver_schedulers(single_band_plan(446e6, FS), FS, 2)


def test_sim_receivers_each_stare_at_their_own_span():
    plan = sim_receivers_plan(446e6, 1.024e6, 4)
    shares = receiver_schedulers(plan, 1.024e6, 4)
    centers = [s.scheduler.hops[0].center_hz for s in shares]
    assert centers[0] == pytest.approx(446e6)  # the first keeps the scene's tuning
    assert centers == pytest.approx([446e6, 446e6 + 0.8192e6, 446e6 - 0.8192e6, 446e6 + 2 * 0.8192e6])  # above, below, …
    assert all(s.scheduler.single for s in shares)


def test_a_plan_file_with_receivers(tmp_path):
    p = tmp_path / "plan.toml"
    p.write_text('[[band]]\nname = "A"\nstart_hz = "446.0M"\nstop_hz = "446.2M"\npriority = 5\n'
                 '[[band]]\nname = "B"\nstart_hz = "430M"\nstop_hz = "440M"\ndwell_s = 0.1\n')
    shares = receiver_schedulers(load_plan(p), FS, 2)
    assert sorted(s.bands for s in shares) == [("A",), ("B",)]
