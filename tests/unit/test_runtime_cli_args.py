"""berth-runtime's command line: runc's flags and arguments, signal names without enums."""

from __future__ import annotations

import signal

import pytest

from berth.errors import InvalidArgument
from berth.runtime.cli import DEFAULT_ROOT, UsageError, cmd_exec, cmd_run, parse_args, parse_signal


@pytest.mark.parametrize(("text", "number"), [
    ("9", 9), ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("term", signal.SIGTERM),
    ("SIGRTMIN", signal.SIGRTMIN), ("usr1", signal.SIGUSR1),
])
def test_signal_names(text: str, number: int) -> None:
    assert parse_signal(text) == int(number)


@pytest.mark.parametrize("text", ["BOGUS", "SIG_DFL", "_DFL", "", "SIGKILL2"])
def test_unknown_signals(text: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal(text)


def test_run_and_its_defaults() -> None:
    ns = parse_args(["run", "c1"])
    assert ns is not None
    assert (ns.command, ns.func, ns.id, ns.root, ns.bundle, ns.detach) == (
        "run", cmd_run, "c1", DEFAULT_ROOT, ".", False)
    assert (ns.pid_file, ns.console_socket, ns.preserve_fds, ns.debug) == (None, None, 0, False)
    ns = parse_args(["--root", "/tmp/r", "--debug", "run", "-d", "--bundle=/b", "--pid-file",
                     "/p", "--preserve-fds", "2", "c2"])
    assert ns is not None
    assert (ns.root, ns.debug, ns.detach, ns.bundle, ns.pid_file, ns.preserve_fds, ns.id) == (
        "/tmp/r", True, True, "/b", "/p", 2, "c2")


def test_exec_flags_stop_at_the_id() -> None:
    ns = parse_args(["exec", "-t", "-e", "A=1", "--env=B=2", "c1", "sh", "-c", "echo -e x"])
    assert ns is not None
    assert (ns.func, ns.id, ns.tty, ns.env, ns.exec_args) == (
        cmd_exec, "c1", True, ["A=1", "B=2"], ["sh", "-c", "echo -e x"])
    assert (ns.cwd, ns.process) == ("/", None)


def test_optional_positionals_and_choices() -> None:
    ns = parse_args(["kill", "c1"])
    assert ns is not None and (ns.id, ns.signal, ns.all) == ("c1", "SIGTERM", False)
    ns = parse_args(["kill", "--all", "c1", "KILL"])
    assert ns is not None and (ns.signal, ns.all) == ("KILL", True)
    ns = parse_args(["spec", "-b", "/x", "sh", "-c"])
    assert ns is not None and (ns.bundle, ns.args) == ("/x", ["sh", "-c"])
    ns = parse_args(["list", "--format", "json"])
    assert ns is not None and ns.format == "json"


@pytest.mark.parametrize(("argv", "message"), [
    ([], "a command is required"),
    (["bogus"], "unknown command 'bogus'"),
    (["start"], '"start" requires exactly 1 argument(s)'),
    (["kill", "a", "b", "c"], '"kill" requires at most 2 argument(s)'),
    (["exec"], '"exec" requires at least 1 argument(s)'),
    (["run", "-x", "c"], "unknown shorthand flag: 'x' in -x"),
    (["--root"], "flag needs an argument: --root"),
    (["create", "--preserve-fds", "x", "c"], 'invalid argument "x" for "--preserve-fds" flag: '
                                            'strconv.ParseInt: parsing "x": invalid syntax'),
    (["list", "-f", "yaml"], 'invalid argument "yaml" for "-f, --format" flag: must be one of '
                             '"table", "json"'),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_args(argv)
    assert err.value.message == message


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["--help"]) is None
    out = capsys.readouterr().out
    assert out.startswith("usage: berth-runtime ") and "  spec " in out
    assert parse_args(["exec", "--help"]) is None
    out = capsys.readouterr().out
    assert out.startswith("usage: berth-runtime exec [flags] <id> [command ...]\n")
    assert "  -p, --process " in out
