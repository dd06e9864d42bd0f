"""Each verb's flags, read as the docker CLI reads them: its help layout, its error wording,
its exit codes.

Only the parser for the verb being run is ever built (see :mod:`berth.cli.main`), so each verb
module describes its own flags with :meth:`Parser.flag` and its positional arity with
:meth:`Parser.positionals`. Flag errors exit 125 and arity errors exit 1, as docker's do. The
flags themselves are read by :mod:`berth.util.flags` (pflag's rules; argparse and building its
parser of a hundred flags cost ``run`` several milliseconds).
"""

from __future__ import annotations

from berth.cli.context import StatusError
from berth.util.flags import FlagError, FlagSet

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

    from berth.util.flags import Namespace

__all__ = ["Parser", "append_list", "flag_error"]

PROG = "berth"


def flag_error(message: str, usage: str, verb: str) -> StatusError:
    """docker's answer to a bad flag: the message, the usage line, a pointer to --help."""
    target = f"{PROG} {verb}".strip()
    return StatusError(
        125, f"{message}\n\nUsage:  {usage}\n\nRun '{target} --help' for more information"
    )


class Parser:
    """One verb's parser. ``--help`` only: ``-h`` is a flag of its own for ``run``/``create``."""

    def __init__(self, verb: str, usage: str, description: str,
                 aliases: Sequence[str] = ()) -> None:
        self.verb = verb
        self.command = verb  # the canonical verb; dispatch sets it for management forms
        self.usage_line = usage
        self.summary = description
        self.aliases = list(aliases)
        self.flags = FlagSet()
        self._min_args = 0
        self._max_args: int | None = 0
        self._docs: list[tuple[str, str]] = []
        self._first = "image"
        self._positional = ""  # "" none declared, "args" a list, "command" IMAGE [COMMAND...]
        self.flags.add("--help", action="store_true", dest="help", help="Print usage")
        self.intermixed = True

    # -- declaring ------------------------------------------------------------------------------

    def flag(self, *names: str, kind: str = "", help: str = "", **kwargs: Any) -> None:
        """Add a flag and remember how docker's help shows it (``-e, --env list``)."""
        self.flags.add(*names, help=help, **kwargs)
        shorts = [n for n in names if not n.startswith("--")]
        longs = [n for n in names if n.startswith("--")]
        left = f"{shorts[0]}, " if shorts else "    "
        left += longs[0] if longs else ""
        if kind:
            left += f" {kind}"
        default = kwargs.get("default")
        if kind in ("int", "string") and default not in (None, "", 0, []):
            help += f' (default {default!r})'.replace("'", '"') if kind == "string" else \
                f" (default {default})"
        self._docs.append((left, help))

    def positionals(self, minimum: int, maximum: int | None) -> None:
        """Positional arguments, gathered into ``args.args``; arity errors as docker words them."""
        self._min_args, self._max_args = minimum, maximum
        self._positional = "args"

    def command_positionals(self, minimum: int = 1, first: str = "image") -> None:
        """``IMAGE [COMMAND] [ARG...]``: flags stop at the image (``run busybox ls -l``).

        The first positional lands in ``args.<first>``, the rest in ``args.command``.
        """
        self._min_args, self._max_args = minimum, None
        self.intermixed = False
        self._first = first
        self._positional = "command"

    # -- parsing --------------------------------------------------------------------------------

    def parse(self, argv: Sequence[str]) -> Namespace:
        try:
            ns, rest = self.flags.parse(argv, interspersed=self.intermixed)
        except FlagError as e:
            raise flag_error(e.message, self.usage_line, self.verb) from None
        if ns.help:
            raise StatusError(0, None, stdout=self.format_help())
        if self._positional == "command":
            setattr(ns, self._first, rest[0] if rest else None)
            ns.command = rest[1:]
        elif self._positional == "args":
            ns.args = rest
        elif rest:
            raise flag_error(f"unexpected argument: {rest[0]}", self.usage_line, self.verb)
        self._check_arity(len(rest))
        return ns

    def _check_arity(self, count: int) -> None:
        lo, hi = self._min_args, self._max_args
        name = f"'{PROG} {self.verb}'"
        if lo <= count and (hi is None or count <= hi):
            return
        see = "Run"
        if hi == 0:
            msg = f"{name} accepts no arguments"
        elif lo == hi:
            msg = f"{name} requires {lo} argument{'s' if lo != 1 else ''}"
        elif hi is None or count < lo:
            msg = f"{name} requires at least {lo} argument{'s' if lo != 1 else ''}"
            see = "See"
        else:
            msg = f"{name} requires at most {hi} argument{'s' if hi != 1 else ''}"
        raise StatusError(
            1,
            f"{PROG}: {msg}\n\nUsage:  {self.usage_line}\n\n"
            f"{see} '{PROG} {self.verb} --help' for more information",
        )

    def error(self, message: str) -> NoReturn:
        raise flag_error(message, self.usage_line, self.verb)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise StatusError(status, message)

    # -- help -----------------------------------------------------------------------------------

    def format_help(self) -> str:
        lines = [f"Usage:  {self.usage_line}", "", self.summary]
        if self.aliases:
            lines += ["", "Aliases:", "  " + ", ".join(self.aliases)]
        if self._docs:
            width = max(len(left) for left, _ in self._docs) + 3
            lines += ["", "Options:"]
            for left, text in sorted(self._docs, key=lambda d: d[0].lstrip(" -").split(",")[-1]
                                     .strip().lstrip("-")):
                lines.append(f"  {left.ljust(width)}{text}".rstrip())
        return "\n".join(lines) + "\n"

    def format_usage(self) -> str:
        return f"Usage:  {self.usage_line}\n"


def append_list(parser: Parser, *names: str, help: str, dest: str | None = None) -> None:
    """A repeatable flag collecting values in order (docker's ``list`` kind)."""
    kwargs: dict[str, Any] = {"action": "append", "default": []}
    if dest:
        kwargs["dest"] = dest
    parser.flag(*names, kind="list", help=help, **kwargs)
