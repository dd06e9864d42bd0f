"""``berth info``: what the daemon reports about itself, in ``docker info``'s layout."""

from __future__ import annotations

from berth.cli.context import Context
from berth.cli.parser import Parser
from berth.errors import BerthError
from berth.util.humanize import bytes_size

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS]"
ALIASES = ("system info", "info")


def configure(p: Parser) -> None:
    p.flag("-f", "--format", kind="string", help="Format output using a custom template")
    p.positionals(0, 0)


def server_lines(info: dict[str, Any]) -> list[str]:
    def add(label: str, key: str, indent: int = 1) -> None:
        value = info.get(key)
        if value in (None, ""):
            return
        if isinstance(value, bool):
            value = str(value).lower()
        lines.append(f"{' ' * indent}{label}: {value}")

    lines = ["Server:"]
    add("Containers", "Containers")
    add("Running", "ContainersRunning", 2)
    add("Paused", "ContainersPaused", 2)
    add("Stopped", "ContainersStopped", 2)
    add("Images", "Images")
    add("Server Version", "ServerVersion")
    add("Storage Driver", "Driver")
    for pair in info.get("DriverStatus") or []:
        if len(pair) == 2:
            lines.append(f"  {pair[0]}: {pair[1]}")
    add("Logging Driver", "LoggingDriver")
    add("Cgroup Driver", "CgroupDriver")
    add("Cgroup Version", "CgroupVersion")
    plugins = info.get("Plugins") or {}
    if plugins:
        lines.append(" Plugins:")
        for kind in ("Volume", "Network", "Log"):
            if plugins.get(kind):
                lines.append(f"  {kind}: {' '.join(plugins[kind])}")
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        lines.append(f" Runtimes: {' '.join(sorted(runtimes))}")
    add("Default Runtime", "DefaultRuntime")
    add("Init Binary", "InitBinary")
    security = info.get("SecurityOptions") or []
    if security:
        lines.append(" Security Options:")
        for opt in security:
            parts = dict(p.split("=", 1) for p in opt.split(",") if "=" in p)
            lines.append(f"  {parts.get('name', opt)}")
            for key, value in parts.items():
                if key != "name":
                    lines.append(f"   {key.capitalize()}: {value}")
    add("Kernel Version", "KernelVersion")
    add("Operating System", "OperatingSystem")
    add("OSType", "OSType")
    add("Architecture", "Architecture")
    add("CPUs", "NCPU")
    if info.get("MemTotal"):
        lines.append(f" Total Memory: {bytes_size(info['MemTotal'])}")
    add("Name", "Name")
    add("ID", "ID")
    add("Berth Root Dir", "DockerRootDir")
    add("Debug Mode", "Debug")
    add("Experimental", "ExperimentalBuild")
    registries = (info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    if registries:
        lines.append(" Insecure Registries:")
        lines.extend(f"  {r}" for r in registries)
    add("Live Restore Enabled", "LiveRestoreEnabled")
    for warning in info.get("Warnings") or []:
        lines.append("")
        lines.append(warning)
    return lines


def run(ctx: Context, args: Namespace) -> int:
    from berth import __version__

    try:
        info = ctx.client.get_json("/info")
    except BerthError as e:
        info = None
        error = e
    if args.format:
        from berth.cli.template import render_template

        if info is None:
            raise error
        ctx.out(render_template(args.format, info))
        return 0
    lines = ["Client:", f" Version:    {__version__}", " Context:    default",
             f" Debug Mode: {str(ctx.debug).lower()}", ""]
    if info is None:
        lines += ["Server:"]
        ctx.out("\n".join(lines))
        from berth.cli.commands._each import error_text

        ctx.err(error_text(error))
        return 1
    ctx.out("\n".join(lines + server_lines(info)))
    return 0
