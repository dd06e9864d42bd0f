"""Command-line flags the way Go's pflag reads them, without argparse.

argparse (with gettext and locale) and building a parser of a hundred flags cost a command
several milliseconds before it does anything; this is the subset the command lines here use:

* long flags ``--name value`` and ``--name=value``; boolean ones also ``--name=false``;
* short flags ``-e value``, ``-evalue``, ``-e=value`` and clusters of booleans ``-it``
  (a value flag may end a cluster: ``-ite K=V``);
* a value flag takes the next word whatever it looks like (``--stop-timeout -1``);
* ``--`` ends the flags; with ``interspersed=False`` so does the first positional (``run IMAGE
  CMD -l``: ``-l`` belongs to the command);
* actions: store (the last one wins), store_true, append; ``type=int``; ``choices``.

Errors are :class:`FlagError` worded as pflag's, which scripts match on.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of a command's start
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Flag", "FlagError", "FlagSet", "Namespace"]

_TRUE = ("1", "t", "true")
_FALSE = ("0", "f", "false")


class FlagError(Exception):
    """A command line the flags cannot read; ``message`` is pflag's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Namespace:
    """Parsed values as attributes (what ``argparse.Namespace`` offers)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Namespace({inner})"


class Flag:
    """One flag: its names (``-e``, ``--env``), where its value goes and how it is read."""

    __slots__ = ("names", "dest", "action", "default", "choices", "type", "help")

    def __init__(self, names: tuple[str, ...], dest: str, action: str, default: object,
                 choices: Sequence[str] | None, type: type | None, help: str) -> None:
        self.names = names
        self.dest = dest
        self.action = action
        self.default = default
        self.choices = choices
        self.type = type
        self.help = help

    @property
    def takes_value(self) -> bool:
        return self.action != "store_true"

    @property
    def label(self) -> str:
        """How pflag names the flag in a message about its value: ``-t, --timeout``."""
        return ", ".join(self.names[:2])

    @property
    def long_name(self) -> str:
        longs = [n for n in self.names if n.startswith("--")]
        return longs[0] if longs else self.names[0]


class FlagSet:
    """Flags by name; :meth:`parse` fills a :class:`Namespace` and returns the positionals."""

    def __init__(self) -> None:
        self.flags: list[Flag] = []
        self._by_name: dict[str, Flag] = {}

    def add(self, *names: str, dest: str | None = None, action: str = "store",
            default: object = None, choices: Sequence[str] | None = None,
            type: type | None = None, help: str = "") -> Flag:
        if action not in ("store", "store_true", "append"):
            raise ValueError(f"unsupported flag action {action!r}")
        if dest is None:
            longs = [n for n in names if n.startswith("--")]
            dest = (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
        if action == "store_true" and default is None:
            default = False
        flag = Flag(names, dest, action, default, choices, type, help)
        self.flags.append(flag)
        for name in names:
            self._by_name[name] = flag
        return flag

    def get(self, name: str) -> Flag | None:
        return self._by_name.get(name)

    def defaults(self, ns: Namespace | None = None) -> Namespace:
        """Every flag's default, set on ``ns`` (a new namespace when None)."""
        if ns is None:
            ns = Namespace()
        for flag in self.flags:
            value = flag.default
            if isinstance(value, list):
                value = list(value)  # appends must not grow the declared default
            setattr(ns, flag.dest, value)
        return ns

    def parse(self, argv: Sequence[str], ns: Namespace | None = None, *,
              interspersed: bool = True) -> tuple[Namespace, list[str]]:
        """Read ``argv`` into ``ns`` (a new namespace when None) over the flags' defaults;
        return it and the positionals."""
        ns = self.defaults(ns)
        positionals: list[str] = []
        i, count = 0, len(argv)
        while i < count:
            arg = argv[i]
            i += 1
            if arg == "--":
                positionals.extend(argv[i:])
                break
            if not arg.startswith("-") or arg == "-":
                if not interspersed:
                    positionals.append(arg)
                    positionals.extend(argv[i:])
                    break
                positionals.append(arg)
                continue
            if arg.startswith("--"):
                name, eq, value = arg.partition("=")
                flag = self._by_name.get(name)
                if flag is None:
                    raise FlagError(f"unknown flag: {name}")
                if not flag.takes_value:
                    self._set_bool(ns, flag, value if eq else None)
                    continue
                if not eq:
                    if i >= count:
                        raise FlagError(f"flag needs an argument: {flag.names[-1]}")
                    value = argv[i]
                    i += 1
                self._store(ns, flag, value)
                continue
            i = self._parse_shorts(ns, arg, argv, i)
        return ns, positionals

    def _parse_shorts(self, ns: Namespace, arg: str, argv: Sequence[str], i: int) -> int:
        """A cluster of short flags (``-it``, ``-eK=V``, ``-d=false``); returns the next index."""
        j = 1
        while j < len(arg):
            flag = self._by_name.get("-" + arg[j])
            if flag is None:
                raise FlagError(f"unknown shorthand flag: '{arg[j]}' in {arg}")
            rest = arg[j + 1:]
            if not flag.takes_value:
                if rest.startswith("="):
                    self._set_bool(ns, flag, rest[1:])
                    return i
                self._set_bool(ns, flag, None)
                j += 1
                continue
            if rest:
                value = rest[1:] if rest.startswith("=") else rest
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise FlagError(f"flag needs an argument: {flag.names[-1]}")
            self._store(ns, flag, value)
            return i
        return i

    @staticmethod
    def _set_bool(ns: Namespace, flag: Flag, value: str | None) -> None:
        if value is None or value.lower() in _TRUE:
            setattr(ns, flag.dest, True)
        elif value.lower() in _FALSE:
            setattr(ns, flag.dest, False)
        else:
            raise FlagError(f'invalid argument "{value}" for "{flag.long_name}" flag: '
                            f'strconv.ParseBool: parsing "{value}": invalid syntax')

    @staticmethod
    def _store(ns: Namespace, flag: Flag, text: str) -> None:
        value: object = text
        if flag.type is not None:
            try:
                value = flag.type(text)
            except (TypeError, ValueError):
                why = (f'strconv.ParseInt: parsing "{text}": invalid syntax' if flag.type is int
                       else f"invalid {flag.type.__name__} value")
                raise FlagError(f'invalid argument "{text}" for "{flag.label}" flag: '
                                f"{why}") from None
        if flag.choices is not None and value not in flag.choices:
            allowed = ", ".join(f'"{c}"' for c in flag.choices)
            raise FlagError(f'invalid argument "{text}" for "{flag.label}" flag: '
                            f"must be one of {allowed}")
        if flag.action == "append":
            current = getattr(ns, flag.dest, None)
            if current is None:
                current = []
                setattr(ns, flag.dest, current)
            current.append(value)
        else:
            setattr(ns, flag.dest, value)
