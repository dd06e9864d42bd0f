"""Drawing a JSON message stream (pull, load, import) as the docker CLI does.

On a terminal, each layer keeps its own line and is redrawn in place with ANSI cursor moves;
elsewhere progress bars are dropped and only status lines are printed, so logs stay readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from berth.cli.render import human_size
from berth.http.frames import check_message

__all__ = ["display_messages", "progress_text"]


def progress_text(progress: dict[str, Any] | None, width: int = 80) -> str:
    """A progress bar and counters: ``[====>   ]  1.2MB/4.3MB`` (bar only on wide terminals)."""
    if not progress:
        return ""
    current = int(progress.get("current") or 0)
    total = int(progress.get("total") or 0)
    units = progress.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current, 4):>8}" if not units else f"{current} {units}"
    percent = min(int(current / total * 100) // 2, 50)
    bar = f"[{'=' * percent}>{' ' * max(50 - percent, 0)}] " if width > 110 else ""
    if progress.get("hidecounts"):
        numbers = ""
    elif not units:
        numbers = f"{human_size(current, 4):>8}"
        if current <= total:
            numbers += f"/{human_size(total, 4)}"
    else:
        numbers = f"{current}/{total} {units}" if current <= total else f"{current} {units}"
    return bar + numbers


def _line(msg: dict[str, Any], terminal: bool, width: int) -> str | None:
    """One message as text, or None when it is a progress update that only a terminal shows."""
    progress = msg.get("progressDetail")
    has_progress = progress is not None
    bar = progress_text(progress, width) if has_progress else ""
    if not terminal and bar:
        return None
    text = ""
    if msg.get("id"):
        text += f"{msg['id']}: "
    if msg.get("from"):
        text += f"(from {msg['from']}) "
    status = msg.get("status") or ""
    if has_progress and terminal:
        return text + f"{status} {bar}"
    if msg.get("progress"):
        return text + f"{status} {msg['progress']}"
    if msg.get("stream"):
        return text + msg["stream"]
    return text + status + "\n"


def display_messages(messages: Iterable[Any], out: IO[bytes], terminal: bool = False,
                     width: int = 80) -> None:
    """Render messages as they come; an error message is raised (JSONMessageError)."""
    ids: dict[str, int] = {}

    def write(text: str) -> None:
        out.write(text.encode("utf-8", "replace"))
        out.flush()

    for msg in messages:
        check_message(msg)
        if not isinstance(msg, dict) or "aux" in msg:
            continue
        ident = msg.get("id") or ""
        diff = 0
        is_progress = bool(ident) and (msg.get("progressDetail") is not None
                                       or bool(msg.get("progress")))
        if is_progress:
            if ident not in ids:
                ids[ident] = len(ids)
                if terminal:
                    write("\n")
            diff = len(ids) - ids[ident]
            if terminal:
                write(f"\x1b[{diff}A")
        else:
            ids = {}
        text = _line(msg, terminal, width)
        if text is not None:
            if terminal and is_progress:
                write("\x1b[2K\r" + text.rstrip("\n") + "\r")
            else:
                write(text)
        if ident and terminal and diff:
            write(f"\x1b[{diff}B")
