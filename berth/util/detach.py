"""Detach keys (``ctrl-p,ctrl-q``): parsed as moby's ``term.ToBytes`` does and watched for in
typed input. The CLI watches its own terminal with them and the daemon a client's stdin (as
dockerd does for a TTY attach), so both read one definition.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DETACH_KEYS", "EscapeFilter", "detach_key_bytes"]

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q

_CTRL_EXTRA = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def detach_key_bytes(text: str) -> bytes:
    """``ctrl-p,ctrl-q`` → ``b"\\x10\\x11"`` (moby's ``term.ToBytes``); ValueError if invalid."""
    out = bytearray()
    for key in text.split(","):
        name = key.strip()
        if len(name) > 1 and name.lower().startswith("ctrl-"):
            rest = name[5:].lower()
            if len(rest) == 1 and "a" <= rest <= "z":
                out.append(ord(rest) - ord("a") + 1)
                continue
            if len(rest) == 1 and rest in _CTRL_EXTRA:
                out.append(_CTRL_EXTRA[rest])
                continue
            raise ValueError(f"Unknown character: '{name}'")
        if len(name) == 1:
            out.append(ord(name))
            continue
        raise ValueError(f"Unknown character: '{name}'")
    return bytes(out)


class EscapeFilter:
    """Watches typed input for the detach sequence; what precedes it is passed on.

    Keys that start the sequence are held back until the sequence either completes (detach:
    they are dropped) or breaks (they are released with the key that broke it).
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = 0  # how many keys of the sequence have been typed so far

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return (bytes to forward, whether the sequence completed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == self.keys[self._held]:
                self._held += 1
                if self._held == len(self.keys):
                    self._held = 0
                    return bytes(out), True
                continue
            if self._held:
                out += self.keys[:self._held]
                self._held = 0
                if byte == self.keys[0]:
                    self._held = 1
                    continue
            out.append(byte)
        return bytes(out), False
