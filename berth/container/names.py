"""Random container names (``adjective_noun``) for containers created without ``--name``."""

from __future__ import annotations

import re
import secrets

from berth.errors import InvalidArgument

__all__ = ["random_name", "validate_name"]

_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious",
    "daring", "eager", "early", "fervent", "fluent", "frosty", "gentle", "golden", "happy",
    "hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "mellow", "merry", "nimble",
    "noble", "patient", "placid", "polite", "proud", "quick", "quiet", "rapid", "serene",
    "sharp", "silent", "sleepy", "smooth", "snappy", "solid", "steady", "stoic", "sunny",
    "swift", "tender", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous",
)
_NOUNS = (
    "anchor", "atoll", "barge", "beacon", "bollard", "breaker", "buoy", "cable", "canal",
    "capstan", "cargo", "cove", "crane", "current", "cutter", "delta", "dinghy", "dock",
    "estuary", "ferry", "fjord", "gantry", "harbor", "hawser", "hull", "inlet", "isle", "jetty",
    "keel", "lagoon", "lantern", "lighthouse", "lock", "mast", "mooring", "narrows", "pier",
    "pilot", "quay", "reef", "rudder", "sail", "schooner", "shoal", "skiff", "sound", "strait",
    "tide", "tug", "wharf",
)

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def random_name(retry: int = 0) -> str:
    """Two words, and a digit once names start to collide (as Docker does)."""
    name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
    if retry:
        name += str(secrets.randbelow(10))
    return name


def validate_name(name: str) -> str:
    """The name without its leading slash; refuses what Docker refuses."""
    if not _NAME.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
    return name.lstrip("/")
