"""berth.util.flags: pflag's reading of a command line, and its messages."""

from __future__ import annotations

import pytest

from berth.util.flags import FlagError, FlagSet, Namespace


def _flags() -> FlagSet:
    fs = FlagSet()
    fs.add("-d", "--detach", action="store_true")
    fs.add("-i", "--interactive", action="store_true")
    fs.add("-t", "--tty", action="store_true")
    fs.add("--sig-proxy", action="store_true", default=True)
    fs.add("-e", "--env", action="append", default=[])
    fs.add("--name")
    fs.add("-n", "--last", type=int, default=-1)
    fs.add("--pull", default="missing", choices=("always", "missing", "never"))
    return fs


def _parse(*argv: str, interspersed: bool = True) -> tuple[Namespace, list[str]]:
    return _flags().parse(list(argv), interspersed=interspersed)


def test_defaults_and_dest_names() -> None:
    ns, rest = _parse()
    assert rest == []
    assert vars(ns) == {"detach": False, "interactive": False, "tty": False, "sig_proxy": True,
                        "env": [], "name": None, "last": -1, "pull": "missing"}


def test_value_forms() -> None:
    for argv in (["-e", "A=1"], ["-eA=1"], ["-e=A=1"], ["--env", "A=1"], ["--env=A=1"]):
        assert _parse(*argv)[0].env == ["A=1"], argv
    assert _parse("-e", "A", "--env", "B")[0].env == ["A", "B"]
    assert _parse("--name", "a", "--name=b")[0].name == "b"  # the last one wins


def test_short_clusters() -> None:
    ns, _ = _parse("-itd")
    assert (ns.interactive, ns.tty, ns.detach) == (True, True, True)
    ns, rest = _parse("-ite", "A=1", "img")
    assert (ns.interactive, ns.tty, ns.env, rest) == (True, True, ["A=1"], ["img"])
    assert _parse("-ieA=1")[0].env == ["A=1"]


def test_booleans_take_values() -> None:
    assert _parse("--sig-proxy=false")[0].sig_proxy is False
    assert _parse("--detach=TRUE")[0].detach is True
    assert _parse("-d=0")[0].detach is False
    with pytest.raises(FlagError) as err:
        _parse("-d=maybe")
    assert err.value.message == ('invalid argument "maybe" for "--detach" flag: '
                                 'strconv.ParseBool: parsing "maybe": invalid syntax')


def test_a_value_may_start_with_a_dash() -> None:
    assert _parse("--last", "-5")[0].last == -5
    assert _parse("-e", "--x")[0].env == ["--x"]


def test_positionals_interspersed_or_not() -> None:
    ns, rest = _parse("a", "-d", "b")
    assert (ns.detach, rest) == (True, ["a", "b"])
    ns, rest = _parse("-t", "img", "ls", "-d", "--name", interspersed=False)
    assert (ns.tty, ns.detach, rest) == (True, False, ["img", "ls", "-d", "--name"])
    ns, rest = _parse("-d", "--", "-t", "x")
    assert (ns.tty, rest) == (False, ["-t", "x"])
    assert _parse("-")[1] == ["-"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "unknown flag: --bogus"),
    (["--bogus=1"], "unknown flag: --bogus"),
    (["--name x"], "unknown flag: --name x"),
    (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["-dx"], "unknown shorthand flag: 'x' in -dx"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: --env"),
    (["-n", "x"], 'invalid argument "x" for "-n, --last" flag: strconv.ParseInt: parsing "x": '
                  "invalid syntax"),
    (["--pull", "x"], 'invalid argument "x" for "--pull" flag: must be one of "always", '
                      '"missing", "never"'),
])
def test_errors_worded_as_pflag(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as err:
        _parse(*argv)
    assert err.value.message == message


def test_appends_do_not_grow_the_default() -> None:
    fs = _flags()
    fs.parse(["-e", "A"])
    assert fs.parse([])[0].env == []


def test_namespace() -> None:
    ns = Namespace(a=1)
    assert "a" in ns and ns == Namespace(a=1) and repr(ns) == "Namespace(a=1)"
