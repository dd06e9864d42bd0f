"""argparse, made to speak like the docker CLI: its help layout, its error wording, its exit codes.

Only the parser for the verb being run is ever built (see :mod:`berth.cli.main`), so each verb
module describes its own flags with :meth:`Parser.flag` and its positional arity with
:meth:`Parser.positionals`. Flag errors exit 125 and arity errors exit 1, as docker's do.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from berth.cli.context import StatusError

__all__ = ["Parser", "append_list", "flag_error"]

PROG = "berth"


def flag_error(message: str, usage: str, verb: str) -> StatusError:
    """docker's answer to a bad flag: the message, the usage line, a pointer to --help."""
    target = f"{PROG} {verb}".strip()
    return StatusError(
        125, f"{message}\n\nUsage:  {usage}\n\nRun '{target} --help' for more information"
    )


class _FixedWidthFormatter(argparse.HelpFormatter):
    """argparse makes a formatter for every ``add_argument`` only to check its metavar, and
    each one asks the terminal for its size: a verb with a hundred flags paid that a hundred
    times. The width is read once."""

    width: int | None = None

    def __init__(self, prog: str) -> None:
        if _FixedWidthFormatter.width is None:
            import shutil

            _FixedWidthFormatter.width = shutil.get_terminal_size().columns - 2
        super().__init__(prog, width=_FixedWidthFormatter.width)


class Parser(argparse.ArgumentParser):
    """One verb's parser. ``--help`` only: ``-h`` is a flag of its own for ``run``/``create``."""

    def __init__(self, verb: str, usage: str, description: str,
                 aliases: Sequence[str] = ()) -> None:
        super().__init__(prog=f"{PROG} {verb}", add_help=False, allow_abbrev=False,
                         formatter_class=_FixedWidthFormatter)
        self.verb = verb
        self.command = verb  # the canonical verb; dispatch sets it for management forms
        self.usage_line = usage
        self.summary = description
        self.aliases = list(aliases)
        self._min_args = 0
        self._max_args: int | None = 0
        self._docs: list[tuple[str, str]] = []
        self._bools: dict[str, str] = {}  # a boolean flag's names -> its long name
        self._first = "image"
        self.add_argument("--help", action="store_true", dest="help", help="Print usage")
        self.intermixed = True

    # -- declaring ------------------------------------------------------------------------------

    def flag(self, *names: str, kind: str = "", help: str = "", **kwargs: Any) -> None:
        """Add a flag and remember how docker's help shows it (``-e, --env list``)."""
        action = self.add_argument(*names, help=help, **kwargs)
        if kwargs.get("action") == "store_true":
            # pflag accepts --flag=false; argparse only --flag. A hidden twin stores False.
            longs = [n for n in names if n.startswith("--")]
            for name in longs:
                self._bools[name] = name
                self.add_argument("--no-" + name[2:], dest=action.dest,
                                  action="store_false", help=argparse.SUPPRESS)
            for name in names:
                if not name.startswith("--") and longs:
                    self._bools[name] = longs[0]
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
        self.add_argument("args", nargs="*")

    def command_positionals(self, minimum: int = 1, first: str = "image") -> None:
        """``IMAGE [COMMAND] [ARG...]``: flags stop at the image (``run busybox ls -l``).

        The first positional lands in ``args.<first>``, the rest in ``args.command``.
        """
        self._min_args, self._max_args = minimum, None
        self.intermixed = False
        self._first = first
        self.add_argument(first, nargs="?")
        self.add_argument("command", nargs=argparse.REMAINDER)

    # -- parsing --------------------------------------------------------------------------------

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        argv = self._rewrite_bools(argv)
        ns = self.parse_intermixed_args(argv) if self.intermixed else self.parse_args(argv)
        if ns.help:
            raise StatusError(0, None, stdout=self.format_help())
        if self.intermixed:
            count = len(ns.args)
        elif getattr(ns, self._first) is None:
            count = 0
        else:
            count = 1 + len(ns.command)
        self._check_arity(count)
        return ns

    def _takes_value(self, option: str) -> bool:
        action = self._option_string_actions.get(option)
        return action is not None and action.nargs != 0

    def _rewrite_bools(self, argv: Sequence[str]) -> list[str]:
        """``--rm=false`` → ``--no-rm``, up to where flags end (the image, for ``run``)."""
        out: list[str] = []
        expect_value = False
        for i, tok in enumerate(argv):
            if expect_value:
                expect_value = False
                if tok.startswith("-") and len(tok) > 1 and out:
                    # pflag takes the next word as the value even when it starts with "-"
                    # (``--health-timeout -1s``); argparse would read it as a flag.
                    prev = out.pop()
                    out.append(f"{prev}={tok}" if prev.startswith("--") else prev + tok)
                else:
                    out.append(tok)
                continue
            if tok == "--":
                out.extend(argv[i:])
                break
            name, eq, value = tok.partition("=")
            if eq and name in self._bools and (tok.startswith("--") or len(name) == 2):
                name = self._bools[name]
                lowered = value.lower()
                if lowered in ("1", "t", "true"):
                    out.append(name)
                elif lowered in ("0", "f", "false"):
                    out.append("--no-" + name[2:])
                else:
                    self.error(f'invalid argument "{value}" for "{name}" flag: '
                               f'strconv.ParseBool: parsing "{value}": invalid syntax')
                continue
            if tok.startswith("--"):
                if " " in name and name not in self._option_string_actions:
                    # argparse would take it for an argument; pflag for an unknown flag
                    raise flag_error(f"unknown flag: {name}", self.usage_line, self.verb)
                expect_value = not eq and self._takes_value(name)
            elif tok.startswith("-") and len(tok) > 1:
                for j in range(1, len(tok)):
                    if self._takes_value("-" + tok[j]):
                        expect_value = j == len(tok) - 1
                        break
            elif not self.intermixed:
                out.extend(argv[i:])
                break
            out.append(tok)
        return out

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
        raise flag_error(_docker_wording(message), self.usage_line, self.verb)

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


def _docker_wording(message: str) -> str:
    """Turn argparse's error messages into pflag's, which scripts and tests match on."""
    if message.startswith("invalid argument "):
        return message
    prefix = "unrecognized arguments: "
    if message.startswith(prefix):
        arg = message[len(prefix):].split(" ", 1)[0]
        if arg.startswith("--"):
            return f"unknown flag: {arg.split('=', 1)[0]}"
        if arg.startswith("-") and len(arg) > 1:
            return f"unknown shorthand flag: '{arg[1]}' in {arg}"
        return f"unexpected argument: {arg}"
    if message.startswith("argument ") and ": " in message:
        names, _, detail = message[len("argument "):].partition(": ")
        flag = ", ".join(names.split("/")[:2])
        if detail.startswith("expected one argument"):
            longest = names.split("/")[-1]
            return f"flag needs an argument: {longest}"
        if detail.startswith("invalid ") and " value: " in detail:
            value = detail.split(" value: ", 1)[1].strip("'")
            why = detail.split(" value")[0]
            if why == "invalid int":
                why = f'strconv.ParseInt: parsing "{value}": invalid syntax'
            return f'invalid argument "{value}" for "{flag}" flag: {why}'
        return f"{flag}: {detail}"
    return message


def append_list(parser: Parser, *names: str, help: str, dest: str | None = None) -> None:
    """A repeatable flag collecting values in order (docker's ``list`` kind)."""
    kwargs: dict[str, Any] = {"action": "append", "default": []}
    if dest:
        kwargs["dest"] = dest
    parser.flag(*names, kind="list", help=help, **kwargs)
