"""The command line: keepalived-style options versus subcommands, -t / --dump-conf, and missing parts.

Daemon, demo, status and who-has are other modules; their dispatch is checked with a stand-in module put in
sys.modules for the one test (the parser and the dispatch are what is under test here, not those modules).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from fastvrrp import cli

GOOD = """\
global_defs {
    router_id lb1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""

BAD = """\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 300
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def stand_in(monkeypatch, name, func):
    """Put a module `name` with one function into sys.modules; record its calls."""
    calls = []
    mod = types.ModuleType(name)

    def fn(arg):
        calls.append(arg)
        return 7

    setattr(mod, func, fn)
    monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_keepalived_options_as_lab_and_systemd_pass_them(monkeypatch):
    calls = stand_in(monkeypatch, "fastvrrp.daemon.process", "run")
    argv = ["-n", "-l", "-D", "-f", "/etc/k.conf", "-p", "/run/a.pid", "-r", "/run/b.pid", "-c", "/run/c.pid"]
    argv += ["-i", "lb1", "-P", "-S", "local3", "-g", "/tmp/fv.log", "-G", "-V", "-s", "blue"]
    assert cli.main(argv) == 7
    (a,) = calls
    assert (a.config_file, a.dont_fork, a.log_console, a.log_detail) == ("/etc/k.conf", True, True, True)
    assert (a.pid_file, a.vrrp_pid_file, a.checkers_pid_file, a.config_id) == (
        "/run/a.pid",
        "/run/b.pid",
        "/run/c.pid",
        "lb1",
    )
    assert (a.log_facility, a.log_file, a.no_syslog, a.dont_release_vrrp, a.namespace) == (
        "local3",
        "/tmp/fv.log",
        True,
        True,
        "blue",
    )
    assert a.config_test is None and a.dump_conf is False


def test_long_options_and_defaults(monkeypatch):
    calls = stand_in(monkeypatch, "fastvrrp.daemon.process", "run")
    assert cli.main(["--use-file=/x.conf", "--dont-fork", "--pid=/p", "--config-id", "b"]) == 7
    a = calls[0]
    assert (a.config_file, a.dont_fork, a.pid_file, a.config_id, a.log_console) == (
        "/x.conf",
        True,
        "/p",
        "b",
        False,
    )
    assert cli.main([]) == 7
    assert calls[1].config_file == cli.DEFAULT_CONFIG == "/etc/keepalived/keepalived.conf"


@pytest.mark.parametrize(
    "word,module",
    [
        ("demo", "fastvrrp.lab.demo"),
        ("status", "fastvrrp.tools.status"),
        ("who-has", "fastvrrp.tools.who_has"),
    ],
)
def test_subcommands_reach_their_module_with_the_rest_of_argv(monkeypatch, word, module):
    calls = stand_in(monkeypatch, module, "main")
    assert cli.main([word, "--fast", "x"]) == 7
    assert calls == [["--fast", "x"]]


def test_subcommand_only_as_first_word(monkeypatch, capsys):
    # "decode" after an option is not a subcommand: keepalived never takes positional arguments
    rc, _out, err = run(["-n", "decode"], capsys)
    assert rc == cli.EXIT_USAGE and "unrecognized arguments: decode" in err


def test_missing_module_is_a_clear_error(capsys):
    with pytest.raises(cli._Missing, match="fastvrrp.no_such_part is not part of this installation"):
        cli._load("fastvrrp.no_such_part", "main")
    with pytest.raises(cli._Missing, match="fastvrrp.tools.pcap has no main"):
        cli._load("fastvrrp.tools.pcap", "main")


def test_missing_module_through_main(monkeypatch, capsys):
    # None in sys.modules makes the import fail exactly as an absent module does
    monkeypatch.setitem(sys.modules, "fastvrrp.lab.demo", None)
    rc, out, err = run(["demo"], capsys)
    assert rc == cli.EXIT_FAILURE and out == ""
    assert err == "fastvrrp: fastvrrp.lab.demo is not part of this installation\n"


def test_usage_errors_and_unsupported(capsys):
    rc, _out, err = run(["--no-such-option"], capsys)
    assert rc == cli.EXIT_USAGE and "unrecognized arguments: --no-such-option" in err and "usage:" in err
    rc, _out, err = run(["-C", "-f", "x"], capsys)
    assert rc == cli.EXIT_USAGE and "-C/--check" in err
    rc, _out, err = run(["-f"], capsys)
    assert rc == cli.EXIT_USAGE and "expected one argument" in err


def test_help_and_version(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "--use-file" in out and "--config-test" in out and "decode" in out
    rc, out, _ = run(["decode", "--help"], capsys)
    assert rc == 0 and "--json" in out and "--no-ttl-check" in out
    rc, out, _ = run(["demo", "--help"], capsys)
    assert rc == 0 and "fastvrrp demo" in out
    rc, out, _ = run(["-v"], capsys)
    assert rc == 0 and out.startswith("fastvrrp 0.")


# --- -t and --dump-conf against the real fastvrrp.config -----------------------------------------------


@pytest.fixture
def conf(tmp_path):
    pytest.importorskip("fastvrrp.config")

    def write(text, name="keepalived.conf"):
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return write


def test_config_test_good(conf, capsys):
    path = conf(GOOD)
    rc, out, err = run(["-t", "-f", path], capsys)
    assert (rc, out, err) == (0, "", f"{path}: configuration is valid\n")


def test_config_test_bad_prints_file_line_message(conf, capsys):
    path = conf(BAD)
    rc, out, err = run(["-f", path, "-t"], capsys)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[-1] == f"{path}: configuration has errors"
    assert lines[0].startswith(f"{path}:3: ") and "300" in lines[0]


def test_config_test_missing_file(conf, tmp_path, capsys):
    path = str(tmp_path / "absent.conf")
    rc, _out, err = run(["-t", "-f", path], capsys)
    assert rc == 1 and path in err and "Traceback" not in err


def test_config_test_to_log_file(conf, tmp_path, capsys):
    path = conf(BAD)
    log = str(tmp_path / "t.log")
    rc, out, err = run(["-f", path, f"--config-test={log}"], capsys)
    assert (rc, out, err) == (1, "", "")
    text = open(log).read()
    assert f"{path}:3: " in text and text.endswith("configuration has errors\n")


def test_unsupported_is_a_warning_not_an_error(conf, capsys):
    path = conf(GOOD + "virtual_server 192.0.2.100 80 {\n}\n")
    rc, _out, err = run(["-t", "-f", path], capsys)
    lines = err.splitlines()
    assert rc == 0 and lines[-1] == f"{path}: configuration is valid"
    assert any(line.startswith(f"{path}:14: warning: ") for line in lines), lines


def test_dump_conf(conf, capsys):
    path = conf(GOOD)
    rc, out, err = run(["--dump-conf", "-f", path], capsys)
    assert rc == 0 and err == ""
    data = json.loads(out)
    assert data["global_defs"]["router_id"] == "lb1"
    assert json.dumps(data).count("192.0.2.100") >= 1
    rc, out, err = run(["-d", "-f", conf(BAD, "bad.conf")], capsys)
    assert rc == 1 and out == "" and ":3: " in err


def test_python_dash_m_entry_point():
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "--help"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0 and "keepalived" in p.stdout
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == cli.EXIT_USAGE and "Traceback" not in p.stderr
