"""``[[jammer]]`` of the site TOML: the declared exam-room jammers, validated with clear errors."""

from __future__ import annotations

import pytest

from detector.config.site import load_site
from detector.core.errors import InputError

HEAD = '''name = "school-7"

[[session]]
name = "Chinese"
start = "2026-06-07T09:00:00+08:00"
end = "2026-06-07T11:30:00+08:00"

[[session]]
name = "Maths"
start = "2026-06-07T15:00:00+08:00"
end = "2026-06-07T17:00:00+08:00"
'''


def site(tmp_path, body: str):
    p = tmp_path / "school-7.toml"
    p.write_text(HEAD + body)
    return load_site(p)


def test_jammers_by_band_edges_or_center_and_their_sessions(tmp_path):
    s = site(tmp_path, '''
[[jammer]]
name = "A"
room = "A-101"
f_lo_hz = "430M"
f_hi_hz = "440M"
sessions = ["Maths"]
off_after_s = 20

[[jammer]]
name = "B"
center_hz = "935M"
bandwidth_hz = "25M"
''')
    a, b = s.jammers_obj()
    assert (a.name, a.room, a.f_lo_hz, a.f_hi_hz, a.sessions, a.off_after_s) == ("A", "A-101", 430e6, 440e6, ("Maths",), 20.0)
    assert (b.f_lo_hz, b.f_hi_hz, b.sessions, b.off_after_s, b.grace_s) == (922.5e6, 947.5e6, None, 10.0, 900.0)
    assert [j["name"] for j in s.summary()["jammers"]] == ["A", "B"]


def test_jammers_table_name_also_accepted(tmp_path):
    s = site(tmp_path, '[[jammers]]\nname = "A"\nf_lo_hz = 430e6\nf_hi_hz = 440e6\n')
    assert s.jammers_obj()[0].f_hi_hz == 440e6


@pytest.mark.parametrize("body, words", [
    ('f_lo_hz = "440M"\nf_hi_hz = "430M"', "jammer 'A': its band 4.4e+08–4.3e+08 Hz must have 0 < f_lo_hz < f_hi_hz"),
    ('f_lo_hz = "430M"', "jammer 'A': f_lo_hz and f_hi_hz go together"),
    ('center_hz = "435M"', "jammer 'A': center_hz and bandwidth_hz go together"),
    ('f_lo_hz = "430M"\nf_hi_hz = "440M"\ncenter_hz = "435M"\nbandwidth_hz = "10M"', "not both"),
    ('room = "A-1"', "jammer 'A': needs its band"),
    ('f_lo_hz = "430Q"\nf_hi_hz = "440M"', "frequency"),
    ('f_lo_hz = "430M"\nf_hi_hz = "440M"\nsessions = ["Physics"]',
     "jammer 'A': unknown session 'Physics' (the site's sessions: 'Chinese', 'Maths')"),
    ('f_lo_hz = "430M"\nf_hi_hz = "440M"\nsessions = []', "sessions is empty"),
    ('f_lo_hz = "430M"\nf_hi_hz = "440M"\noff_after_s = 0', "off_after_s"),
    ('f_lo_hz = "430M"\nf_hi_hz = "440M"\nband = 3', "band"),
])
def test_bad_jammers_are_clear_errors(tmp_path, body, words):
    with pytest.raises(InputError) as exc:
        site(tmp_path, f'[[jammer]]\nname = "A"\n{body}\n')
    msg = str(exc.value)
    assert "invalid site" in msg and words in msg, msg
    assert "Value error" not in msg


def test_two_jammers_with_one_name_are_an_error(tmp_path):
    with pytest.raises(InputError, match="two jammers are named 'A'"):
        site(tmp_path, '[[jammer]]\nname = "A"\nf_lo_hz = 1e8\nf_hi_hz = 2e8\n[[jammer]]\nname = "A"\nf_lo_hz = 3e8\nf_hi_hz = 4e8\n')
