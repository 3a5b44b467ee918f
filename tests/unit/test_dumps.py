"""keepalived's dump files as text (daemon/dumps.py), keepalived's signal table (daemon/signals.py) and
`--signum`. The layouts are keepalived 2.2.7's; tests/interop/test_keepalived_dumps.py holds them against
the real keepalived, these hold the details and the cases the interop run does not reach (VMAC, AH, INIT,
STATS_CLEAR, a thousand instances)."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import pytest

from fastvrrp import cli
from fastvrrp.config import load
from fastvrrp.core.types import Stats
from fastvrrp.daemon import dumps, signals

CONF = """\
global_defs {
    router_id lb1
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    weight 5
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority 100
    advert_int 0.1
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/32
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    version 2
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    use_vmac
    virtual_ipaddress {
        198.51.100.1/32
    }
}
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 53
    priority 100
    advert_int 0.1
    virtual_ipaddress {
        2001:db8::100/64
    }
}
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "keepalived.conf"
    p.write_text(CONF)
    return load(str(p))


def row(icfg, state="MASTER", **kw) -> dumps.InstanceDump:
    base = dict(
        cfg=icfg,
        state=state,
        effective_priority=icfg.priority,
        ifname="eth0",
        parent_ifname=None,
        src_ip="192.0.2.1",
        master_src=None,
        master_priority=0,
        master_adver_int_ms=icfg.advert_int_ms,
        last_transition=1796584412.873706,
        read_timeout=1796584416.278428,
        master_down_us=321875,
        vipset=state == "MASTER",
        faults=0,
        fd_in=13,
        fd_out=14,
        ifindex=7,
        counters={k: 0 for k in dumps.STATS_KEYS},
    )
    base.update(kw)
    return dumps.InstanceDump(**base)


# keepalived 2.2.7's /tmp/keepalived.stats for one instance (as in a run: 34 adverts sent, master once)
KEEPALIVED_STATS = """\
VRRP Instance: VI_1
  Advertisements:
    Received: 0
    Sent: 34
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 0
    TTL: 0
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 0
  Priority Zero:
    Received: 0
    Sent: 0
"""


def test_stats_text_is_keepalived_s(cfg):
    counters = dumps.keepalived_counters(Stats(became_master=1), {"sent": 34}, is_master=True)
    text = dumps.render_stats([row(cfg.instances[0], counters=counters)])
    assert text == KEEPALIVED_STATS


def test_counters_map_core_and_engine():
    st = Stats(
        adverts_rx=5,
        priority_zero_rx=2,
        priority_zero_tx=1,
        became_master=3,
        interval_mismatch=4,
        auth_mismatch=6,
        address_list_mismatch=7,
    )
    c = dumps.keepalived_counters(st, {"sent": 10, "rx_fast": 100}, is_master=False)
    assert c == {
        "advert_rcvd": 105,  # the core's and the fast path's
        "advert_sent": 11,  # the slot's and the priority-0 resignation
        "become_master": 3,
        "release_master": 3,  # not master now: every MASTER entry was left
        "packet_len_err": 0,
        "advert_interval_err": 4,
        "ip_ttl_err": 0,
        "invalid_type_rcvd": 0,
        "addr_list_err": 7,
        "invalid_authtype": 0,
        "authtype_mismatch": 6,
        "auth_failure": 0,
        "pri_zero_rcvd": 2,
        "pri_zero_sent": 1,
    }
    assert dumps.keepalived_counters(st, None, is_master=True)["release_master"] == 2
    assert list(c) == list(dumps.STATS_KEYS)


def test_stats_clear_counts_from_the_clear():
    b = dumps.StatsBaseline()
    b.clear({"VI_1": {"advert_sent": 30, "become_master": 1}})
    assert b.since_clear("VI_1", {"advert_sent": 34, "become_master": 1}) == {
        "advert_sent": 4,
        "become_master": 0,
    }
    assert b.since_clear("VI_2", {"advert_sent": 3}) == {"advert_sent": 3}
    b.forget_except(["VI_2"])  # VI_1 removed by a reload: a new VI_1 starts from its own zero
    assert b.since_clear("VI_1", {"advert_sent": 2}) == {"advert_sent": 2}


def test_json_layout_and_keys(cfg):
    v1, v2, v6 = cfg.instances
    rows = [
        row(v1, "BACKUP", master_src="192.0.2.2", master_priority=200, effective_priority=105),
        row(v2, ifname="vrrp.52", parent_ifname="eth0"),
        row(v6, "INIT", read_timeout=None),
    ]
    text = dumps.render_json(rows, cfg.vrrp_scripts)
    assert text.endswith("}}]\n") and "\n" not in text[:-1] and ": " not in text  # compact, one line
    doc = json.loads(text)
    assert [set(e) for e in doc] == [{"data", "stats"}] * 3
    d1, d2, d6 = (e["data"] for e in doc)
    assert (d1["iname"], d1["state"], d1["wantstate"], d1["master_priority"]) == ("VI_1", 1, 1, 200)
    assert (d1["base_priority"], d1["effective_priority"], d1["adver_int"], d1["vipset"]) == (
        100,
        105,
        0.1,
        False,
    )
    assert d1["vips"] == ["192.0.2.100/24 dev eth0 scope global", "192.0.2.101 dev eth0 scope global"]
    assert d1["track_script"] == [f"'{os.path.realpath('/bin/true')}'"]
    assert d1["auth_type"] == 0 and "auth_data" not in d1 and "evips" not in d1
    assert (d2["auth_type"], d2["auth_data"], d2["adver_int"], d2["version"]) == (1, "secret", 1, 2)
    assert (d2["vmac_ifname"], d2["ifp_ifname"]) == ("vrrp.52", "vrrp.52")
    assert d2["vips"] == ["198.51.100.1 dev vrrp.52@eth0 scope global set"]
    assert d6["vips"] == ["2001:db8::100/64 dev eth0 scope global preferred_lft forever"]
    assert d6["state"] == 0 and d6["vmac_ifname"] == ""
    assert list(doc[0]["stats"]) == list(dumps.STATS_KEYS)


def test_data_instance_sections(cfg):
    v1, v2, v6 = cfg.instances
    rows = [
        row(v1, "BACKUP", master_src="192.0.2.2", master_priority=200, faults=0),
        row(v2, ifname="vrrp.52", parent_ifname="eth0"),
        row(v6, "FAULT", read_timeout=None, src_ip="fe80::1", faults=1),
    ]
    scripts = [dumps.ScriptDump(cfg.vrrp_scripts["chk"], True, [("VI_1", 5)])]
    text = dumps.render_data(rows, cfg.global_defs, scripts, cfg.sync_groups)
    lines = text.splitlines()
    assert lines[0] == "------< Global definitions >------" and " Router ID = lb1" in lines
    assert "------< VRRP Topology >------" in lines
    assert [x for x in lines if x.startswith(" VRRP Instance = ")] == [
        " VRRP Instance = VI_1",
        " VRRP Instance = VI_2",
        " VRRP Instance = VI_6",
    ]
    i = lines.index(" VRRP Instance = VI_1")
    assert lines[i + 1 : i + 7] == [
        "   VRRP Version = 3",
        "   State = BACKUP",
        "   Master router = 192.0.2.2",
        "   Master priority = 200",
        "   Master advert int = 0.10 sec",
        "   Flags: none",
    ]
    assert "   Last transition = 1796584412.873706 (" in text
    assert (
        "   Advert interval = 100 milli-sec" in lines and "   Master advert interval = 100 milli-sec" in lines
    )
    assert "   Tracked scripts :" in lines and "     chk weight 5" in lines
    assert "   Use VMAC, i/f name vrrp.52, is_up = true, xmit_base = false" in lines
    assert "   Interface = vrrp.52, vmac on eth0" in lines
    assert "   Authentication type = SIMPLE_PASSWORD" in lines and "   Password = secret" in lines
    assert "   Advert interval = 1 sec" in lines
    j = lines.index(" VRRP Instance = VI_6")
    assert lines[j + 2] == "   Using Native IPv6" and "   Read timeout = DISABLED" in lines[j:]
    assert "   Multicast address ff02::12, ifindex 7" in lines[j:]
    assert "   Number of interface and track script faults = 1" in lines[j:]
    k = lines.index(" VRRP Script = chk")
    assert lines[k + 1 : k + 4] == [
        f"   Command = '{os.path.realpath('/bin/true')}'",
        "   Interval = 2 sec",
        "   Timeout = 0 sec",
    ]
    assert "   Status = GOOD" in lines[k:] and "     VI_1, weight 5" in lines[k:]


def test_write_atomic_mode_and_replace(tmp_path):
    path = str(tmp_path / "keepalived.json")
    with open(path, "w") as f:
        f.write("old")
    os.chmod(path, 0o644)
    dumps.write_atomic(path, "[]\n")
    assert open(path).read() == "[]\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["keepalived.json"]  # no temporary file left
    with pytest.raises(FileNotFoundError):
        dumps.write_atomic(str(tmp_path / "no" / "such" / "dir.json"), "x")


def test_a_thousand_instances_render_quickly(tmp_path):
    blocks = [
        f"vrrp_instance VI_{n} {{\n interface eth{n // 250}\n virtual_router_id {n % 250 + 1}\n"
        f" priority 100\n advert_int 0.1\n version 3\n"
        f" virtual_ipaddress {{\n  198.51.{n // 250}.{n % 250 + 1}/32\n }}\n}}\n"
        for n in range(1000)
    ]
    p = tmp_path / "k.conf"
    p.write_text("".join(blocks))
    cfg = load(str(p))
    rows = [
        row(i, counters=dumps.keepalived_counters(Stats(became_master=1), {"sent": 5}, True))
        for i in cfg.instances
    ]
    t0 = time.perf_counter()
    data = dumps.render_data(rows, cfg.global_defs)
    t1 = time.perf_counter()
    js = dumps.render_json(rows, cfg.vrrp_scripts)
    t2 = time.perf_counter()
    st = dumps.render_stats(rows)
    t3 = time.perf_counter()
    print(f"1000 instances: data {1000 * (t1 - t0):.1f} ms ({len(data)} B), json {1000 * (t2 - t1):.1f} ms "
          f"({len(js)} B), stats {1000 * (t3 - t2):.1f} ms ({len(st)} B)")  # fmt: skip
    assert data.count(" VRRP Instance = ") == 1000 and st.count("VRRP Instance: ") == 1000
    assert len(json.loads(js)) == 1000
    # Generous bound for a loaded 2-core CI box; a quiet machine takes a few tens of ms for all three.
    assert t3 - t0 < 1.0


# --- signals ------------------------------------------------------------------------------------------------
def test_keepalived_signal_numbers():
    assert signals.SIGFUNC == {
        "STOP": 15,
        "RELOAD": 1,
        "DATA": 10,
        "STATS": 12,
        "STATS_CLEAR": 63,
        "JSON": 36,
    }
    assert signals.signum_answer("JSON") == (0, "36\n", "")
    assert signals.signum_answer("TDATA") == (1, "", "Unknown sigfunc TDATA\n")  # not in Debian's build
    assert signals.signum_answer("stop") == (1, "", "Unknown sigfunc stop\n")
    assert signals.signum_answer("") == (1, "", "Missing parameter for option --signum\n")


def test_every_other_signal_is_ignored():
    handled = {15, 2, 1, 10, 12, 63, 36}
    ignored = set(signals.ignored_signals(handled))
    for name in ("SIGPIPE", "SIGALRM", "SIGIO", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGTTIN", "SIGTTOU",
                 "SIGTSTP", "SIGXFSZ", "SIGXCPU", "SIGPWR", "SIGURG", "SIGQUIT", "SIGSTKFLT"):  # fmt: skip
        assert int(getattr(signal, name)) in ignored, name
    assert set(range(int(signal.SIGRTMIN), int(signal.SIGRTMAX) + 1)) - {36, 63} <= ignored
    assert not ignored & handled
    for left in ("SIGKILL", "SIGSTOP", "SIGCHLD", "SIGCONT", "SIGSEGV", "SIGBUS", "SIGABRT"):
        assert int(getattr(signal, left)) not in ignored, left


def test_cli_signum(capsys):
    assert cli.main(["--signum=STATS_CLEAR"]) == 0
    assert capsys.readouterr().out == "63\n"
    assert cli.main(["--signum", "DATA"]) == 0
    assert capsys.readouterr().out == "10\n"
    assert cli.main(["--signum=NOPE"]) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "Unknown sigfunc NOPE\n")


def test_cli_refuses_a_dump_dir_that_is_not_one(tmp_path, capsys):
    assert cli.main(["-f", "/dev/null", "--dump-dir", str(tmp_path / "missing")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--dump-dir" in err and "not a directory" in err
