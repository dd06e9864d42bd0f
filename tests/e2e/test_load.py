"""Load: 500 concurrent mixed API requests, and no leak over 1,000 container lifecycles."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.daemon_fixture import Berthd

pytestmark = [pytest.mark.root, pytest.mark.slow]

API = "/v1.44"


def _lifecycle(berthd: Berthd, index: int, statuses: list[tuple[str, int]]) -> None:
    """create, start, inspect, logs, remove: five requests for one container."""
    status, body, _ = berthd.request("POST", f"{API}/containers/create",
                                     {"Image": "busybox", "Cmd": ["echo", f"hello{index}"],
                                      "Labels": {"load": "1"}}, timeout=120)
    statuses.append(("create", status))
    if status != 201:
        return
    import json

    cid = json.loads(body)["Id"]
    for name, method, path, query in (
            ("start", "POST", f"{API}/containers/{cid}/start", None),
            ("inspect", "GET", f"{API}/containers/{cid}/json", None),
            ("logs", "GET", f"{API}/containers/{cid}/logs", {"stdout": 1, "stderr": 1}),
            ("rm", "DELETE", f"{API}/containers/{cid}", {"force": 1})):
        status, reply, _ = berthd.request(method, path, query=query, timeout=120)
        statuses.append((name, status) if status < 300 else (f"{name}: {reply!r}", status))


def test_500_concurrent_requests(berthd: Berthd) -> None:
    statuses: list[tuple[str, int]] = []
    with ThreadPoolExecutor(100) as pool:
        list(pool.map(lambda i: _lifecycle(berthd, i, statuses), range(100)))
    bad = [s for s in statuses if not 200 <= s[1] < 300]
    log = berthd.logs()
    at = log.find("internal error")
    assert len(statuses) == 500 and not bad, (bad[:10], log[at:at + 3000] if at >= 0 else "")
    assert berthd.json("GET", f"{API}/containers/json", query={"all": 1}) == []
    failures = [line for line in berthd.logs().splitlines()
                if " ERROR " in line or "Traceback" in line]
    assert not failures, failures[:10]


def _usage(pid: int) -> tuple[int, int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    threads = int(fields["Threads"].strip())
    rss_kb = int(fields["VmRSS"].split()[0])
    return fds, threads, rss_kb


def _run_wait_rm(berthd: Berthd, index: int) -> int:
    status, body, _ = berthd.request("POST", f"{API}/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201, body
    import json

    cid = json.loads(body)["Id"]
    status, body, _ = berthd.request("POST", f"{API}/containers/{cid}/start")
    assert status == 204, (body, berthd.logs()[-3000:])
    status, body, _ = berthd.request("POST", f"{API}/containers/{cid}/wait")
    assert status == 200, body
    assert berthd.request("DELETE", f"{API}/containers/{cid}")[0] == 204
    return index


def test_1000_lifecycles_leave_no_leak(berthd: Berthd) -> None:
    assert berthd.proc is not None
    pid = berthd.proc.pid
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: _run_wait_rm(berthd, i), range(100)))  # warm-up
        before = _usage(pid)
        list(pool.map(lambda i: _run_wait_rm(berthd, i), range(1000)))
    after = _usage(pid)
    fds, threads, rss = before
    assert after[0] <= fds * 1.1 + 2, (before, after)
    assert after[1] <= threads * 1.1 + 1, (before, after)
    assert after[2] <= rss * 1.1, (before, after)
    print(f"berthd before/after 1000 lifecycles: fds {fds}/{after[0]}, threads "
          f"{threads}/{after[1]}, RSS {rss}/{after[2]} kB")
