"""What ``run`` and ``create`` share: their flags, the create request they build, and docker's
create flow (pull the image when the daemon says it has none, then create again)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, append_list
from berth.errors import BerthError
from berth.http.client import APIError

USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"


def configure(p: Parser, *, run: bool) -> None:
    """The flags of ``create`` (and, with ``run``, those only ``run`` has)."""
    if run:
        p.flag("-d", "--detach", action="store_true",
               help="Run container in background and print container ID")
        p.flag("--sig-proxy", dest="sig_proxy", action="store_true", default=True,
               help="Proxy received signals to the process (default true)")
    append_list(p, "--add-host", dest="add_host", help="Add a custom host-to-IP mapping (host:ip)")
    append_list(p, "-a", "--attach", help="Attach to STDIN, STDOUT or STDERR")
    append_list(p, "--cap-add", dest="cap_add", help="Add Linux capabilities")
    append_list(p, "--cap-drop", dest="cap_drop", help="Drop Linux capabilities")
    p.flag("--cidfile", kind="string", help="Write the container ID to the file")
    append_list(p, "--dns", help="Set custom DNS servers")
    p.flag("--entrypoint", kind="string", help="Overwrite the default ENTRYPOINT of the image")
    append_list(p, "-e", "--env", help="Set environment variables")
    append_list(p, "--env-file", dest="env_file", help="Read in a file of environment variables")
    append_list(p, "--expose", help="Expose a port or a range of ports")
    append_list(p, "--group-add", dest="group_add", help="Add additional groups to join")
    p.flag("-h", "--hostname", kind="string", help="Container host name")
    p.flag("--init", action="store_true",
           help="Run an init inside the container that forwards signals and reaps processes")
    p.flag("-i", "--interactive", action="store_true",
           help="Keep STDIN open even if not attached")
    append_list(p, "-l", "--label", help="Set meta data on a container")
    p.flag("-m", "--memory", kind="bytes", help="Memory limit")
    p.flag("--name", kind="string", help="Assign a name to the container")
    p.flag("--network", kind="network", help="Connect a container to a network")
    p.flag("--platform", kind="string", help="Set platform if server is multi-platform capable")
    p.flag("--privileged", action="store_true",
           help="Give extended privileges to this container")
    append_list(p, "-p", "--publish", help="Publish a container's port(s) to the host")
    p.flag("-P", "--publish-all", dest="publish_all", action="store_true",
           help="Publish all exposed ports to random ports")
    p.flag("--pull", kind="string", default="missing", choices=("always", "missing", "never"),
           help='Pull image before running ("always", "missing", "never")')
    p.flag("-q", "--quiet", action="store_true", help="Suppress the pull output")
    p.flag("--read-only", dest="read_only", action="store_true",
           help="Mount the container's root filesystem as read only")
    p.flag("--restart", kind="string", default="no",
           help="Restart policy to apply when a container exits")
    p.flag("--rm", action="store_true",
           help="Automatically remove the container and its associated anonymous volumes "
                "when it exits")
    append_list(p, "--security-opt", dest="security_opt", help="Security Options")
    p.flag("--stop-signal", dest="stop_signal", kind="string",
           help="Signal to stop the container")
    p.flag("--stop-timeout", dest="stop_timeout", kind="int", type=int,
           help="Timeout (in seconds) to stop a container")
    append_list(p, "--tmpfs", help="Mount a tmpfs directory")
    p.flag("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.flag("-u", "--user", kind="string",
           help="Username or UID (format: <name|uid>[:<group|gid>])")
    append_list(p, "-v", "--volume", help="Bind mount a volume")
    p.flag("-w", "--workdir", kind="string", help="Working directory inside the container")
    p.command_positionals()


@dataclass
class CreateSpec:
    """The create request: the body of ``POST /containers/create`` and its query."""

    body: dict[str, Any]
    name: str | None = None
    platform: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        return str(self.body["Image"])


class OptionError(ValueError):
    """A flag's value is wrong. ``flag`` errors are worded as pflag's (with the usage line),
    the others as docker's option validation; both exit 125."""

    def __init__(self, message: str, flag: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag

    def status(self, verb: str) -> StatusError:
        if self.flag:
            from berth.cli.parser import flag_error

            return flag_error(self.message, f"berth {verb} {USAGE}", verb)
        return _usage_error(self.message, verb)


def _usage_error(message: str, verb: str) -> StatusError:
    return StatusError(125, f"berth: {message}\n\nRun 'berth {verb} --help' for more information")


def build_spec(args: argparse.Namespace, verb: str, *, detach: bool,
               environ: Mapping[str, str]) -> CreateSpec:
    """Turn the flags into the create request, validating as docker's CLI does."""
    try:
        return _build_spec(args, detach, environ)
    except OptionError as e:
        raise e.status(verb) from None


def _build_spec(args: argparse.Namespace, detach: bool, environ: Mapping[str, str]) -> CreateSpec:
    attach = [a.lower() for a in args.attach]
    for stream in attach:
        if stream not in ("stdin", "stdout", "stderr"):
            raise OptionError(f"invalid argument \"{stream}\" for \"-a, --attach\" flag: "
                              "valid streams are STDIN, STDOUT and STDERR", flag=True)
    if detach and attach:
        raise OptionError("conflicting options: cannot specify both --attach and --detach")
    if detach:
        attach_stdin = attach_stdout = attach_stderr = False
    elif attach:
        attach_stdin = "stdin" in attach
        attach_stdout = "stdout" in attach
        attach_stderr = "stderr" in attach
    else:
        attach_stdin = bool(args.interactive)
        attach_stdout = attach_stderr = True
    if args.rm and args.restart not in ("", "no"):
        raise OptionError("conflicting options: cannot specify both --restart and --rm")

    env = _read_env_files(args.env_file, environ) + [_env_entry(e, environ) for e in args.env]
    labels = {}
    for item in args.label:
        key, _, value = item.partition("=")
        labels[key] = value
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in args.publish:
        for port, binding in _parse_publish(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    for spec in args.expose:
        for port in _expand_ports(spec):
            exposed[port] = {}
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in args.volume:
        if ":" in spec.lstrip("/").rstrip(":") and not spec.startswith(":"):
            binds.append(spec)
        else:
            volumes[spec] = {}
    tmpfs: dict[str, str] = {}
    for spec in args.tmpfs:
        path, _, options = spec.partition(":")
        tmpfs[path] = options

    entrypoint: list[str] | None = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint]

    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": args.network or "default",
        "PortBindings": bindings or {},
        "RestartPolicy": _restart_policy(args.restart),
        "AutoRemove": bool(args.rm),
        "Privileged": bool(args.privileged),
        "PublishAllPorts": bool(args.publish_all),
        "ReadonlyRootfs": bool(args.read_only),
        "CapAdd": args.cap_add or None,
        "CapDrop": args.cap_drop or None,
        "Dns": args.dns or [],
        "ExtraHosts": args.add_host or None,
        "GroupAdd": args.group_add or None,
        "SecurityOpt": args.security_opt or None,
    }
    if args.init:
        host_config["Init"] = True
    if tmpfs:
        host_config["Tmpfs"] = tmpfs
    if args.memory:
        try:
            host_config["Memory"] = ram_in_bytes(args.memory)
        except ValueError as e:
            raise OptionError(f"invalid argument \"{args.memory}\" for \"-m, --memory\" flag: "
                              f"{e}", flag=True) from None

    body: dict[str, Any] = {
        "Hostname": args.hostname or "",
        "Domainname": "",
        "User": args.user or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": bool(args.tty),
        "OpenStdin": bool(args.interactive),
        "StdinOnce": bool(args.interactive) and attach_stdin,
        "Env": env or None,
        "Cmd": list(args.command) if args.command else None,
        "Image": args.image,
        "Volumes": volumes,
        "WorkingDir": args.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": labels,
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {}},
    }
    if exposed:
        body["ExposedPorts"] = exposed
    if args.stop_signal:
        body["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        body["StopTimeout"] = args.stop_timeout
    return CreateSpec(body, name=args.name or None, platform=args.platform or None)


def _env_entry(item: str, environ: Mapping[str, str]) -> str:
    """``K=V`` as given; a bare ``K`` takes the CLI's own value when it has one (docker's rule)."""
    key, sep, _ = item.partition("=")
    if not key:
        raise OptionError(f"invalid argument \"{item}\" for \"-e, --env\" flag: "
                          f"invalid environment variable: {item}", flag=True)
    if sep:
        return item
    value = environ.get(key)
    return f"{key}={value}" if value is not None else item


def _read_env_files(paths: list[str], environ: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise OptionError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
        for line in lines:
            text = line.lstrip()
            if not text or text.startswith("#"):
                continue
            if "=" in text:
                key, _, value = text.partition("=")
                if not key.strip():
                    raise OptionError(f"invalid environment variable: {text}")
                out.append(f"{key.lstrip()}={value}")
            else:
                out.append(_env_entry(text.strip(), environ))
    return out


def _restart_policy(text: str) -> dict[str, Any]:
    """``name[:count]``; the name is the daemon's to judge, as with docker's CLI."""
    name, colon, count = (text or "no").partition(":")
    if colon and not name:
        raise OptionError("invalid restart policy format: no policy provided before colon")
    policy: dict[str, Any] = {"Name": name, "MaximumRetryCount": 0}
    if count:
        try:
            policy["MaximumRetryCount"] = int(count)
        except ValueError:
            raise OptionError("invalid restart policy format: maximum retry count must be an "
                              "integer") from None
    return policy


def _port_range(text: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ValueError(text)
    start, end = int(lo), int(hi) if sep else int(lo)
    if end < start or end > 65535:
        raise ValueError(text)
    return list(range(start, end + 1))


def _expand_ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    try:
        return [f"{p}/{proto or 'tcp'}" for p in _port_range(port)]
    except ValueError:
        raise OptionError(f"invalid range format for --expose: {spec}") from None


def _parse_publish(spec: str) -> list[tuple[str, dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]``, ranges allowed, as ``-p`` takes them."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    ip = ""
    if rest.startswith("["):  # [ipv6]:host:container
        end = rest.find("]")
        ip, rest = rest[1:end], rest[end + 2:]
    parts = rest.rsplit(":", 2) if not ip else rest.split(":")
    if len(parts) == 3:
        ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    else:
        host, container = "", parts[0]
    try:
        cports = _port_range(container)
        hports = _port_range(host) if host else []
    except ValueError:
        raise OptionError(f"invalid containerPort: {container}") from None
    if hports and len(hports) != len(cports) and len(cports) != 1:
        raise OptionError(f"invalid ranges specified for container and host Ports: "
                          f"{container} and {host}")
    out = []
    for i, cport in enumerate(cports):
        if not hports:
            hport = ""
        elif len(cports) == 1 and len(hports) > 1:
            hport = host  # a host range for one container port: the daemon picks
        else:
            hport = str(hports[i])
        out.append((f"{cport}/{proto}", {"HostIp": ip, "HostPort": hport}))
    return out


_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``512m``, ``1.5GiB``, ``100`` (bytes); binary multiples.

    Raises ValueError with go-units' wording (``invalid size: '…'``, ``invalid suffix: '…'``).
    """
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size: '{text}'")
    number, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else \
        (text[:sep], text[sep + 1:])
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    sfx = suffix.lower()
    if not sfx or sfx == "b":
        return int(size)
    if len(sfx) > 3 or sfx[0] not in _BINARY or (len(sfx) == 2 and sfx[1] != "b") or \
            (len(sfx) == 3 and sfx[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{sfx}'")
    return int(size * _BINARY[sfx[0]])


# -- the create flow --------------------------------------------------------------------------


def run_error(error: BaseException, verb: str) -> StatusError:
    """docker's exit codes for run/create failures: 127 command not found, 126 cannot be run,
    else 125; the message prefixed and followed by a pointer to --help."""
    if isinstance(error, APIError):
        message = f"Error response from daemon: {error.message}"
    elif isinstance(error, BerthError):
        message = error.message
    else:
        message = str(error)
    code = 125
    if any(s in message for s in ("executable file not found", "no such file or directory",
                                  "system cannot find the file specified")):
        code = 127
    elif "permission denied" in message or "is a directory" in message:
        code = 126
    return StatusError(code, f"berth: {message}\n\nRun 'berth {verb} --help' for more information")


def create_container(ctx: Context, spec: CreateSpec, *, pull: str = "missing",
                     quiet: bool = False) -> str:
    """Create the container, pulling its image first if needed; return the container id."""
    from berth.cli.commands.pull import pull_image
    from berth.oci.reference import parse_any_reference

    ref = parse_any_reference(spec.image)  # InvalidArgument: run exits 125, create 1
    named = None if isinstance(ref, str) else ref.with_default_tag()
    params = {"name": spec.name, "platform": spec.platform}
    client = ctx.client
    if pull == "always" and named is not None:
        pull_image(ctx, named.familiar(), spec.platform, quiet=quiet)
    try:
        result = client.post_json("/containers/create", params, spec.body)
    except APIError as e:
        if e.status != 404 or named is None or pull != "missing":
            raise
        if not quiet:
            ctx.err(f"Unable to find image '{named.familiar()}' locally")
        pull_image(ctx, named.familiar(), spec.platform, quiet=quiet)
        result = client.post_json("/containers/create", params, spec.body)
    for warning in result.get("Warnings") or []:
        ctx.err(f"WARNING: {warning}")
    return str(result["Id"])


def write_cidfile(path: str, container_id: str) -> None:
    """``--cidfile``: refuse an existing file, as docker does, so two runs cannot share one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise StatusError(125, f"berth: container ID file found, make sure the other container "
                               f"isn't running or delete {path}") from None
    with os.fdopen(fd, "w") as f:
        f.write(container_id)
