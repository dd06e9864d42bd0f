"""Docker's humanised durations and sizes, tables, quoting and PORTS, against known outputs."""

from __future__ import annotations

import pytest

from berth.cli.commands.images import image_names
from berth.cli.commands.ps import container_row, format_ports
from berth.cli.render import (
    ellipsis,
    go_quote,
    human_duration,
    human_size,
    parse_timestamp,
    since,
    table,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "Less than a second"),
    (0.999, "Less than a second"),
    (1, "1 second"),
    (1.9, "1 second"),
    (2, "2 seconds"),
    (59, "59 seconds"),
    (60, "About a minute"),
    (119, "About a minute"),
    (120, "2 minutes"),
    (3599, "59 minutes"),
    (3600, "About an hour"),
    (5399, "About an hour"),
    (5400, "2 hours"),          # Go rounds the hour half away from zero
    (9000, "3 hours"),          # 2.5 h: banker's rounding would say 2
    (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"),
    (13 * 86400, "13 days"),
    (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"),
    (60 * 86400, "2 months"),
    (400 * 86400, "13 months"),
    (730 * 86400, "2 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"),
    (999, "999B"),
    (1000, "1kB"),
    (1024, "1.02kB"),
    (4261550, "4.26MB"),
    (999999, "1e+03kB"),        # as docker prints it: Go's %g switches to an exponent
    (1234567890, "1.23GB"),
    (5_000_000_000_000, "5TB"),
    (7_700_000, "7.7MB"),
])
def test_human_size_three_digits(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_size_four_digits() -> None:
    assert human_size(4261550, 4) == "4.262MB"


def test_table_uses_tabwriter_widths() -> None:
    out = table(("CONTAINER ID", "IMAGE", "NAMES"), [("abc", "busybox:latest", "x")])
    assert out == ("CONTAINER ID   IMAGE            NAMES\n"
                   "abc            busybox:latest   x\n")


def test_table_minimum_width_is_ten() -> None:
    out = table(("REPOSITORY", "TAG", "SIZE"), [("a", "b", "1B")])
    assert out.splitlines() == ["REPOSITORY   TAG       SIZE", "a            b         1B"]


def test_ellipsis_and_quote_match_docker_ps() -> None:
    assert go_quote(ellipsis("sleep 1000000000000000", 20)) == '"sleep 1000000000000…"'
    assert go_quote(ellipsis("short", 20)) == '"short"'
    assert go_quote('echo "hi" \\ there') == '"echo \\"hi\\" \\\\ there"'
    assert go_quote("a\nb\x01é") == '"a\\nb\\x01é"'
    assert ellipsis("abc", 1) == "a"
    assert ellipsis("abc", 0) == ""


def test_parse_timestamp() -> None:
    assert parse_timestamp(1700000000) == 1700000000.0
    assert parse_timestamp("2023-11-14T22:13:20Z") == 1700000000.0
    assert parse_timestamp("2023-11-14T22:13:20.123456789Z") == pytest.approx(1700000000.123457)
    assert parse_timestamp("2023-11-14T23:13:20+01:00") == 1700000000.0
    assert parse_timestamp("0001-01-01T00:00:00Z") is None
    assert parse_timestamp("") is None
    assert since(1700000000, 1700000003.5) == "3 seconds ago"


def test_ports_as_docker_28_prints_them() -> None:
    ports = [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 8081, "Type": "tcp"},
    ]
    # Captured from docker 28.2.2 against the same /containers/json answer.
    assert format_ports(ports) == ("443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, "
                                   "0.0.0.0:8081->81/tcp")


def test_ports_same_number_ranges_merge() -> None:
    ports = [{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"}
             for p in (8000, 8001, 8002, 9000)]
    ports += [{"PrivatePort": 53, "Type": "udp"}, {"PrivatePort": 54, "Type": "udp"}]
    assert format_ports(ports) == ("0.0.0.0:8000-8002->8000-8002/tcp, 53-54/udp, "
                                   "0.0.0.0:9000->9000/tcp")


def test_container_row_truncates_like_docker() -> None:
    c = {"Id": "c" * 64, "Names": ["/quirky_name", "/web/db"], "Image": "sha256:" + "b" * 64,
         "ImageID": "sha256:" + "b" * 64, "Command": 'echo "hi" \\ there', "Created": 100,
         "Ports": [], "Status": "Exited (0) 3 seconds ago"}
    assert container_row(c, True, 100 + 7200) == (
        "cccccccccccc", "bbbbbbbbbbbb", '"echo \\"hi\\" \\\\ there"', "2 hours ago",
        "Exited (0) 3 seconds ago", "", "quirky_name")
    row = container_row(c, False, 100 + 7200)
    assert row[0] == "c" * 64
    assert row[1] == "sha256:" + "b" * 64
    assert row[6] == "quirky_name,web/db"
    c["Image"] = "localhost:5000/app:1@sha256:" + "d" * 64
    assert container_row(c, True, 200)[1] == "localhost:5000/app:1"


def test_image_names_rows() -> None:
    assert image_names({"RepoTags": ["busybox:latest", "localhost:5000/busybox:v1"],
                        "RepoDigests": ["busybox@sha256:99"]}) == [
        ("busybox", "latest", "sha256:99"), ("localhost:5000/busybox", "v1", "<none>")]
    assert image_names({"RepoTags": None, "RepoDigests": ["alpine@sha256:88"]}) == [
        ("alpine", "<none>", "sha256:88")]
    assert image_names({"RepoTags": ["<none>:<none>"], "RepoDigests": []}) == [
        ("<none>", "<none>", "<none>")]


def test_progress_text() -> None:
    from berth.cli.progress import progress_text

    assert progress_text({"current": 1_200_000, "total": 4_300_000}) == "   1.2MB/4.3MB"
    assert progress_text({"current": 5, "total": 10}, width=120) == (
        "[=========================>                         ]       5B/10B")
    assert progress_text({"current": 300, "total": 0}) == "    300B"
    assert progress_text({"current": 3, "total": 4, "units": "layers"}) == "3/4 layers"
    assert progress_text({}) == ""


def test_display_messages_plain_and_terminal() -> None:
    import io

    from berth.cli.progress import display_messages

    messages = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
        {"stream": "Loaded image: busybox:latest\n"},
        {"aux": {"ID": "sha256:x"}},
    ]
    out = io.BytesIO()
    display_messages(messages, out, terminal=False)
    assert out.getvalue().decode() == ("latest: Pulling from library/busybox\n"
                                       "abc: Pull complete\n"
                                       "Loaded image: busybox:latest\n")
    out = io.BytesIO()
    display_messages(messages[:3], out, terminal=True)
    # Each layer keeps its line: move up to it, clear, redraw, move back down.
    assert out.getvalue().decode() == (
        "latest: Pulling from library/busybox\n"
        "\n\x1b[1A\x1b[2K\rabc: Downloading       5B/10B\r\x1b[1B"
        "\x1b[1A\x1b[2K\rabc: Pull complete \r\x1b[1B")


def test_display_messages_raises_stream_error() -> None:
    import io

    from berth.cli.progress import display_messages
    from berth.http.frames import JSONMessageError

    with pytest.raises(JSONMessageError, match="denied"):
        display_messages([{"errorDetail": {"message": "denied"}}], io.BytesIO())


def test_indent_json_as_go_does() -> None:
    from berth.cli.render import indent_json

    raw = '[{"a": [], "b":{ },"c":"x, y: {\\"q\\"}","d":[1,2],"\\u00e9":"<&>"}]'
    assert indent_json(raw) == (
        '[\n    {\n        "a": [],\n        "b": {},\n        "c": "x, y: {\\"q\\"}",\n'
        '        "d": [\n            1,\n            2\n        ],\n'
        '        "\\u00e9": "<&>"\n    }\n]')
    assert indent_json("[]") == "[]"


def test_bytes_size_is_go_units_binary() -> None:
    from berth.util.humanize import bytes_size

    assert [bytes_size(n) for n in (0, 1023, 1024, 1536, 8232669184, 1 << 30)] == [
        "0B", "1023B", "1KiB", "1.5KiB", "7.667GiB", "1GiB"]
