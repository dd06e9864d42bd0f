"""``berth update``: change a container's resources or restart policy while it runs."""

from __future__ import annotations

from berth.cli import options
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser, flag_error
from berth.errors import BerthError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] CONTAINER [CONTAINER...]"
ALIASES = ("container update", "update")

# flag dest -> (UpdateConfig field, parser)
_FIELDS = (
    ("blkio_weight", "BlkioWeight"), ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
    ("cpu_rt_period", "CpuRealtimePeriod"), ("cpu_rt_runtime", "CpuRealtimeRuntime"),
    ("cpu_shares", "CpuShares"), ("cpus", "NanoCpus"), ("cpuset_cpus", "CpusetCpus"),
    ("cpuset_mems", "CpusetMems"), ("memory", "Memory"),
    ("memory_reservation", "MemoryReservation"), ("memory_swap", "MemorySwap"),
    ("pids_limit", "PidsLimit"), ("restart", "RestartPolicy"),
)


def configure(p: Parser) -> None:
    p.flag("--blkio-weight", dest="blkio_weight", kind="uint16",
           help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
    p.flag("--cpu-period", dest="cpu_period", kind="int",
           help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.flag("--cpu-quota", dest="cpu_quota", kind="int",
           help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.flag("--cpu-rt-period", dest="cpu_rt_period", kind="int",
           help="Limit the CPU real-time period in microseconds")
    p.flag("--cpu-rt-runtime", dest="cpu_rt_runtime", kind="int",
           help="Limit the CPU real-time runtime in microseconds")
    p.flag("-c", "--cpu-shares", dest="cpu_shares", kind="int",
           help="CPU shares (relative weight)")
    p.flag("--cpus", kind="decimal", help="Number of CPUs")
    p.flag("--cpuset-cpus", dest="cpuset_cpus", kind="string",
           help="CPUs in which to allow execution (0-3, 0,1)")
    p.flag("--cpuset-mems", dest="cpuset_mems", kind="string",
           help="MEMs in which to allow execution (0-3, 0,1)")
    p.flag("-m", "--memory", kind="bytes", help="Memory limit")
    p.flag("--memory-reservation", dest="memory_reservation", kind="bytes",
           help="Memory soft limit")
    p.flag("--memory-swap", dest="memory_swap", kind="bytes",
           help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    p.flag("--pids-limit", dest="pids_limit", kind="int",
           help="Tune container pids limit (set -1 for unlimited)")
    p.flag("--restart", kind="string", help="Restart policy to apply when a container exits")
    p.positionals(1, None)


def build_update(args: Namespace) -> dict[str, Any]:
    """The ``UpdateConfig`` body: docker's shape, zero meaning "leave as is"."""
    given = {dest for dest, _ in _FIELDS if getattr(args, dest) is not None}
    if not given:
        raise StatusError(1, "you must provide one or more flags when using this command")
    values = options.parse_resource_flags(args)
    body: dict[str, Any] = {
        "BlkioWeight": values.get("BlkioWeight", 0),
        "CpusetCpus": args.cpuset_cpus or "", "CpusetMems": args.cpuset_mems or "",
        "CpuShares": values.get("CpuShares", 0), "Memory": values.get("Memory", 0),
        "MemoryReservation": values.get("MemoryReservation", 0),
        "MemorySwap": values.get("MemorySwap", 0), "KernelMemory": 0,
        "CpuPeriod": values.get("CpuPeriod", 0), "CpuQuota": values.get("CpuQuota", 0),
        "CpuRealtimePeriod": values.get("CpuRealtimePeriod", 0),
        "CpuRealtimeRuntime": values.get("CpuRealtimeRuntime", 0),
        "NanoCpus": values.get("NanoCpus", 0),
        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }
    if values.get("PidsLimit"):
        body["PidsLimit"] = values["PidsLimit"]
    if args.restart:
        body["RestartPolicy"] = options.restart_policy(args.restart)
    return body


def run(ctx: Context, args: Namespace) -> int:
    try:
        body = build_update(args)
    except options.OptionError as e:
        if e.flag:
            raise flag_error(e.message, f"berth {ctx.verb} {USAGE}", ctx.verb) from None
        raise StatusError(1, e.message) from None
    errors: list[str] = []
    warnings: list[str] = []
    for name in args.args:
        try:
            result = ctx.client.post_json(f"/containers/{name}/update", json=body) or {}
        except BerthError as e:
            from berth.cli.commands._each import error_text

            errors.append(error_text(e))
            continue
        ctx.out(name)
        warnings += result.get("Warnings") or []
    if warnings:
        ctx.out("\n".join(warnings))
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0
