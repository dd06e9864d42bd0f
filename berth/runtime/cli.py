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
from berth.util import suppress
from berth.util.flags import FlagError, FlagSet

TYPE_CHECKING = False  # importing typing costs milliseconds on the start path
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

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


def _console(args: Namespace) -> Any:
    if args.console_socket:
        return container.console_socket_sender(os.path.abspath(args.console_socket))
    return None


def cmd_create(args: Namespace) -> int:
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


def cmd_start(args: Namespace) -> int:
    container.start(_existing(args.root, args.id))
    return 0


def cmd_run(args: Namespace) -> int:
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


def cmd_exec(args: Namespace) -> int:
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


def cmd_ps(args: Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    pids = container.container_pids(_existing(args.root, args.id))
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    if pids:
        subprocess.run(["ps", "-f", "-p", ",".join(str(p) for p in pids)], check=False)
    return 0


def cmd_pause(args: Namespace) -> int:
    container.pause(_existing(args.root, args.id))
    return 0


def cmd_resume(args: Namespace) -> int:
    container.resume(_existing(args.root, args.id))
    return 0


def cmd_update(args: Namespace) -> int:
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


def cmd_features(args: Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    print(json.dumps(features(), indent=2))
    return 0


def cmd_state(args: Namespace) -> int:
    import json  # not on the run path: json imports re and enum

    print(json.dumps(container.state(_existing(args.root, args.id)), indent=2))
    return 0


def cmd_kill(args: Namespace) -> int:
    container.kill(_existing(args.root, args.id), parse_signal(args.signal), all=args.all)
    return 0


def cmd_delete(args: Namespace) -> int:
    try:
        path = _existing(args.root, args.id)
    except NotFound:
        if args.force:
            return 0
        raise
    container.delete(path, force=args.force)
    return 0


def cmd_list(args: Namespace) -> int:
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


def cmd_spec(args: Namespace) -> int:
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


# -- the command line -------------------------------------------------------------------------
# Read by berth.util.flags (pflag's rules, as runc's own flags): argparse, with gettext and
# locale, and building its parsers cost as much as a container's whole start.

_BUNDLE_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-b", "--bundle"), {"default": ".", "help": "bundle directory"}),
    (("--pid-file",), {"help": "write init's pid here"}),
    (("--console-socket",), {"help": "unix socket that receives the pty master "
                                     "(process.terminal)"}),
    (("--no-pivot",), {"action": "store_true", "help": "accepted for runc compatibility"}),
    (("--no-new-keyring",), {"action": "store_true", "help": "accepted for runc compatibility"}),
    (("--preserve-fds",), {"type": int, "default": 0, "help": "accepted for runc compatibility"}),
]
_FORMAT_FLAG = (("-f", "--format"), {"choices": ("table", "json"), "default": "table",
                                     "help": "table or json"})


class _Command:
    """One subcommand: its summary, flags and positionals (``rest`` takes what follows)."""

    def __init__(self, summary: str, flags: list[tuple[tuple[str, ...], dict[str, Any]]],
                 positionals: tuple[str, ...] = ("id",), required: int = 1,
                 rest: str | None = None, defaults: dict[str, Any] | None = None,
                 interspersed: bool = True) -> None:
        self.summary = summary
        self.interspersed = interspersed  # False: flags end at the first positional
        self.flags = flags
        self.positionals = positionals
        self.required = required
        self.rest = rest
        self.defaults = defaults or {}

    def usage(self, name: str) -> str:
        words = [f"<{p}>" if i < self.required else f"[{p}]"
                 for i, p in enumerate(self.positionals)]
        if self.rest:
            words.append(f"[{self.rest} ...]")
        return " ".join(["berth-runtime", name, "[flags]", *words])


_COMMANDS: dict[str, _Command] = {
    "create": _Command("create a container, blocked before its command", _BUNDLE_FLAGS),
    "run": _Command("create and start a container, wait for it, delete it",
                    [*_BUNDLE_FLAGS, (("-d", "--detach"), {"action": "store_true",
                                                           "help": "do not wait"})]),
    "start": _Command("start a created container", []),
    "state": _Command("print a container's state as JSON", []),
    "kill": _Command("send a signal to a container's init",
                     [(("-a", "--all"), {"action": "store_true", "help": "signal every process"})],
                     ("id", "signal"), defaults={"signal": "SIGTERM"}),
    "delete": _Command("delete a container's state",
                       [(("-f", "--force"), {"action": "store_true",
                                             "help": "kill it if it is running"})]),
    "list": _Command("list containers", [_FORMAT_FLAG], (), 0),
    "exec": _Command("run a process in a running container", [
        (("-p", "--process"), {"help": "an OCI process JSON file"}),
        (("-t", "--tty"), {"action": "store_true", "help": "allocate a terminal"}),
        (("-d", "--detach"), {"action": "store_true", "help": "do not wait"}),
        (("--console-socket",), {"help": "unix socket that receives the pty master"}),
        (("--pid-file",), {"help": "write the process's pid here"}),
        (("--cwd",), {"default": "/", "help": "working directory"}),
        (("-e", "--env"), {"action": "append", "help": "an environment variable"}),
        (("-u", "--user"), {"help": "UID[:GID]"}),
        (("-c", "--cap"), {"action": "append", "help": "a capability"}),
        (("--no-new-privs",), {"action": "store_true", "help": "set no_new_privs"}),
    ], rest="command", interspersed=False),
    "ps": _Command("list a container's processes", [_FORMAT_FLAG]),
    "pause": _Command("freeze every process of a container", []),
    "resume": _Command("thaw a paused container", []),
    "update": _Command("change a running container's resource limits", [
        (("-r", "--resources"), {"help": "OCI linux.resources JSON file (- for stdin)"}),
        (("--memory",), {"type": int, "help": "memory limit in bytes"}),
        (("--pids-limit",), {"type": int, "help": "maximum number of processes"}),
        (("--cpu-quota",), {"type": int, "help": "CFS quota in microseconds"}),
        (("--cpu-period",), {"type": int, "help": "CFS period in microseconds"}),
        (("--cpu-shares",), {"type": int, "help": "CPU shares (relative weight)"}),
    ]),
    "features": _Command("print what this runtime supports (JSON)", [], (), 0),
    "spec": _Command("write a config.json with Docker's defaults",
                     [(("-b", "--bundle"), {"default": ".", "help": "bundle directory"})],
                     (), 0, rest="args", interspersed=False),
}
_GLOBAL_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--root",), {"default": DEFAULT_ROOT, "help": "state directory root"}),
    (("--log",), {"help": "accepted for runc compatibility; errors go to stderr"}),
    (("--log-format",), {"help": "accepted for runc compatibility"}),
    (("--debug",), {"action": "store_true", "help": "accepted for runc compatibility"}),
    (("--systemd-cgroup",), {"action": "store_true", "help": "accepted for runc compatibility"}),
]


class UsageError(Exception):
    """A command line that cannot be run; printed with a pointer to --help, exit 2."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = command


def _flag_set(flags: list[tuple[tuple[str, ...], dict[str, Any]]]) -> FlagSet:
    fs = FlagSet()
    for names, kw in flags:
        fs.add(*names, **kw)
    fs.add("-h", "--help", action="store_true")
    return fs


def _flags_help(flags: list[tuple[tuple[str, ...], dict[str, Any]]]) -> list[str]:
    rows = [(", ".join(names), kw.get("help", "")) for names, kw in flags]
    rows.append(("-h, --help", "show this help"))
    width = max(len(left) for left, _ in rows) + 2
    return [f"  {left.ljust(width)}{text}".rstrip() for left, text in rows]


def help_text(command: str | None = None) -> str:
    if command is None:
        lines = ["usage: berth-runtime [global flags] <command> [flags] [arguments]", "",
                 "berth's OCI runtime (runc's command line)", "", "commands:"]
        width = max(len(name) for name in _COMMANDS) + 2
        lines += [f"  {name.ljust(width)}{cmd.summary}" for name, cmd in _COMMANDS.items()]
        lines += ["", "global flags:", *_flags_help(_GLOBAL_FLAGS)]
    else:
        cmd = _COMMANDS[command]
        lines = [f"usage: {cmd.usage(command)}", "", cmd.summary, "", "flags:",
                 *_flags_help(cmd.flags)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> Namespace | None:
    """The command line as a namespace (``func`` runs it); None when help was printed."""
    try:
        ns, rest = _flag_set(_GLOBAL_FLAGS).parse(argv, interspersed=False)
    except FlagError as e:
        raise UsageError(e.message) from None
    if ns.help or not rest:
        if not ns.help:
            raise UsageError("a command is required")
        sys.stdout.write(help_text())
        return None
    name, argv = rest[0], rest[1:]
    cmd = _COMMANDS.get(name)
    if cmd is None:
        raise UsageError(f"unknown command {name!r}")
    try:
        ns, positionals = _flag_set(cmd.flags).parse(argv, ns, interspersed=cmd.interspersed)
    except FlagError as e:
        raise UsageError(e.message, name) from None
    if ns.help:
        sys.stdout.write(help_text(name))
        return None
    fixed = positionals[:len(cmd.positionals)]
    most = len(cmd.positionals)
    if len(fixed) < cmd.required or (cmd.rest is None and len(positionals) > most):
        if cmd.rest is None and cmd.required == most:
            need = f"exactly {most}"
        else:
            need = f"at least {cmd.required}" if len(fixed) < cmd.required else f"at most {most}"
        raise UsageError(f'"{name}" requires {need} argument(s)', name)
    for i, field in enumerate(cmd.positionals):
        setattr(ns, field, fixed[i] if i < len(fixed) else cmd.defaults.get(field))
    if cmd.rest is not None:
        setattr(ns, "exec_args" if cmd.rest == "command" else cmd.rest,
                positionals[len(fixed):])
    del ns.help
    ns.command = name
    ns.func = globals()["cmd_" + name]
    return ns


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except UsageError as e:
        where = f"berth-runtime {e.command}" if e.command else "berth-runtime"
        sys.stderr.write(f"berth-runtime: {e.message}\nRun '{where} --help' for usage.\n")
        sys.stderr.flush()
        os._exit(2)
    if args is None:
        sys.stdout.flush()
        os._exit(0)
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


if __name__ == "__main__":
    main()
