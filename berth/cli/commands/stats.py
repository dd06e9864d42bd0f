"""``berth stats``: containers' resource usage, one-shot or as a live view redrawn in place.

Each container's ``GET /containers/{id}/stats`` stream is read by a thread that keeps the
latest sample; the view is drawn every half second the way docker's CLI draws it: cursor home,
every line followed by erase-to-end-of-line, erase below. The numbers are computed as the
docker CLI computes them (``calculateCPUPercentUnix``, memory without inactive file pages, ...).
"""

from __future__ import annotations

import contextlib
import threading
import time

from berth.cli import render
from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.errors import BerthError
from berth.http.client import Client
from berth.util.humanize import bytes_size

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] [CONTAINER...]"
ALIASES = ("container stats", "stats")
DEFAULT_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                  "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
           "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def configure(p: Parser) -> None:
    p.flag("-a", "--all", action="store_true",
           help="Show all containers (default shows just running)")
    p.flag("--format", kind="string", help="Format output using a custom template")
    p.flag("--no-stream", dest="no_stream", action="store_true",
           help="Disable streaming stats and only pull the first result")
    p.flag("--no-trunc", dest="no_trunc", action="store_true", help="Do not truncate output")
    p.positionals(0, None)


# -- the numbers ------------------------------------------------------------------------------

def cpu_percent(stats: dict[str, Any]) -> float:
    """CPU use since the previous sample, as a percentage of one CPU (docker's formula)."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = float((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - \
        float((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    system_delta = float(cpu.get("system_cpu_usage") or 0) - \
        float(pre.get("system_cpu_usage") or 0)
    online = float(cpu.get("online_cpus") or 0)
    if online == 0:
        online = float(len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []))
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(stats: dict[str, Any]) -> float:
    """Usage without the page cache's inactive files (cgroup v1 and v2 names)."""
    mem = stats.get("memory_stats") or {}
    usage = int(mem.get("usage") or 0)
    detail = mem.get("stats") or {}
    if "total_inactive_file" in detail and detail["total_inactive_file"] < usage:
        return float(usage - detail["total_inactive_file"])
    inactive = int(detail.get("inactive_file") or 0)
    if inactive < usage:
        return float(usage - inactive)
    return float(usage)


def block_io(stats: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op") or "")[:1].lower()
        if op == "r":
            read += int(entry.get("value") or 0)
        elif op == "w":
            write += int(entry.get("value") or 0)
    return read, write


def network_io(stats: dict[str, Any]) -> tuple[int, int]:
    rx = tx = 0
    for net in (stats.get("networks") or {}).values():
        rx += int(net.get("rx_bytes") or 0)
        tx += int(net.get("tx_bytes") or 0)
    return rx, tx


def entry(name: str, stats: dict[str, Any] | None, trunc: bool) -> dict[str, str]:
    """One row as the template sees it; ``--`` everywhere while no sample has come."""
    ident = str((stats or {}).get("id") or name)
    row = {"Container": name, "ID": ident[:12] if trunc else ident,
           "Name": str((stats or {}).get("name") or "--").lstrip("/")}
    if not stats or not stats.get("read") or str(stats.get("read")).startswith("0001-"):
        row.update(CPUPerc="--", MemUsage="-- / --", MemPerc="--", NetIO="--", BlockIO="--",
                   PIDs="--")
        if stats:
            row["Name"] = str(stats.get("name") or "--").lstrip("/")
        return row
    mem = memory_usage(stats)
    limit = float((stats.get("memory_stats") or {}).get("limit") or 0)
    rx, tx = network_io(stats)
    read, write = block_io(stats)
    row.update(
        CPUPerc=f"{cpu_percent(stats):.2f}%",
        MemUsage=f"{bytes_size(mem)} / {bytes_size(limit)}",
        MemPerc=f"{(mem / limit * 100.0) if limit else 0.0:.2f}%",
        NetIO=f"{render.human_size(rx)} / {render.human_size(tx)}",
        BlockIO=f"{render.human_size(read)} / {render.human_size(write)}",
        PIDs=str(int((stats.get("pids_stats") or {}).get("current") or 0)),
    )
    return row


# -- collection -------------------------------------------------------------------------------

class _Watcher:
    """The latest sample of one container's stats stream, kept by a thread."""

    def __init__(self, client: Client, name: str) -> None:
        self.name = name
        self.stats: dict[str, Any] | None = None
        self.error: str | None = None
        self.done = False
        self.first = threading.Event()
        self._client = client
        self._thread = threading.Thread(target=self._run, name=f"stats-{name}", daemon=True)

    def start(self) -> _Watcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from berth.http.frames import iter_json_messages

        try:
            with self._client.request("GET", f"/containers/{self.name}/stats",
                                      params={"stream": True}) as response:
                for message in iter_json_messages(response.iter_chunks(), check=False):
                    self.stats = message
                    self.first.set()
        except (BerthError, OSError) as e:
            self.error = _error_text(e)
        finally:
            self.done = True
            self.first.set()


def _error_text(error: BaseException) -> str:
    from berth.http.client import APIError

    if isinstance(error, APIError):
        return f"Error response from daemon: {error.message}"
    return str(error)


def _running(client: Client, all_: bool) -> list[str]:
    containers = client.get_json("/containers/json", {"all": all_ or None}) or []
    return [str(c["Id"]) for c in containers]


def run(ctx: Context, args: Namespace) -> int:
    client = ctx.client
    trunc = not args.no_trunc
    fmt = args.format
    names = list(args.args)
    if args.no_stream:
        return _one_shot(ctx, names or _running(client, args.all), fmt, trunc,
                         explicit=bool(names))
    watchers: dict[str, _Watcher] = {}
    lock = threading.Lock()
    if names:
        watchers.update({n: _Watcher(client, n).start() for n in names})
        for w in watchers.values():
            w.first.wait(5)
        errors = [w.error for w in watchers.values() if w.error]
        if errors:
            raise StatusError(1, "\n".join(errors))
    else:
        # As docker: follow container events first, then take the list, so none slips by.
        threading.Thread(target=_follow_events, args=(client, watchers, lock, args.all),
                         name="events", daemon=True).start()
        for ident in _running(client, args.all):
            with lock:
                if ident not in watchers:
                    watchers[ident] = _Watcher(client, ident).start()
    while True:
        with lock:
            current = list(watchers.items())
        rows = [entry(n, w.stats, trunc) for n, w in current
                if not (w.done and not names and w.error)]
        text = render.format_items(fmt, rows, HEADERS, DEFAULT_FORMAT)
        # docker's frame: cursor home, each line (and the empty one after the last) ending in
        # " ESC[K" to wipe what a longer previous frame left, then erase below.
        frame = "\x1b[H" + "".join(f"{line} \x1b[K\n" for line in text.split("\n")) + "\x1b[J"
        ctx.stdout.write(frame.encode())
        ctx.stdout.flush()
        if names and all(w.done for _, w in current):
            return 0
        with contextlib.suppress(InterruptedError):
            time.sleep(0.5)


def _follow_events(client: Client, watchers: dict[str, _Watcher], lock: threading.Lock,
                   all_: bool) -> None:
    """Add containers as they start (or, with ``-a``, are created); drop them as they die."""
    from berth.cli.commands.ps import encode_filters
    from berth.http.frames import iter_json_messages

    params = {"filters": encode_filters({"type": ["container"]})}
    try:
        with client.request("GET", "/events", params=params) as response:
            for event in iter_json_messages(response.iter_chunks(), check=False):
                action = str(event.get("Action") or event.get("status") or "")
                ident = str((event.get("Actor") or {}).get("ID") or event.get("id") or "")
                with lock:
                    if action == "start" or (action == "create" and all_):
                        if ident and ident not in watchers:
                            watchers[ident] = _Watcher(client, ident).start()
                    elif action == "destroy" or (action == "die" and not all_):
                        watchers.pop(ident, None)
    except (BerthError, OSError):
        return


def _one_shot(ctx: Context, names: list[str], fmt: str | None, trunc: bool,
              explicit: bool) -> int:
    client = ctx.client
    rows: list[dict[str, str]] = []
    errors: list[str] = []
    results: dict[str, dict[str, Any] | BaseException] = {}

    def fetch(name: str) -> None:
        try:
            results[name] = client.get_json(f"/containers/{name}/stats", {"stream": False})
        except (BerthError, OSError) as e:
            results[name] = e

    threads = [threading.Thread(target=fetch, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in names:
        result = results.get(name)
        if isinstance(result, BaseException):
            if explicit:
                errors.append(_error_text(result))
            continue
        rows.append(entry(name, result, trunc))
    if errors:
        raise StatusError(1, "\n".join(errors))
    ctx.out(render.format_items(fmt, rows, HEADERS, DEFAULT_FORMAT), end="")
    return 0

