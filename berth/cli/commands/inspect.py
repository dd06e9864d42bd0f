"""``berth inspect``: objects as the daemon describes them, a JSON array or a template each."""

from __future__ import annotations

import json

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.errors import BerthError
from berth.http.client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import Any

    from berth.util.flags import Namespace

USAGE = "[OPTIONS] NAME|ID [NAME|ID...]"
_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service",
          "task", "volume")
# Looked up in this order when no --type is given, as docker does.
_ENDPOINTS = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}


def configure(p: Parser) -> None:
    p.flag("-f", "--format", kind="string", help="Format output using a custom template")
    p.flag("-s", "--size", action="store_true",
           help="Display total file sizes if the type is container")
    p.flag("--type", kind="string", help="Only inspect objects of the given type")
    p.positionals(1, None)


def _get(ctx: Context, kind: str, name: str, size: bool) -> tuple[str, Any]:
    """The object as the daemon sent it (text, kept for printing) and decoded."""
    params = {"size": True} if kind == "container" and size else None
    with ctx.client.request("GET", _ENDPOINTS[kind].format(name), params=params) as response:
        raw = response.read().decode("utf-8", "replace")
    return raw, json.loads(raw)


def print_found(ctx: Context, found: list[tuple[str, Any]], fmt: str | None) -> None:
    """A template per object, or the JSON array docker prints (the daemon's text re-indented)."""
    if fmt and fmt != "json":
        from berth.cli.template import TemplateError, render_template

        for _, obj in found:
            try:
                ctx.out(render_template(fmt, obj))
            except TemplateError as e:
                raise StatusError(1, f"template parsing error: {e}") from None
        return
    from berth.cli.render import indent_json

    ctx.out(indent_json("[" + ",".join(raw for raw, _ in found) + "]"))


def run(ctx: Context, args: Namespace) -> int:
    kind = args.type or {"container inspect": "container",
                         "image inspect": "image"}.get(ctx.verb)
    if kind and kind not in _TYPES:
        raise StatusError(1, f'unknown type: "{kind}": must be one of '
                             + ", ".join(f'"{t}"' for t in _TYPES))
    if kind and kind not in _ENDPOINTS:
        raise StatusError(1, f"Error response from daemon: inspecting {kind}s is not supported")
    return inspect_each(ctx, kind, args.args, args.format, args.size)


def inspect_each(ctx: Context, kind: str | None, names: list[str], fmt: str | None,
                 size: bool = False) -> int:
    """Print what the daemon has for each name (of ``kind``, else the first type that has it),
    then the errors, exiting 1 if there were any (``inspect`` and ``volume inspect``)."""
    found: list[tuple[str, Any]] = []
    errors: list[str] = []
    for name in names:
        if kind:
            try:
                found.append(_get(ctx, kind, name, size))
            except APIError as e:
                errors.append(f"Error response from daemon: {e.message}")
            continue
        for candidate in _ENDPOINTS:
            try:
                found.append(_get(ctx, candidate, name, size))
                break
            except APIError as e:
                if e.status not in (404, 400):
                    errors.append(f"Error response from daemon: {e.message}")
                    break
            except BerthError:
                raise
        else:
            errors.append(f"Error: No such object: {name}")
    print_found(ctx, found, fmt)
    if errors:
        ctx.err("\n".join(errors))
        return 1
    return 0
