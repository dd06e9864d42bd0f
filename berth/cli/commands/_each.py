"""docker's pattern for verbs over several objects: act on each, print the name on success,
collect the errors and report them all at the end with exit code 1."""

from __future__ import annotations

from berth.cli.context import Context
from berth.errors import BerthError
from berth.http.client import APIError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any


def error_text(error: BerthError) -> str:
    if isinstance(error, APIError):
        return f"Error response from daemon: {error.message}"
    return error.message


def for_each(ctx: Context, names: Iterable[str], action: Callable[[str], str | None],
             forgive: Callable[[BerthError], bool] = lambda e: False) -> int:
    """Run ``action`` per name; it returns the line to print (None: print the name itself).

    Errors ``forgive`` accepts are printed at once but do not fail the command.
    """
    errors: list[str] = []
    for name in names:
        try:
            line = action(name)
        except BerthError as e:
            if forgive(e):
                ctx.err(error_text(e))
            else:
                errors.append(error_text(e))
            continue
        ctx.out(name if line is None else line)
    if errors:
        ctx.err("\n".join(errors))
        return 1
    return 0


def post_each(ctx: Context, names: Iterable[str], action: str,
              params: Mapping[str, Any] | None = None) -> int:
    """``POST /containers/{name}/{action}`` for each name, as :func:`for_each` (stop, restart,
    kill, pause, unpause). No client timeout: the daemon answers once the action is done."""

    def post(name: str) -> None:
        ctx.client.request("POST", f"/containers/{name}/{action}", params=params).close()

    return for_each(ctx, names, post)
