"""The command line: keepalived-style options versus subcommands, -t / --dump-json, and missing parts.

Daemon, demo, status and who-has are other modules; their dispatch is checked with a stand-in module put in
sys.modules for the one test (the parser and the dispatch are what is under test here, not those modules).
"""

from __future__ import annotations

import json
import os
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

# -t checks that the interfaces exist here (keepalived -t does): the -t tests use one this host has.
HERE_IF = next((n for n in sorted(os.listdir("/sys/class/net")) if n != "lo"), "eth0")
GOOD_HERE = GOOD.replace("interface eth0", f"interface {HERE_IF}")

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
    argv += ["-i", "lb1", "-P", "-S", "local3", "-g", "/tmp/fv.log", "-G", "-s", "blue", "-d", "-u", "027"]
    assert cli.main(argv) == 7
    (a,) = calls
    assert (a.config_file, a.dont_fork, a.log_console, a.log_detail) == ("/etc/k.conf", True, True, True)
    assert (a.pid_file, a.vrrp_pid_file, a.checkers_pid_file, a.config_id) == (
        "/run/a.pid",
        "/run/b.pid",
        "/run/c.pid",
        "lb1",
    )
    assert (a.log_facility, a.log_file, a.no_syslog, a.namespace, a.umask) == (
        "local3",
        "/tmp/fv.log",
        True,
        "blue",
        0o27,
    )
    # -d is keepalived's: the daemon runs (and logs the configuration); --dump-json is the JSON printer.
    assert a.config_test is None and a.dump_conf is True and a.dump_json is False


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
    rc, out, _ = run(["-v"], capsys)
    assert rc == 0 and out.startswith("fastvrrp 0.")


# Every option of keepalived 2.2.7's --help: each must appear in ours (done, or refused with a reason).
KEEPALIVED_OPTIONS = [
    ("-f", "--use-file"), ("-P", "--vrrp"), ("-C", "--check"), ("-B", "--no_bfd"), (None, "--all"),
    ("-l", "--log-console"), ("-D", "--log-detail"), ("-S", "--log-facility"), ("-G", "--no-syslog"),
    ("-u", "--umask"), ("-X", "--release-vips"), ("-V", "--dont-release-vrrp"),
    ("-I", "--dont-release-ipvs"), ("-R", "--dont-respawn"), ("-n", "--dont-fork"), ("-d", "--dump-conf"),
    ("-p", "--pid"), ("-r", "--vrrp_pid"), ("-T", "--genhash"), ("-c", "--checkers_pid"),
    ("-a", "--address-monitoring"), ("-b", "--bfd_pid"), ("-x", "--snmp"), ("-A", "--snmp-agent-socket"),
    ("-s", "--namespace"), ("-m", "--core-dump"), ("-M", "--core-dump-pattern"), ("-e", "--all-config"),
    ("-i", "--config-id"), ("-t", "--config-test"), ("-v", "--version"), ("-h", "--help"),
    ("-g", "--log-file"), (None, "--flush-log-file"),
]  # fmt: skip


def test_help_documents_every_keepalived_option(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    for short, long in KEEPALIVED_OPTIONS:
        assert long in out, long
        if short:
            assert f"{short}, {long}" in out or f"{short} " in out, short
    # every option has a sentence, not just its name
    actions = [a for a in cli.keepalived_parser()._actions if a.option_strings]
    assert all(a.help for a in actions), [a.option_strings for a in actions if not a.help]


@pytest.mark.parametrize(
    "argv,what",
    [
        (["-C"], "-C/--check"),
        (["--all"], "--all"),
        (["-X"], "-X/--release-vips"),
        (["-x"], "-x/--snmp"),
        (["-A", "/run/agentx"], "-A/--snmp-agent-socket"),
        (["-T", "-s", "192.0.2.1", "-p", "80"], "-T/--genhash"),
        (["-M"], "-M/--core-dump-pattern"),
        (["--core-dump-pattern=core.%p"], "-M/--core-dump-pattern"),
    ],
)
def test_unsupported_keepalived_options_are_refused_with_the_reason(monkeypatch, capsys, argv, what):
    calls = stand_in(monkeypatch, "fastvrrp.daemon.process", "run")
    rc, _out, err = run([*argv, "-n", "-f", "/x.conf"] if argv[0] != "-T" else argv, capsys)
    assert rc == cli.EXIT_USAGE and what in err and "not supported" in err
    assert calls == [], "the daemon must not start"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-S", "8"], "must be 0-7, local0-local7, user or daemon"),
        (["-S", "kern"], "must be 0-7, local0-local7, user or daemon"),
        (["-u", "abc"], "invalid umask 'abc'"),
        (["-u", "01000"], "out of range"),
    ],
)
def test_bad_values_are_usage_errors(monkeypatch, capsys, argv, message):
    calls = stand_in(monkeypatch, "fastvrrp.daemon.process", "run")
    rc, _out, err = run([*argv, "-n"], capsys)
    assert rc == cli.EXIT_USAGE and message in err and calls == []


@pytest.mark.parametrize(
    "text,value", [("022", 0o22), ("0", 0), ("63", 63), ("0x3f", 0o77), ("0o27", 0o27), ("0777", 0o777)]
)
def test_umask_reads_numbers_as_c_does(text, value):
    assert cli._umask(text) == value


@pytest.mark.parametrize("text,facility", [("0", 16), ("7", 23), ("local3", 19), ("LOCAL3", 19),
                                            ("user", 1), ("daemon", 3)])  # fmt: skip
def test_facilities_as_keepalived_names_them(text, facility):
    from fastvrrp.daemon.logs import parse_facility

    assert parse_facility(text) == facility << 3


@pytest.mark.parametrize(
    "word,options",
    [
        ("status", ["--json", "-f"]),
        ("who-has", ["--no-resolve", "--timeout", "--interface"]),
        ("demo", ["--advert-int-ms", "--no-color"]),
        ("decode", ["--json", "--invalid"]),
    ],
)
def test_subcommand_help_shows_its_own_options(capsys, word, options):
    rc, out, _ = run([word, "--help"], capsys)
    assert rc == 0 and f"fastvrrp {word}" in out and "passed to" not in out
    for opt in options:
        assert opt in out, (word, opt)


def test_subcommand_usage_error_is_not_a_traceback(capsys):
    rc, _out, err = run(["status", "--no-such-option"], capsys)
    assert rc == 2 and "unrecognized arguments" in err


def test_default_pid_file_is_keepalived_s():
    from fastvrrp.daemon import pidfile

    assert pidfile.default_pid_file(None) == "/run/keepalived.pid"
    assert pidfile.default_pid_file("blue") == "/run/keepalived/blue/keepalived.pid"


def test_pid_file_held_by_a_live_process_is_refused(tmp_path, conf):
    """The real daemon process, no stand-in: a pid file holding a live pid (this test's) stops the start."""
    pid_file = tmp_path / "held.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "-n", "-G", "-f", conf(GOOD), "-p", str(pid_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    assert f"pid file {pid_file} is held by running process {os.getpid()}" in p.stderr
    assert pid_file.read_text() == f"{os.getpid()}\n", "the holder's file is left alone"


def test_a_bad_configuration_stops_the_start_with_file_line_on_stderr(tmp_path, conf):
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "-G", "-f", conf(BAD), "-p", str(tmp_path / "x.pid")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # No -n, no -l: still checked before detaching, so the caller sees why and the exit code.
    assert p.returncode == 1 and ":3: " in p.stderr and "configuration has errors, not starting" in p.stderr
    assert not (tmp_path / "x.pid").exists()


# --- -t and --dump-json against the real fastvrrp.config -----------------------------------------------


@pytest.fixture
def conf(tmp_path):
    pytest.importorskip("fastvrrp.config")

    def write(text, name="keepalived.conf"):
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return write


def test_config_test_good(conf, capsys):
    path = conf(GOOD_HERE)
    rc, out, err = run(["-t", "-f", path], capsys)
    assert (rc, out, err) == (0, "", f"{path}: configuration is valid\n")


def test_config_test_bad_prints_file_line_message(conf, capsys):
    path = conf(BAD)
    rc, out, err = run(["-f", path, "-t"], capsys)
    assert rc == 4 and out == ""  # keepalived -t's "the file cannot be used"
    lines = err.splitlines()
    assert lines[-1] == f"{path}: configuration has errors"
    assert lines[0].startswith(f"{path}:3: ") and "300" in lines[0]


def test_config_test_missing_file(conf, tmp_path, capsys):
    path = str(tmp_path / "absent.conf")
    rc, _out, err = run(["-t", "-f", path], capsys)
    assert rc == 4 and path in err and "Traceback" not in err


def test_config_test_to_log_file(conf, tmp_path, capsys):
    path = conf(BAD)
    log = str(tmp_path / "t.log")
    rc, out, err = run(["-f", path, f"--config-test={log}"], capsys)
    assert (rc, out, err) == (4, "", "")
    text = open(log).read()
    assert f"{path}:3: " in text and text.endswith("configuration has errors\n")


def test_unsupported_is_a_warning_not_an_error(conf, capsys):
    path = conf(GOOD_HERE + "virtual_server 192.0.2.100 80 {\n}\n")
    rc, _out, err = run(["-t", "-f", path], capsys)
    lines = err.splitlines()
    assert rc == 0 and lines[-1] == f"{path}: configuration is valid"
    assert any(line.startswith(f"{path}:14: warning: ") for line in lines), lines


def test_dump_json(conf, capsys):
    path = conf(GOOD)
    rc, out, err = run(["--dump-json", "-f", path], capsys)
    assert rc == 0 and err == ""
    data = json.loads(out)
    assert data["global_defs"]["router_id"] == "lb1"
    assert json.dumps(data).count("192.0.2.100") >= 1
    rc, out, err = run(["--dump-json", "-f", conf(BAD, "bad.conf")], capsys)
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


def test_strict_config_refuses_at_start_what_keepalived_works_around(tmp_path, conf):
    """advert_int 0.5 under VRRPv2: keepalived rounds it to 1 s with a warning; -t exits 5 (worked
    around); --strict-config (or fastvrrp_strict_config in global_defs) refuses it, -t and at start."""
    path = conf(GOOD_HERE.replace("advert_int 1", "advert_int 0.5"))
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "-t", "-f", path], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 5 and f"{path}:9: warning: " in p.stderr and "using 1 s" in p.stderr, p.stderr
    for how in (["--strict-config"], []):
        if not how:
            path = conf(GOOD_HERE.replace("advert_int 1", "advert_int 0.5").replace(
                "router_id lb1", "router_id lb1\n    fastvrrp_strict_config"), "strict.conf")  # fmt: skip
        p = subprocess.run(
            [sys.executable, "-m", "fastvrrp", "-t", "-f", path, *how],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 4 and "[refused: strict configuration]" in p.stderr, p.stderr
        p = subprocess.run(
            [sys.executable, "-m", "fastvrrp", "-n", "-G", "-f", path, "-p", str(tmp_path / "x.pid"), *how],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 1 and "[refused: strict configuration]" in p.stderr, p.stderr
        assert "configuration has errors, not starting" in p.stderr
