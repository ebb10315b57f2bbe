"""``deploy/``: the systemd units verify and call examwatch with options it has; the Mosquitto
configuration and ACL work on the real broker (a vehicle publishes only under its own id, the
center reads all, nobody anonymous); the compose file wires the center to PostgreSQL and Mosquitto;
the udev rule covers both RTL2832U product ids."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import typer

from detector.cli import app
from tests.push import Mosquitto, skip_or_fail

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXAMWATCH = Path(sys.executable).with_name("examwatch")


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # keep the keys' case
    text = (DEPLOY / name).read_text().replace("\\\n", " ")
    cp.read_string(text)
    return cp


def _env(name: str) -> dict[str, str]:
    out = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def _expand(cmd: str, env: dict[str, str]) -> list[str]:
    """systemd's expansion: ``${VAR}`` one word, ``$VAR`` split on white space."""
    words = []
    for w in shlex.split(cmd):
        if w.startswith("${") and w.endswith("}"):
            words.append(env[w[2:-1]])
        elif w.startswith("$"):
            words.extend(env[w[1:]].split())
        else:
            words.append(w)
    return words


def _parses(argv: list[str]) -> None:
    """``examwatch ARGV`` parses (the command, its options and arguments exist), without running it;
    raises click's ``UsageError`` (typer's own copy of click) otherwise."""
    cmd = typer.main.get_command(app)
    context = type(cmd.make_context("examwatch", ["--help"], resilient_parsing=True))
    args = list(argv[1:])
    ctx = context(cmd, info_name="examwatch")
    name = "examwatch"
    while hasattr(cmd, "list_commands"):  # a group: descend to the command
        name, args = args[0], args[1:]
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"examwatch has no command {name!r}"
        cmd, ctx = sub, context(sub, parent=ctx, info_name=name)
    cmd.make_context(name, args, parent=ctx.parent)


@pytest.mark.parametrize("unit, env", [("examwatch-monitor.service", "monitor.env.example"),
                                       ("examwatch-center.service", "center.env.example")])
def test_units_run_examwatch_with_options_it_has(unit, env):
    cp = _unit(unit)
    svc = cp["Service"]
    assert svc["User"] == "examwatch" and svc["Restart"] == "on-failure" and svc["RestartPreventExitStatus"] == "2"
    assert svc["StateDirectory"] in ("examwatch", "examwatch-center")
    assert svc["ReadWritePaths"] == f"/var/lib/{svc['StateDirectory']}"
    values = _env(env)
    for key in ("ExecStartPre", "ExecStart"):
        if key in svc:
            argv = _expand(svc[key], values)
            assert argv[0] == "/opt/examwatch/venv/bin/examwatch"
            _parses(argv)  # raises click.UsageError on an option examwatch does not have


def test_a_unit_with_a_wrong_option_is_caught():
    with pytest.raises(Exception, match="No such option: --no-such-option"):
        _parses(["examwatch", "monitor", "rtlsdr:0", "--site", "s", "--no-such-option"])
    with pytest.raises(Exception, match="Missing parameter: site"):
        _parses(["examwatch", "monitor", "rtlsdr:0"])
    with pytest.raises(Exception, match="No such option: --centre"):
        _parses(["examwatch", "db", "upgrade", "--centre"])


def test_units_verify_with_systemd(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None or not EXAMWATCH.exists():
        skip_or_fail("systemd-analyze or the examwatch script is not installed")
    for name in ("examwatch-monitor.service", "examwatch-center.service"):
        # the same unit with the installed examwatch in place of /opt/examwatch/venv
        (tmp_path / name).write_text((DEPLOY / name).read_text().replace("/opt/examwatch/venv/bin/examwatch", str(EXAMWATCH)))
    r = subprocess.run([exe, "verify", *(str(tmp_path / n) for n in ("examwatch-monitor.service", "examwatch-center.service"))],
                       capture_output=True, text=True, timeout=60)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "examwatch" in ln]
    assert r.returncode == 0 and lines == [], r.stdout + r.stderr


def test_udev_rule_and_blacklist():
    rules = [ln for ln in (DEPLOY / "99-examwatch-rtlsdr.rules").read_text().splitlines() if ln and not ln.startswith("#")]
    assert sorted(ln.split('ATTRS{idProduct}=="')[1][:4] for ln in rules) == ["2832", "2838"]
    assert all('ATTRS{idVendor}=="0bda"' in ln and 'GROUP="plugdev"' in ln and 'MODE="0660"' in ln for ln in rules)
    assert "SupplementaryGroups=plugdev" in (DEPLOY / "examwatch-monitor.service").read_text()
    assert "blacklist dvb_usb_rtl28xxu" in (DEPLOY / "modprobe-examwatch-rtlsdr.conf").read_text().splitlines()


def test_compose_wires_the_center_to_postgresql_and_mosquitto():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = doc["services"]
    assert svc["db"]["image"].startswith("postgres:") and svc["mqtt"]["image"].startswith("eclipse-mosquitto:")
    cmd = svc["center"]["command"]
    db_url = cmd[cmd.index("--db") + 1]
    assert cmd[0] == "serve" and db_url.startswith("postgresql://examwatch:") and "@db:5432/" in db_url
    assert "@mqtt:1883" in cmd[cmd.index("--mqtt") + 1]
    assert svc["center"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert svc["upgrade"]["profiles"] == ["upgrade"] and svc["upgrade"]["command"][:3] == ["db", "upgrade", "--center"]
    _parses(["examwatch", *[c.replace("${EXAMWATCH_DB_PASSWORD}", "pw").split(":?")[0] for c in cmd]])
    docker = (DEPLOY / "Dockerfile").read_text()
    assert docker.startswith("# ") and "FROM python:3.11-slim" in docker and "USER examwatch" in docker


# --- Mosquitto with deploy/mosquitto's configuration -----------------------------------------------------
def _broker(tmp_path: Path, users: dict[str, str]):
    if shutil.which("mosquitto_passwd") is None:
        skip_or_fail("mosquitto_passwd is not installed (apt-get install mosquitto)")
    m = Mosquitto(tmp_path)  # finds the binary (skips without it), a free port
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, pw in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True, capture_output=True)
    import getpass

    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    conf = (conf.replace("listener 1883", f"listener {m.port} 127.0.0.1")
                .replace("/mosquitto/config/passwd", str(passwd))
                .replace("/mosquitto/config/acl", str(DEPLOY / "mosquitto" / "acl"))
                .replace("/mosquitto/data/", f"{tmp_path}/")
                .replace("log_dest stdout", f"log_dest file {tmp_path}/mosquitto.log\nuser {getpass.getuser()}"))
    m.conf.write_text(conf)
    return m.start()


def _client(port: int, user: str | None, pw: str | None):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}")
    if user is not None:
        c.username_pw_set(user, pw)
    got, connected = [], threading.Event()
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload))
    c.on_connect = lambda cl, ud, flags, rc, props=None: (ud, connected.set(), got.append(("rc", rc.value)))
    c.connect("127.0.0.1", port)
    c.loop_start()
    connected.wait(5)
    return c, got


def test_the_broker_config_lets_each_vehicle_publish_only_under_its_own_id(tmp_path):
    m = _broker(tmp_path, {"examwatch-center": "c-secret", "van-01": "v1-secret"})
    try:
        center, got = _client(m.port, "examwatch-center", "c-secret")
        center.subscribe("examwatch/#", qos=1)
        van, vgot = _client(m.port, "van-01", "v1-secret")
        time.sleep(0.3)
        van.publish("examwatch/lycee/van-01/alerts", b"mine", qos=1).wait_for_publish(5)
        van.publish("examwatch/lycee/van-02/alerts", b"forged", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and ("examwatch/lycee/van-01/alerts", b"mine") not in got:
            time.sleep(0.05)
        time.sleep(0.3)
        assert [g for g in got if g[0] != "rc"] == [("examwatch/lycee/van-01/alerts", b"mine")]  # the forged one dropped
        anon, agot = _client(m.port, None, None)
        wrong, wgot = _client(m.port, "van-01", "wrong")
        assert agot and agot[0][1] != 0 and wgot and wgot[0][1] != 0  # refused: not authorised / bad password
        for c in (center, van, anon, wrong):
            c.loop_stop()
            c.disconnect()
    finally:
        m.stop()
