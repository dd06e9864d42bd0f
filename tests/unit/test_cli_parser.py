"""Global options, flag parsing and usage errors, worded and coded as docker 28's."""

from __future__ import annotations

import io

import pytest

from berth.cli.main import main


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    code = main(list(args), stdout=out, stderr=err, environ=env or {})
    return code, out.getvalue().decode(), err.getvalue().decode()


def test_version_flags() -> None:
    from berth import __version__

    for flag in ("--version", "-v"):
        assert run(flag) == (0, f"berth version {__version__}\n", "")
    assert run("-D", "--version")[1] == f"berth version {__version__}\n"


def test_no_arguments_prints_help() -> None:
    code, out, _ = run()
    assert code == 0
    assert out.startswith("Usage:  berth [OPTIONS] COMMAND\n")
    assert "  run         Create and run a new container from an image\n" in out
    assert run("--help")[1] == out


def test_unknown_command() -> None:
    assert run("bogus") == (1, "", "berth: unknown command: berth bogus\n\n"
                                   "Run 'berth --help' for more information\n")


def test_unknown_global_flag_is_125() -> None:
    code, _, err = run("-x", "ps")
    assert code == 125
    assert err.startswith("unknown shorthand flag: 'x' in -x\n\nUsage:  berth [OPTIONS] COMMAND")
    assert run("--bogus", "ps")[2].startswith("unknown flag: --bogus\n")


def test_bad_log_level() -> None:
    assert run("--log-level", "loud", "ps") == (1, "", "Unable to parse logging level: loud\n")


def test_unknown_verb_flag_is_125() -> None:
    code, out, err = run("run", "--bogus")
    assert (code, out) == (125, "")
    assert err == ("unknown flag: --bogus\n\n"
                   "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                   "Run 'berth run --help' for more information\n")
    assert run("ps", "-x")[2].startswith("unknown shorthand flag: 'x' in -x\n")


def test_arity_errors_are_1() -> None:
    assert run("run") == (1, "", "berth: 'berth run' requires at least 1 argument\n\n"
                                 "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                                 "See 'berth run --help' for more information\n")
    assert run("tag", "a")[2].startswith("berth: 'berth tag' requires 2 arguments\n")
    assert run("ps", "extra")[2].startswith("berth: 'berth ps' accepts no arguments\n")
    assert run("import", "a", "b", "c")[2].startswith(
        "berth: 'berth import' requires at most 2 arguments\n")


def test_invalid_values() -> None:
    code, _, err = run("stop", "-t", "x", "a")
    assert code == 125
    assert err.startswith('invalid argument "x" for "-t, --timeout" flag: '
                          'strconv.ParseInt: parsing "x": invalid syntax\n')
    code, _, err = run("ps", "--no-trunc=maybe")
    assert code == 125
    assert err.startswith('invalid argument "maybe" for "--no-trunc" flag: strconv.ParseBool: '
                          'parsing "maybe": invalid syntax\n')
    assert run("ps", "--filter")[2].startswith("flag needs an argument: --filter\n")


def test_verb_help_layout() -> None:
    code, out, _ = run("rm", "--help")
    assert code == 0
    assert out == ("Usage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                   "Remove one or more containers\n\n"
                   "Aliases:\n"
                   "  berth container rm, berth container remove, berth rm\n\n"
                   "Options:\n"
                   "  -f, --force     Force the removal of a running container (uses SIGKILL)\n"
                   "  -l, --link      Remove the specified link\n"
                   "  -v, --volumes   Remove anonymous volumes associated with the container\n")


def test_run_help_does_not_steal_hostname_flag() -> None:
    code, out, _ = run("run", "--help")
    assert code == 0
    assert "  -h, --hostname string" in out
    assert "  -d, --detach" in out


def test_management_commands() -> None:
    code, out, _ = run("container")
    assert code == 0
    assert out.startswith("Usage:  berth container COMMAND\n\nManage containers\n")
    assert "  ls          List containers\n" in out
    code, out, _ = run("image", "ls", "--help")
    assert out.startswith("Usage:  berth image ls [OPTIONS] [REPOSITORY[:TAG]]\n")
    assert run("container", "bogus")[2].startswith("berth: unknown command: berth container "
                                                   "bogus\n")


@pytest.mark.parametrize(("args", "expected"), [
    (["--rm=false", "busybox"], False),
    (["--rm=true", "busybox"], True),
    (["--rm", "busybox"], True),
    (["busybox", "--rm=true"], False),   # after the image: the command's own argument
])
def test_bool_flags_take_values(args: list[str], expected: bool) -> None:
    from berth.cli.commands import run as run_module
    from berth.cli.parser import Parser

    parser = Parser("run", "berth run", "summary")
    run_module.configure(parser)
    ns = parser.parse(args)
    assert ns.rm is expected


def test_run_flags_stop_at_image() -> None:
    from berth.cli.commands import run as run_module
    from berth.cli.parser import Parser

    parser = Parser("run", "berth run", "summary")
    run_module.configure(parser)
    ns = parser.parse(["-it", "-e", "A=1", "--name=x", "busybox", "ls", "-l", "--rm", "-e"])
    assert (ns.interactive, ns.tty, ns.env, ns.name) == (True, True, ["A=1"], "x")
    assert (ns.image, ns.command, ns.rm) == ("busybox", ["ls", "-l", "--rm", "-e"], False)


def test_other_verbs_accept_flags_after_arguments() -> None:
    from berth.cli.commands import rm as rm_module
    from berth.cli.parser import Parser

    parser = Parser("rm", "berth rm", "summary")
    rm_module.configure(parser)
    ns = parser.parse(["a", "-f", "b"])
    assert (ns.args, ns.force) == (["a", "b"], True)


def test_global_host_forms() -> None:
    # No daemon at these addresses: the message names the address that was used.
    for args in (["-H", "unix:///tmp/x1.sock"], ["--host=unix:///tmp/x1.sock"],
                 ["-Hunix:///tmp/x1.sock"]):
        code, _, err = run(*args, "ps")
        assert code == 1
        assert "unix:///tmp/x1.sock" in err
    assert "unix:///tmp/env.sock" in run("ps", env={"BERTH_HOST": "unix:///tmp/env.sock"})[2]
    assert "unix:///run/berth/berth.sock" in run("ps", env={"DOCKER_HOST": "tcp://x:1"})[2]
