"""``/_ping``, ``/version``, ``/info``: what clients ask before anything else."""

from __future__ import annotations

import asyncio
import os
import platform
from typing import Any

from berth import API_VERSION, MIN_API_VERSION, __version__
from berth.http.server import Request, Response, Router, json_response
from berth.util import rfc3339_nano

__all__ = ["register"]


def _ping_headers() -> list[tuple[str, str]]:
    return [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"),
            ("Builder-Version", "1")]


def version_info() -> dict[str, Any]:
    uname = platform.uname()
    details = {"ApiVersion": API_VERSION, "Arch": _arch(), "BuildTime": "",
               "Experimental": "false", "GitCommit": "", "GoVersion": "n/a",
               "KernelVersion": uname.release, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
    return {
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details},
                       {"Name": "berth-runtime", "Version": __version__,
                        "Details": {"GitCommit": ""}}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "n/a",
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": uname.release,
        "BuildTime": "",
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def register(router: Router, services: Any) -> None:
    info_config = services.info

    async def ping(request: Request) -> Response:
        body = b"" if request.method == "HEAD" else b"OK"
        return Response(status=200, body=body, content_type="text/plain; charset=utf-8",
                        headers=_ping_headers())

    async def version(request: Request) -> Response:
        return json_response(version_info())

    async def info(request: Request) -> Response:
        counts = await asyncio.to_thread(services.containers.counts)
        image_count = len(await asyncio.to_thread(services.images.list, False, None))
        uname = platform.uname()
        body = {
            "ID": info_config.get("id", ""),
            **counts,
            "Images": image_count,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "DockerRootDir": info_config["data_root"],
            "Plugins": {"Volume": ["local"], "Network": ["null"], "Authorization": None,
                        "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True, "OomKillDisable": True,
            "IPv4Forwarding": True, "BridgeNfIptables": False, "BridgeNfIp6tables": False,
            "Debug": info_config.get("debug", False),
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": len(asyncio.all_tasks()),
            "SystemTime": rfc3339_nano(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "1",
            "NEventsListener": 0,
            "KernelVersion": uname.release,
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": uname.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                               "AllowNondistributableArtifactsHostnames": None,
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                               "IndexConfigs": {}, "Mirrors": None},
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": uname.node,
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {"berth-runtime": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth-runtime",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": info_config.get("live_restore", False),
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": [],
            "Warnings": None,
        }
        return json_response(body)

    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
