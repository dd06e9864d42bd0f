"""Everything after ``--version``: global options, help, the verb table, errors to exit codes.

Kept apart from :mod:`berth.cli.main` so that ``berth --version`` loads (and, without a
bytecode cache, compiles) only the few lines it needs.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # keep typing (milliseconds) off the --help path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

__all__ = ["COMMANDS", "DEFAULT_HOST", "MANAGEMENT", "SUBCOMMANDS", "dispatch", "verb_entry"]

DEFAULT_HOST = "unix:///run/berth/berth.sock"  # == berth.http.client.DEFAULT_HOST
_PKG = "berth.cli.commands."

# verb -> (module under berth.cli.commands, one-line summary); order is the help's order.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "Create and run a new container from an image"),
    "exec": ("exec", "Execute a command in a running container"),
    "ps": ("ps", "List containers"),
    "pull": ("pull", "Download an image from a registry"),
    "images": ("images", "List images"),
    "version": ("version", "Show the berth version information"),
    "info": ("info", "Display system-wide information"),
    "attach": ("attach", "Attach local standard input, output, and error streams to a running "
                         "container"),
    "commit": ("commit", "Create a new image from a container's changes"),
    "cp": ("cp", "Copy files/folders between a container and the local filesystem"),
    "create": ("create", "Create a new container"),
    "diff": ("diff", "Inspect changes to files or directories on a container's filesystem"),
    "events": ("events", "Get real time events from the server"),
    "export": ("export", "Export a container's filesystem as a tar archive"),
    "history": ("history", "Show the history of an image"),
    "import": ("import_", "Import the contents from a tarball to create a filesystem image"),
    "inspect": ("inspect", "Return low-level information on berth objects"),
    "kill": ("kill", "Kill one or more running containers"),
    "load": ("load", "Load an image from a tar archive or STDIN"),
    "logs": ("logs", "Fetch the logs of a container"),
    "pause": ("pause", "Pause all processes within one or more containers"),
    "port": ("port", "List port mappings or a specific mapping for the container"),
    "rename": ("rename", "Rename a container"),
    "restart": ("restart", "Restart one or more containers"),
    "rm": ("rm", "Remove one or more containers"),
    "rmi": ("rmi", "Remove one or more images"),
    "save": ("save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "start": ("start", "Start one or more stopped containers"),
    "stats": ("stats", "Display a live stream of container(s) resource usage statistics"),
    "stop": ("stop", "Stop one or more running containers"),
    "tag": ("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "top": ("top", "Display the running processes of a container"),
    "unpause": ("unpause", "Unpause all processes within one or more containers"),
    "update": ("update", "Update configuration of one or more containers"),
    "wait": ("wait", "Block until one or more containers stop, then print their exit codes"),
}
_COMMON = ("run", "exec", "ps", "pull", "images", "version", "info")

# Verbs reached only through a management command (``berth volume ls``), same shape.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "container prune": ("prune", "Remove all stopped containers"),
    "image prune": ("prune", "Remove unused images"),
    "system df": ("system_df", "Show berth disk usage"),
    "system prune": ("prune", "Remove unused data"),
    "volume create": ("volume", "Create a volume"),
    "volume inspect": ("volume", "Display detailed information on one or more volumes"),
    "volume ls": ("volume", "List volumes"),
    "volume prune": ("prune", "Remove unused local volumes"),
    "volume rm": ("volume", "Remove one or more volumes"),
}

# management command -> (summary, {sub-verb: verb in COMMANDS or SUBCOMMANDS})
MANAGEMENT: dict[str, tuple[str, dict[str, str]]] = {
    "container": ("Manage containers", {
        "attach": "attach", "commit": "commit", "cp": "cp", "create": "create", "diff": "diff",
        "exec": "exec", "export": "export", "inspect": "inspect", "kill": "kill",
        "logs": "logs", "ls": "ps", "list": "ps", "ps": "ps", "pause": "pause", "port": "port",
        "prune": "container prune", "rename": "rename", "restart": "restart", "rm": "rm",
        "remove": "rm", "run": "run", "start": "start", "stats": "stats", "stop": "stop",
        "top": "top", "unpause": "unpause", "update": "update", "wait": "wait",
    }),
    "image": ("Manage images", {
        "history": "history", "import": "import", "inspect": "inspect", "load": "load",
        "ls": "images", "list": "images", "prune": "image prune", "pull": "pull", "rm": "rmi",
        "remove": "rmi", "save": "save", "tag": "tag",
    }),
    "system": ("Manage berth", {"df": "system df", "events": "events", "info": "info",
                                "prune": "system prune"}),
    "volume": ("Manage volumes", {
        "create": "volume create", "inspect": "volume inspect", "ls": "volume ls",
        "list": "volume ls", "prune": "volume prune", "rm": "volume rm",
        "remove": "volume rm",
    }),
}


def verb_entry(verb: str) -> tuple[str, str]:
    """(module, summary) of a verb or a management sub-verb."""
    return COMMANDS.get(verb) or SUBCOMMANDS[verb]

_LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def version_text() -> str:
    from berth import __version__

    return f"berth version {__version__}\n"


def _help_text() -> str:
    def block(title: str, names: list[str], summaries: dict[str, str]) -> list[str]:
        return ["", f"{title}:"] + [f"  {n.ljust(11)} {summaries[n]}" for n in names]

    summaries = {name: summary for name, (_, summary) in COMMANDS.items()}
    lines = ["Usage:  berth [OPTIONS] COMMAND", "", "A self-sufficient runtime for containers"]
    lines += block("Common Commands", list(_COMMON), summaries)
    lines += block("Management Commands", sorted(MANAGEMENT),
                   {k: v[0] for k, v in MANAGEMENT.items()})
    lines += block("Commands", sorted(n for n in COMMANDS if n not in _COMMON), summaries)
    lines += [
        "",
        "Global Options:",
        "  -D, --debug              Enable debug mode",
        f'  -H, --host string        Daemon socket to connect to (default "{DEFAULT_HOST}")',
        '  -l, --log-level string   Set the logging level ("debug", "info", "warn", "error",',
        '                           "fatal") (default "info")',
        "  -v, --version            Print version information and quit",
        "",
        "Run 'berth COMMAND --help' for more information on a command.",
    ]
    return "\n".join(lines) + "\n"


def _management_help(group: str) -> str:
    summary, verbs = MANAGEMENT[group]
    summaries = {name: summary for name, (_, summary) in {**COMMANDS, **SUBCOMMANDS}.items()}
    lines = [f"Usage:  berth {group} COMMAND", "", summary, "", "Commands:"]
    shown: dict[str, str] = {}  # verb -> the first sub-verb naming it (``ls``, not ``list``)
    for sub, verb in verbs.items():
        shown.setdefault(verb, sub)
    for verb, sub in sorted(shown.items(), key=lambda item: item[1]):
        lines.append(f"  {sub.ljust(11)} {summaries[verb]}")
    lines += ["", f"Run 'berth {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


class _GlobalUsage(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _global_flag_error(message: str) -> _GlobalUsage:
    return _GlobalUsage(125, f"{message}\n\nUsage:  berth [OPTIONS] COMMAND [ARG...]\n\n"
                             "Run 'berth --help' for more information")


def _parse_globals(args: list[str], env: Mapping[str, str]) -> tuple[
        dict[str, object], int]:
    """Global flags up to the verb, docker's way (``berth -H unix:///x.sock ps``)."""
    opts: dict[str, object] = {
        "host": env.get("BERTH_HOST") or DEFAULT_HOST, "debug": False, "log_level": "info",
        "help": False, "version": False,
    }
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return opts, i + 1
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in ("-H", "--host", "-l", "--log-level") or (
                arg[1:2] in ("H", "l") and not arg.startswith("--")):
            if name in ("-H", "--host", "-l", "--log-level"):
                if not eq:
                    if i + 1 >= len(args):
                        raise _global_flag_error(f"flag needs an argument: {name}")
                    i += 1
                    value = args[i]
                key = "host" if name in ("-H", "--host") else "log_level"
            else:
                key, value = ("host" if arg[1] == "H" else "log_level"), arg[2:]
            if key == "log_level" and value not in _LOG_LEVELS:
                raise _GlobalUsage(1, f"Unable to parse logging level: {value}")
            opts[key] = value
        elif arg in ("-D", "--debug"):
            opts["debug"] = True
        elif arg in ("-v", "--version"):
            opts["version"] = True
        elif arg in ("-h", "--help"):
            opts["help"] = True
        elif arg.startswith("--"):
            raise _global_flag_error(f"unknown flag: {name}")
        else:
            raise _global_flag_error(f"unknown shorthand flag: '{arg[1]}' in {arg}")
        i += 1
    return opts, i


def dispatch(args: list[str], *, stdin: IO[bytes] | None, out: IO[bytes], err: IO[bytes],
             environ: Mapping[str, str] | None) -> int:
    """Run a command line other than the bare ``--version``."""
    env = os.environ if environ is None else environ
    try:
        opts, i = _parse_globals(args, env)
    except _GlobalUsage as e:
        err.write((e.message + "\n").encode())
        return e.code
    if opts["version"]:
        out.write(version_text().encode())
        return 0
    if opts["help"] or i >= len(args):
        out.write(_help_text().encode())
        return 0
    verb, rest = args[i], args[i + 1:]
    display = verb
    if verb in MANAGEMENT:
        subs = MANAGEMENT[verb][1]
        if not rest or rest[0] in ("--help", "-h"):
            out.write(_management_help(verb).encode())
            return 0
        if rest[0] not in subs:
            err.write(f"berth: unknown command: berth {verb} {rest[0]}\n\n"
                      f"Run 'berth {verb} --help' for more information\n".encode())
            return 1
        display = f"{verb} {rest[0]}"
        verb, rest = subs[rest[0]], rest[1:]
    if verb not in COMMANDS and verb not in SUBCOMMANDS:
        err.write(f"berth: unknown command: berth {verb}\n\n"
                  "Run 'berth --help' for more information\n".encode())
        return 1
    return _run_verb(verb, display, rest, opts, stdin, out, err, env)


def _run_verb(verb: str, display: str, rest: list[str], opts: dict[str, object],
              stdin: IO[bytes] | None, out: IO[bytes], err: IO[bytes],
              env: Mapping[str, str]) -> int:
    import sys

    from berth.cli.context import Context, StatusError
    from berth.cli.parser import Parser

    module_name, summary = verb_entry(verb)
    __import__(_PKG + module_name)  # importlib itself costs ~1 ms (it loads warnings)
    module = sys.modules[_PKG + module_name]
    ctx = Context(str(opts["host"]), verb=display, debug=bool(opts["debug"]),
                  log_level=str(opts["log_level"]), stdin=stdin, stdout=out, stderr=err,
                  environ=env, command=verb)
    # A module serving several verbs (``volume``) keys its usage and aliases by verb.
    usage = module.USAGE if isinstance(module.USAGE, str) else module.USAGE[verb]
    aliases = getattr(module, "ALIASES", ())
    if isinstance(aliases, dict):
        aliases = aliases.get(verb, ())
    parser = Parser(display, f"berth {display} {usage}".rstrip(), summary,
                    [f"berth {a}" for a in aliases])
    parser.command = verb
    try:
        module.configure(parser)
        ns = parser.parse(rest)
        return int(module.run(ctx, ns) or 0)
    except StatusError as e:
        if e.stdout:
            ctx.out(e.stdout, end="")
        if e.message:
            ctx.err(e.message)
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the one place errors become exit codes
        return _report(ctx, e)


def _report(ctx: object, error: Exception) -> int:
    """Print an error as docker would and pick the exit code (1 outside run/create)."""
    from berth.cli.context import Context
    from berth.errors import BerthError
    from berth.http.client import APIError

    assert isinstance(ctx, Context)
    if isinstance(error, APIError):
        ctx.err(f"Error response from daemon: {error.message}")
    elif isinstance(error, BerthError):
        ctx.err(error.message)
    elif isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        ctx.err(f"{where}{error.strerror.lower()}")
    else:
        if ctx.debug:
            import traceback

            ctx.err(traceback.format_exc().rstrip())
        ctx.err(f"berth: {error}")
    return 1

