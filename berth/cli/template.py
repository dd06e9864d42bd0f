"""The part of Go's text/template that ``--format`` users write, over decoded JSON.

Supported: field paths (``{{.State.Status}}``, ``{{.}}``), string and number literals, pipes,
``{{if}}``/``{{else}}``/``{{with}}``/``{{range}}``…``{{end}}``, ``{{-``/``-}}`` trimming, and
docker's functions ``json``, ``index``, ``join``, ``split``, ``lower``, ``upper``, ``title``,
``len``, ``println``. Values print as Go's ``fmt.Print`` does (``map[a:1]``, ``[x y]``,
``<no value>`` for a missing key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["TemplateError", "go_print", "render_template"]


class TemplateError(Exception):
    """The template does not parse or cannot be applied to the object."""


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()

_ACTION_RE = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN_RE = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\|)|(\$?[A-Za-z0-9_.$-]+))')


def go_print(value: Any) -> str:
    """``fmt.Sprint`` of a JSON value."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    return value not in (None, MISSING, False, 0, "", [], {})


def _json(value: Any) -> str:
    return json.dumps(None if value is MISSING else value, separators=(",", ":"),
                      ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list):
            value = value[int(key)]
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "join": lambda items, sep: sep.join(go_print(i) for i in (items or [])),
    "split": lambda text, sep: str(text).split(sep),
    "lower": lambda text: str(text).lower(),
    "upper": lambda text: str(text).upper(),
    "title": lambda text: str(text).title(),
    "len": lambda value: len(value) if value not in (None, MISSING) else 0,
    "println": lambda *values: " ".join(go_print(v) for v in values) + "\n",
    "print": lambda *values: "".join(go_print(v) for v in values),
}


# -- parsing ------------------------------------------------------------------------------------

class _Node:
    pass


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Action(_Node):
    def __init__(self, pipeline: list[list[str]]) -> None:
        self.pipeline = pipeline


class _Block(_Node):
    def __init__(self, kind: str, pipeline: list[list[str]]) -> None:
        self.kind = kind
        self.pipeline = pipeline
        self.body: list[_Node] = []
        self.orelse: list[_Node] = []


def _tokenize(source: str) -> list[list[str]]:
    """A pipeline: commands split on ``|``, each a list of tokens."""
    commands: list[list[str]] = [[]]
    pos = 0
    source = source.strip()
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {source[pos:]!r} in command")
        pos = m.end()
        if m.group(3):
            commands.append([])
        else:
            commands[-1].append(m.group(1) or m.group(2) or m.group(4))
    if any(not c for c in commands):
        raise TemplateError("missing command in pipeline")
    return commands


def _open_block(stack: list[tuple[_Block, list[_Node], bool]], into: list[_Node], kind: str,
                cond: str, *, chained: bool) -> list[_Node]:
    """Start a block in ``into`` and push it; returns the list its body's nodes go to."""
    block = _Block(kind, _tokenize(cond))
    into.append(block)
    stack.append((block, into, chained))
    return block.body


def _parse(template: str) -> list[_Node]:
    root: list[_Node] = []
    # Open blocks, each with the list it belongs to; "chained" marks an ``else if`` block,
    # closed by the same ``{{end}}`` as the ``if`` it continues.
    stack: list[tuple[_Block, list[_Node], bool]] = []
    current = root
    pos = 0
    trim_next = False
    for m in _ACTION_RE.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            current.append(_Text(text))
        pos = m.end()
        trim_next = bool(m.group(3))
        body = m.group(2).strip()
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word):].strip()
        if word.startswith("/*"):
            continue
        if word in ("if", "range", "with"):
            current = _open_block(stack, current, word, rest, chained=False)
        elif word == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            current = stack[-1][0].orelse
            if rest.startswith(("if ", "with ")):
                kind, _, cond = rest.partition(" ")
                current = _open_block(stack, current, kind, cond, chained=True)
        elif word == "end":
            if not stack:
                raise TemplateError("unexpected {{end}}")
            while True:
                _, current, chained = stack.pop()
                if not chained:
                    break
        else:
            if not body:
                raise TemplateError("missing value for command")
            current.append(_Action(_tokenize(body)))
    text = template[pos:]
    if trim_next:
        text = text.lstrip()
    if text:
        current.append(_Text(text))
    if stack:
        raise TemplateError(f"unexpected EOF: unclosed {{{{{stack[-1][0].kind}}}}}")
    return root


# -- evaluation ---------------------------------------------------------------------------------

def _field(dot: Any, path: str, root: Any) -> Any:
    value = root if path.startswith("$") else dot
    for name in path.lstrip("$").split("."):
        if not name:
            continue
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        elif value is MISSING or value is None:
            return MISSING
        else:
            raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def _arg(token: str, dot: Any, root: Any) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token.startswith((".", "$")):
        return _field(dot, token, root)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token in ("true", "false"):
        return token == "true"
    if token == "nil":
        return None
    raise TemplateError(f'function "{token}" not defined')


def _pipeline(pipeline: list[list[str]], dot: Any, root: Any) -> Any:
    value: Any = MISSING
    for i, command in enumerate(pipeline):
        head, *rest = command
        if head in _FUNCS:
            args = [_arg(t, dot, root) for t in rest]
            if i > 0:
                args.append(value)
            try:
                value = _FUNCS[head](*args)
            except TemplateError:
                raise
            except Exception as e:  # noqa: BLE001 - a template error, not ours
                raise TemplateError(f"error calling {head}: {e}") from None
        else:
            if rest or i > 0:
                raise TemplateError(f"can't give argument to non-function {head}")
            value = _arg(head, dot, root)
    return value


def _execute(nodes: list[_Node], dot: Any, root: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Action):
            out.append(go_print(_pipeline(node.pipeline, dot, root)))
        elif isinstance(node, _Block):
            value = _pipeline(node.pipeline, dot, root)
            if node.kind == "if":
                _execute(node.body if _truthy(value) else node.orelse, dot, root, out)
            elif node.kind == "with":
                if _truthy(value):
                    _execute(node.body, value, root, out)
                else:
                    _execute(node.orelse, dot, root, out)
            else:
                if isinstance(value, dict):
                    items = [value[k] for k in sorted(value)]
                else:
                    items = value if isinstance(value, list) else []
                if not items:
                    _execute(node.orelse, dot, root, out)
                for item in items:
                    _execute(node.body, item, root, out)


def render_template(template: str, obj: Any) -> str:
    """Apply ``template`` to ``obj`` (decoded JSON)."""
    out: list[str] = []
    _execute(_parse(template), obj, obj, out)
    return "".join(out)
