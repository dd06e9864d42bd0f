"""``berth-runtime``: runc's command line (a subset), on top of ``berth.runtime``.

State lives in ``--root`` (default /run/berth-runtime), one directory per container id, so the
commands can run as separate processes exactly as with runc: ``create`` leaves init blocked,
``start`` releases it, ``delete`` removes the state. ``run`` stays in the foreground as the
container's reaper (a child subreaper), forwards signals to it and exits with its status.
"""

from __future__ import annotations

import _signal as signal  # signal.py builds enums: enum costs milliseconds to import
import os
import sys

from berth import linux
from berth.errors import BerthError, InvalidArgument, NotFound, RuntimeFailure
from berth.runtime import container
from berth.runtime.lite import suppress

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    import argparse
    from typing import Any

DEFAULT_ROOT = "/run/berth-runtime"
FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def parse_signal(text: str) -> int:
    """``9``, ``KILL`` or ``SIGKILL`` to a signal number."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = getattr(signal, name, None)
    if isinstance(number, int) and name.isalnum():
        return number
    try:
        import signal as signals  # the enum, for names the C module lacks

        return int(signals.Signals[name])
    except KeyError:
        raise InvalidArgument(f"unknown signal {text!r}") from None


def _state_dir(root: str, container_id: str) -> str:
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id {container_id!r}")
    return os.path.join(root, container_id)


def _existing(root: str, container_id: str) -> str:
    path = _state_dir(root, container_id)
    if not os.path.exists(os.path.join(path, container.STATE_FILE)):
        raise NotFound(f"container does not exist: {container_id}")
    return path


def _console(args: argparse.Namespace) -> Any:
    if args.console_socket:
        return container.console_socket_sender(os.path.abspath(args.console_socket))
    return None


def cmd_create(args: argparse.Namespace) -> int:
    container.create(args.id, args.bundle, _state_dir(args.root, args.id), stdio=(0, 1, 2),
                     pid_file=args.pid_file, console=_console(args))
    return 0


def _relay_terminal(master: int, pid: int) -> None:
    """``run`` in the foreground with a terminal and no console socket: be the terminal's
    other end, copying our stdin to the pty and the pty to our stdout, as runc does."""
    import select
    import termios
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        with suppress(OSError):
            size = os.get_terminal_size(0)
            from berth.runtime.console import set_size
            set_size(master, size.lines, size.columns)
    try:
        fds = [master, 0]
        while master in fds:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)


def cmd_start(args: argparse.Namespace) -> int:
    container.start(_existing(args.root, args.id))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args.root, args.id)
    if not args.detach:
        linux.set_child_subreaper()
    masters: list[int] = []
    console = _console(args)
    if console is None and not args.detach:
        console = masters.append
    try:
        pid = container.create(args.id, args.bundle, state_dir, stdio=(0, 1, 2),
                               pid_file=args.pid_file, console=console)
    except InvalidArgument as e:
        if args.detach and "console socket" in e.message:
            raise InvalidArgument("cannot allocate tty if runc will detach without setting "
                                  "console socket") from None
        raise
    if args.detach:
        container.start(state_dir)
        return 0

    try:
        container.start(state_dir)
    except BaseException:
        container.delete(state_dir, force=True)
        raise
    if masters:
        _relay_terminal(masters[0], pid)
    code = _wait_forwarding(pid)
    container.delete(state_dir, force=True)
    return code


def _wait_forwarding(pid: int) -> int:
    """Forward signals to ``pid`` and return its Docker-style exit status (we reap it as
    a child subreaper)."""

    def forward(sig: int, _frame: Any) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def cmd_exec(args: argparse.Namespace) -> int:
    from berth.runtime import exec as rexec

    path = _existing(args.root, args.id)
    if args.process:
        process = rexec.load_process(args.process)
    else:
        if not args.exec_args:
            raise InvalidArgument("exec: a command or --process is required")
        from berth.runtime.spec import DEFAULT_PATH_ENV

        process = {"args": list(args.exec_args), "terminal": args.tty,
                   "env": list(args.env or ()) or [DEFAULT_PATH_ENV], "cwd": args.cwd}
        if args.user:
            uid, _, gid = args.user.partition(":")
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        if args.cap:
            caps = [c if c.startswith("CAP_") else "CAP_" + c for c in args.cap]
            process["capabilities"] = {k: caps for k in ("bounding", "effective",
                                                            "permitted")}
        if args.no_new_privs:
            process["noNewPrivileges"] = True
    masters: list[int] = []
    console = _console(args)
    if console is None and process.get("terminal"):
        if args.detach:
            raise InvalidArgument("cannot allocate tty if runc will detach without setting "
                                  "console socket")
        console = masters.append
    if not args.detach:
        linux.set_child_subreaper()
    pid = rexec.exec_process(path, process, stdio=(0, 1, 2), console=console,
                             pid_file=args.pid_file)
    if args.detach:
        return 0
    if masters:
        _relay_terminal(masters[0], pid)
    return _wait_forwarding(pid)


def cmd_ps(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    pids = container.container_pids(_existing(args.root, args.id))
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    if pids:
        subprocess.run(["ps", "-f", "-p", ",".join(str(p) for p in pids)], check=False)
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    container.pause(_existing(args.root, args.id))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    container.resume(_existing(args.root, args.id))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    from berth.util import read_json

    path = _existing(args.root, args.id)
    resources: dict[str, Any] = {}
    if args.resources:
        resources = read_json(args.resources) if args.resources != "-" else json.load(sys.stdin)
    if args.memory is not None:
        resources.setdefault("memory", {})["limit"] = args.memory
    if args.pids_limit is not None:
        resources.setdefault("pids", {})["limit"] = args.pids_limit
    if args.cpu_quota is not None:
        resources.setdefault("cpu", {})["quota"] = args.cpu_quota
    if args.cpu_period is not None:
        resources.setdefault("cpu", {})["period"] = args.cpu_period
    if args.cpu_shares is not None:
        resources.setdefault("cpu", {})["shares"] = args.cpu_shares
    container.update(path, resources)
    return 0


def features() -> dict[str, Any]:
    """What this runtime supports, in the OCI features document's form."""
    from berth.linux.seccomp import ARCHES, CMP_OPS
    from berth.runtime import config as cfgmod
    from berth.runtime.seccomp import _ACTIONS

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": container.OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted({*cfgmod._FLAG_OPTIONS, *cfgmod.PROPAGATION}),
        "linux": {
            "namespaces": sorted(k for k in cfgmod.NAMESPACES
                                 if k not in cfgmod._UNSUPPORTED_NAMESPACES),
            "capabilities": sorted(linux.CAPABILITIES, key=linux.CAPABILITIES.get),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": {"enabled": True, "actions": sorted(_ACTIONS),
                        "operators": sorted(CMP_OPS), "archs": sorted(ARCHES)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.berth.init": "true: PID 1 is a reaper that runs the command",
                        "io.berth.user": "Docker's --user, resolved inside the container"},
    }


def cmd_features(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    print(json.dumps(features(), indent=2))
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    print(json.dumps(container.state(_existing(args.root, args.id)), indent=2))
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    container.kill(_existing(args.root, args.id), parse_signal(args.signal), all=args.all)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    try:
        path = _existing(args.root, args.id)
    except NotFound:
        if args.force:
            return 0
        raise
    container.delete(path, force=args.force)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    rows = []
    with suppress(FileNotFoundError):
        for name in sorted(os.listdir(args.root)):
            with suppress(BerthError, OSError, ValueError):
                rows.append(container.state(os.path.join(args.root, name)))
    if args.format == "json":
        print(json.dumps(rows))
    else:
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} {'BUNDLE':<40} CREATED")
        for st in rows:
            print(f"{st['id']:<20} {st['pid']:<8} {st['status']:<10} {st['bundle']:<40} "
                  f"{st['created']}")
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise InvalidArgument("File config.json exists. Remove it first")
    from berth.runtime import spec

    doc = spec.default_spec(args.args or ["sh"])
    with open(path, "w") as f:
        json.dump(doc, f, indent="\t")
        f.write("\n")
    return 0


class _Skipped:
    """Stands in for the subcommands not being run: building every subparser costs more
    than a container's whole start (argparse looks up translations for each)."""

    def add_argument(self, *_args: Any, **_kw: Any) -> None:
        pass

    def set_defaults(self, **_kw: Any) -> None:
        pass


class _Subcommands:
    def __init__(self, sub: Any, only: str | None) -> None:
        self.sub = sub
        self.only = only

    def add_parser(self, name: str, **kw: Any) -> Any:
        if self.only is None or name == self.only:
            return self.sub.add_parser(name, **kw)
        return _Skipped()


_GLOBAL_WITH_VALUE = ("--root", "--log", "--log-format")


def command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names, or None when help is asked for or none is there."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-h", "--help"):
            return None
        elif arg in _GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


# The hot commands' options, parsed without argparse (whose import and set-up cost as much
# as a container's start): (options with a value, flags, positionals (min, max)).
_BUNDLE_VALUES = {"-b": "bundle", "--bundle": "bundle", "--pid-file": "pid_file",
                  "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"}
_BUNDLE_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}
_FAST: dict[str, tuple[dict[str, str], dict[str, str], tuple[str, ...], int]] = {
    "run": (_BUNDLE_VALUES, {**_BUNDLE_FLAGS, "-d": "detach", "--detach": "detach"},
            ("id",), 1),
    "create": (_BUNDLE_VALUES, _BUNDLE_FLAGS, ("id",), 1),
    "start": ({}, {}, ("id",), 1),
    "state": ({}, {}, ("id",), 1),
    "delete": ({}, {"-f": "force", "--force": "force"}, ("id",), 1),
    "kill": ({}, {"-a": "all", "--all": "all"}, ("id", "signal"), 1),
}
_FAST_DEFAULTS = {"bundle": ".", "pid_file": None, "console_socket": None, "preserve_fds": 0,
                  "no_pivot": False, "no_new_keyring": False, "detach": False,
                  "force": False, "all": False, "signal": "SIGTERM"}


def fast_parse(argv: list[str]) -> Any:
    """The arguments of a hot command as argparse would give them, or None when anything
    is unusual (then argparse parses, and explains)."""
    from types import SimpleNamespace

    values: dict[str, Any] = {"root": DEFAULT_ROOT, "log": None, "log_format": None,
                              "debug": False, "systemd_cgroup": False}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_WITH_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value = argv[i + 1]
                i += 1
            values[name[2:].replace("-", "_")] = value
        elif arg in ("--debug", "--systemd-cgroup"):
            values[arg[2:].replace("-", "_")] = True
        else:
            return None
        i += 1
    if i >= len(argv) or argv[i] not in _FAST:
        return None
    command = argv[i]
    opts, flags, positional, required = _FAST[command]
    values.update(_FAST_DEFAULTS)
    found: list[str] = []
    rest = argv[i + 1:]
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in opts:
                if not eq:
                    if j + 1 >= len(rest):
                        return None
                    value = rest[j + 1]
                    j += 1
                values[opts[name]] = value
            elif arg in flags:
                values[flags[arg]] = True
            else:
                return None
        else:
            found.append(arg)
        j += 1
    if not required <= len(found) <= len(positional):
        return None
    values.update(zip(positional, found, strict=False))
    try:
        values["preserve_fds"] = int(values["preserve_fds"])
    except ValueError:
        return None
    values["command"] = command
    values["func"] = globals()["cmd_" + command]
    return SimpleNamespace(**values)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``only``: build just that subcommand's parser."""
    import argparse

    p = argparse.ArgumentParser(prog="berth-runtime", description="berth's OCI runtime")
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory root")
    p.add_argument("--log", help="accepted for runc compatibility; errors go to stderr")
    p.add_argument("--log-format", help="accepted for runc compatibility")
    p.add_argument("--debug", action="store_true", help="accepted for runc compatibility")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="accepted for runc compatibility")
    sub = _Subcommands(p.add_subparsers(dest="command", required=True), only)

    def with_bundle(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-b", "--bundle", default=".", help="bundle directory")
        sp.add_argument("--pid-file", help="write init's pid here")
        sp.add_argument("--console-socket",
                        help="unix socket that receives the pty master (process.terminal)")
        sp.add_argument("--no-pivot", action="store_true",
                        help="accepted for runc compatibility")
        sp.add_argument("--no-new-keyring", action="store_true",
                        help="accepted for runc compatibility")
        sp.add_argument("--preserve-fds", type=int, default=0,
                        help="accepted for runc compatibility")
        sp.add_argument("id")

    sp = sub.add_parser("create", help="create a container, blocked before its command")
    with_bundle(sp)
    sp.set_defaults(func=cmd_create)
    sp = sub.add_parser("run", help="create and start a container, wait for it, delete it")
    with_bundle(sp)
    sp.add_argument("-d", "--detach", action="store_true")
    sp.set_defaults(func=cmd_run)
    sp = sub.add_parser("start", help="start a created container")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_start)
    sp = sub.add_parser("state", help="print a container's state as JSON")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_state)
    sp = sub.add_parser("kill", help="send a signal to a container's init")
    sp.add_argument("-a", "--all", action="store_true", help="signal every process")
    sp.add_argument("id")
    sp.add_argument("signal", nargs="?", default="SIGTERM")
    sp.set_defaults(func=cmd_kill)
    sp = sub.add_parser("delete", help="delete a container's state")
    sp.add_argument("-f", "--force", action="store_true", help="kill it if it is running")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_delete)
    sp = sub.add_parser("list", help="list containers")
    sp.add_argument("-f", "--format", choices=("table", "json"), default="table")
    sp.set_defaults(func=cmd_list)
    sp = sub.add_parser("exec", help="run a process in a running container")
    sp.add_argument("--process", "-p", help="an OCI process JSON file")
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("--console-socket")
    sp.add_argument("--pid-file")
    sp.add_argument("--cwd", default="/")
    sp.add_argument("-e", "--env", action="append")
    sp.add_argument("-u", "--user", help="UID[:GID]")
    sp.add_argument("-c", "--cap", action="append")
    sp.add_argument("--no-new-privs", action="store_true")
    sp.add_argument("id")
    sp.add_argument("exec_args", nargs=argparse.REMAINDER, metavar="command")
    sp.set_defaults(func=cmd_exec)
    sp = sub.add_parser("ps", help="list a container's processes")
    sp.add_argument("-f", "--format", choices=("table", "json"), default="table")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_ps)
    sp = sub.add_parser("pause", help="freeze every process of a container")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_pause)
    sp = sub.add_parser("resume", help="thaw a paused container")
    sp.add_argument("id")
    sp.set_defaults(func=cmd_resume)
    sp = sub.add_parser("update", help="change a running container's resource limits")
    sp.add_argument("-r", "--resources", help="OCI linux.resources JSON file (- for stdin)")
    sp.add_argument("--memory", type=int)
    sp.add_argument("--pids-limit", type=int)
    sp.add_argument("--cpu-quota", type=int)
    sp.add_argument("--cpu-period", type=int)
    sp.add_argument("--cpu-shares", type=int)
    sp.add_argument("id")
    sp.set_defaults(func=cmd_update)
    sp = sub.add_parser("features", help="print what this runtime supports (JSON)")
    sp.set_defaults(func=cmd_features)
    sp = sub.add_parser("spec", help="write a config.json with Docker's defaults")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("args", nargs="*", help="the command (default: sh)")
    sp.set_defaults(func=cmd_spec)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = fast_parse(argv)
    if args is None:
        only = command_of(argv)
        if only is not None and only not in _COMMANDS:
            only = None
        args = build_parser(only).parse_args(argv)
    try:
        code = args.func(args)
    except RuntimeFailure as e:
        print(f"berth-runtime: {e}", file=sys.stderr)
        code = e.exit_code if args.command in ("run", "exec") else 1
    except BerthError as e:
        print(f"berth-runtime: {e}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to clean up: skip the interpreter's teardown (milliseconds).
    os._exit(code)


_COMMANDS = ("create", "run", "start", "state", "kill", "delete", "list", "exec", "ps", "pause",
             "resume", "update", "features", "spec")

if __name__ == "__main__":
    main()
