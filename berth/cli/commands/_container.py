"""What ``run`` and ``create`` share: their flags, the create request they build, and docker's
create flow (pull the image when the daemon says it has none, then create again)."""

from __future__ import annotations

import os

from berth.cli.context import Context, StatusError
from berth.cli.options import (
    OptionError,
    add_resource_flags,
    bad_flag,
    capabilities,
    device_limit,
    dns_server,
    env_entry,
    expand_ports,
    extra_host,
    health_config,
    kv_map,
    log_opts,
    parse_device,
    parse_gpus,
    parse_mount,
    parse_publish,
    parse_resource_flags,
    parse_ulimit,
    read_env_files,
    read_label_files,
    restart_policy,
    security_opts,
    volume_spec,
)
from berth.cli.parser import Parser, append_list
from berth.errors import BerthError
from berth.http.client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"


def configure(p: Parser, *, run: bool) -> None:
    """The flags of ``create`` (and, with ``run``, those only ``run`` has)."""
    if run:
        p.flag("-d", "--detach", action="store_true",
               help="Run container in background and print container ID")
        p.flag("--detach-keys", dest="detach_keys", kind="string",
               help="Override the key sequence for detaching a container")
        p.flag("--sig-proxy", dest="sig_proxy", action="store_true", default=True,
               help="Proxy received signals to the process (default true)")
    add_resource_flags(p)
    append_list(p, "--add-host", dest="add_host", help="Add a custom host-to-IP mapping (host:ip)")
    append_list(p, "-a", "--attach", help="Attach to STDIN, STDOUT or STDERR")
    p.flag("--health-cmd", dest="health_cmd", kind="string",
           help="Command to run to check health")
    p.flag("--health-interval", dest="health_interval", kind="duration",
           help="Time between running the check (ms|s|m|h) (default 0s)")
    p.flag("--health-retries", dest="health_retries", kind="int",
           help="Consecutive failures needed to report unhealthy")
    p.flag("--health-start-interval", dest="health_start_interval", kind="duration",
           help="Time between running the check during the start period (ms|s|m|h) "
                "(default 0s)")
    p.flag("--health-start-period", dest="health_start_period", kind="duration",
           help="Start period for the container to initialize before starting health-retries "
                "countdown (ms|s|m|h) (default 0s)")
    p.flag("--health-timeout", dest="health_timeout", kind="duration",
           help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    append_list(p, "--label-file", dest="label_file",
                help="Read in a line delimited file of labels")
    p.flag("--log-driver", dest="log_driver", kind="string",
           help="Logging driver for the container")
    append_list(p, "--log-opt", dest="log_opt", help="Log driver options")
    append_list(p, "--mount", help="Attach a filesystem mount to the container")
    p.flag("--no-healthcheck", dest="no_healthcheck", action="store_true",
           help="Disable any container-specified HEALTHCHECK")
    p.flag("--oom-kill-disable", dest="oom_kill_disable", action="store_true",
           help="Disable OOM Killer")
    append_list(p, "--sysctl", help="Sysctl options")
    append_list(p, "--ulimit", help="Ulimit options")
    append_list(p, "--annotation", help="Add an annotation to the container (passed through to "
                                        "the OCI runtime)")
    append_list(p, "--blkio-weight-device", dest="blkio_weight_device",
                help="Block IO weight (relative device weight)")
    append_list(p, "--cap-add", dest="cap_add", help="Add Linux capabilities")
    p.flag("--cgroup-parent", dest="cgroup_parent", kind="string",
           help="Optional parent cgroup for the container")
    p.flag("--cgroupns", kind="string", help="Cgroup namespace to use (host|private)")
    append_list(p, "--device", help="Add a host device to the container")
    append_list(p, "--device-cgroup-rule", dest="device_cgroup_rule",
                help="Add a rule to the cgroup allowed devices list")
    append_list(p, "--device-read-bps", dest="device_read_bps",
                help="Limit read rate (bytes per second) from a device")
    append_list(p, "--device-read-iops", dest="device_read_iops",
                help="Limit read rate (IO per second) from a device")
    append_list(p, "--device-write-bps", dest="device_write_bps",
                help="Limit write rate (bytes per second) to a device")
    append_list(p, "--device-write-iops", dest="device_write_iops",
                help="Limit write rate (IO per second) to a device")
    p.flag("--disable-content-trust", dest="disable_content_trust", action="store_true",
           default=True, help="Skip image verification (default true)")
    append_list(p, "--dns-option", dest="dns_option", help="Set DNS options")
    append_list(p, "--dns-search", dest="dns_search", help="Set custom DNS search domains")
    p.flag("--domainname", kind="string", help="Container NIS domain name")
    p.flag("--ipc", kind="string", help="IPC mode to use")
    p.flag("--isolation", kind="string", help="Container isolation technology")
    p.flag("--kernel-memory", dest="kernel_memory", kind="bytes",
           help="Kernel memory limit (accepted and ignored, as by API 1.42 and later)")
    append_list(p, "--link", help="Add link to another container")
    p.flag("--pid", kind="string", help="PID namespace to use")
    p.flag("--runtime", kind="string", help="Runtime to use for this container")
    append_list(p, "--storage-opt", dest="storage_opt",
                help="Storage driver options for the container")
    p.flag("--userns", kind="string", help="User namespace to use")
    p.flag("--uts", kind="string", help="UTS namespace to use")
    p.flag("--volume-driver", dest="volume_driver", kind="string",
           help="Optional volume driver for the container")
    append_list(p, "--volumes-from", dest="volumes_from",
                help="Mount volumes from the specified container(s)")
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
    p.flag("--name", kind="string", help="Assign a name to the container")
    p.flag("--gpus", kind="gpu-request", help="GPU devices to add to the container ('all' to "
                                              "pass all GPUs)")
    p.flag("--ip", kind="string", help="IPv4 address (e.g., 172.30.100.104)")
    p.flag("--ip6", kind="string", help="IPv6 address (e.g., 2001:db8::33)")
    append_list(p, "--link-local-ip", dest="link_local_ip",
                help="Container IPv4/IPv6 link-local addresses")
    p.flag("--mac-address", dest="mac_address", kind="string",
           help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.flag("--network", kind="network", help="Connect a container to a network")
    append_list(p, "--network-alias", dest="network_alias",
                help="Add network-scoped alias for the container")
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


class CreateSpec:
    """The create request: the body of ``POST /containers/create`` and its query."""

    def __init__(self, body: dict[str, Any], name: str | None = None,
                 platform: str | None = None) -> None:
        self.body = body
        self.name = name
        self.platform = platform

    @property
    def image(self) -> str:
        return str(self.body["Image"])


def _endpoints(args: Namespace) -> dict[str, Any]:
    """``EndpointsConfig`` for the network joined: aliases, fixed addresses, MAC address."""
    mode = args.network or "default"
    user_defined = mode not in ("default", "bridge", "host", "none") and \
        not mode.startswith("container:")
    if args.network_alias and not user_defined:
        raise OptionError("network-scoped aliases are only supported for user-defined networks")
    if mode in ("host", "none") or mode.startswith("container:"):
        return {}
    endpoint: dict[str, Any] = {}
    if args.network_alias:
        endpoint["Aliases"] = list(args.network_alias)
    ipam = {key: value for key, value in (("IPv4Address", args.ip), ("IPv6Address", args.ip6))
            if value}
    if args.link_local_ip:
        ipam["LinkLocalIPs"] = list(args.link_local_ip)
    if ipam:
        endpoint["IPAMConfig"] = ipam
    if args.mac_address:
        endpoint["MacAddress"] = args.mac_address
    return {mode: endpoint}


def build_spec(args: Namespace, verb: str, *, detach: bool,
               environ: Mapping[str, str]) -> CreateSpec:
    """Turn the flags into the create request, validating as docker's CLI does."""
    try:
        return _build_spec(args, detach, environ)
    except OptionError as e:
        raise e.status(verb, USAGE) from None


_WINDOWS_ONLY = (("cpu_count", "--cpu-count"), ("cpu_percent", "--cpu-percent"),
                 ("io_maxbandwidth", "--io-maxbandwidth"), ("io_maxiops", "--io-maxiops"))


def _build_spec(args: Namespace, detach: bool, environ: Mapping[str, str]) -> CreateSpec:
    windows = [flag for dest, flag in _WINDOWS_ONLY if getattr(args, dest) is not None]
    if windows:  # berthd runs on Linux; docker's CLI refuses these there, exit 1
        raise StatusError(1, "\n".join(
            f'"{flag}" is only supported on a berth daemon running on windows, but the berth '
            "daemon is running on linux" for flag in windows))
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

    env = read_env_files(args.env_file, environ) + [env_entry(e, environ) for e in args.env]
    labels = kv_map(read_label_files(args.label_file) + list(args.label))
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in args.publish:
        for port, binding in parse_publish(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    for spec in args.expose:
        for port in expand_ports(spec):
            exposed[port] = {}
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in args.volume:
        binds_or_volume = volume_spec(spec)
        if binds_or_volume is None:
            volumes[spec] = {}
        else:
            binds.append(binds_or_volume)
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
        "RestartPolicy": restart_policy(args.restart),
        "AutoRemove": bool(args.rm),
        "Privileged": bool(args.privileged),
        "PublishAllPorts": bool(args.publish_all),
        "ReadonlyRootfs": bool(args.read_only),
        "CapAdd": capabilities(args.cap_add),
        "CapDrop": capabilities(args.cap_drop),
        "Dns": [dns_server(d) for d in args.dns],
        "ExtraHosts": [extra_host(h) for h in args.add_host] or None,
        "GroupAdd": args.group_add or None,
        "SecurityOpt": security_opts(args.security_opt) or None,
        "LogConfig": {"Type": args.log_driver or "", "Config": log_opts(args)},
        "OomKillDisable": bool(args.oom_kill_disable),
    }
    if args.init:
        host_config["Init"] = True
    if tmpfs:
        host_config["Tmpfs"] = tmpfs
    host_config.update(parse_resource_flags(args))
    if args.ulimit:
        host_config["Ulimits"] = [parse_ulimit(u) for u in args.ulimit]
    if args.mount:
        host_config["Mounts"] = [parse_mount(m) for m in args.mount]
    for flag_value, field_name in (
            (args.cgroup_parent, "CgroupParent"), (args.cgroupns, "CgroupnsMode"),
            (args.ipc, "IpcMode"), (args.pid, "PidMode"), (args.uts, "UTSMode"),
            (args.userns, "UsernsMode"), (args.runtime, "Runtime"),
            (args.isolation, "Isolation"), (args.volume_driver, "VolumeDriver")):
        if flag_value:
            host_config[field_name] = flag_value
    for values, field_name in ((args.dns_option, "DnsOptions"), (args.dns_search, "DnsSearch"),
                               (args.volumes_from, "VolumesFrom"), (args.link, "Links"),
                               (args.device_cgroup_rule, "DeviceCgroupRules")):
        if values:
            host_config[field_name] = list(values)
    if args.device:
        host_config["Devices"] = [parse_device(d) for d in args.device]
    for values, flag, field_name, kind in (
            (args.blkio_weight_device, "--blkio-weight-device", "BlkioWeightDevice", "weight"),
            (args.device_read_bps, "--device-read-bps", "BlkioDeviceReadBps", "bps"),
            (args.device_write_bps, "--device-write-bps", "BlkioDeviceWriteBps", "bps"),
            (args.device_read_iops, "--device-read-iops", "BlkioDeviceReadIOps", "iops"),
            (args.device_write_iops, "--device-write-iops", "BlkioDeviceWriteIOps", "iops")):
        if values:
            host_config[field_name] = [device_limit(v, flag, kind) for v in values]
    if args.gpus:
        host_config["DeviceRequests"] = [parse_gpus(args.gpus)]
    if args.storage_opt:
        host_config["StorageOpt"] = kv_map(args.storage_opt)
    if args.annotation:
        host_config["Annotations"] = kv_map(args.annotation)
    if args.sysctl:
        for item in args.sysctl:
            if "=" not in item:
                raise bad_flag(item, "--sysctl", f"sysctl '{item}' is not allowed")
        host_config["Sysctls"] = kv_map(args.sysctl)

    body: dict[str, Any] = {
        "Hostname": args.hostname or "",
        "Domainname": args.domainname or "",
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
        "NetworkingConfig": {"EndpointsConfig": _endpoints(args)},
    }
    if exposed:
        body["ExposedPorts"] = exposed
    if args.stop_signal:
        body["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        body["StopTimeout"] = args.stop_timeout
    health = health_config(args)
    if health is not None:
        body["Healthcheck"] = health
    return CreateSpec(body, name=args.name or None, platform=args.platform or None)


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
    from berth.oci.reference import parse_any_reference

    ref = parse_any_reference(spec.image)  # InvalidArgument: run exits 125, create 1
    named = None if isinstance(ref, str) else ref.with_default_tag()
    params = {"name": spec.name, "platform": spec.platform}
    client = ctx.client
    if pull == "always" and named is not None:
        from berth.cli.commands.pull import pull_image

        pull_image(ctx, named.familiar(), spec.platform, quiet=quiet)
    try:
        result = client.post_json("/containers/create", params, spec.body)
    except APIError as e:
        if e.status != 404 or named is None or pull != "missing":
            raise
        if not quiet:
            ctx.err(f"Unable to find image '{named.familiar()}' locally")
        from berth.cli.commands.pull import pull_image  # only when a pull is due

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
