"""``berth cp``: copy files between a container and the local filesystem, docker's way.

Out of a container: ``GET /containers/{id}/archive?path=`` returns a tar of the path and its
stat (base64 JSON in ``X-Docker-Container-Path-Stat``); the tar is extracted here with its
entries renamed so the copy lands where docker would put it. Into a container: the local path
is stat'ed, the container path too (``HEAD``), and a tar whose entries already carry the final
name is ``PUT`` to the directory it must be extracted in. ``-`` streams the tar itself.

docker's destination rules (moby's ``archive.PrepareArchiveCopy``):

* destination is an existing directory: the source goes inside it;
* destination exists as a file: a file replaces it, a directory is refused;
* destination does not exist: it is created with the source's content under its name, unless
  it ends in ``/`` (or ``/.``) and the source is a file: "no such directory".
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import threading

from berth.cli.context import Context, StatusError
from berth.cli.parser import Parser
from berth.http.client import APIError, Client

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

    from berth.util.flags import Namespace

USAGE = ("[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
         "\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
ALIASES = ("container cp", "cp")

_MODE_DIR = 1 << 31  # Go's os.FileMode bits, as the stat header carries them
_MODE_SYMLINK = 1 << 27
_MODE_IRREGULAR = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 23) | (1 << 21) | (1 << 19)


def configure(p: Parser) -> None:
    p.flag("-a", "--archive", action="store_true",
           help="Archive mode (copy all uid/gid information)")
    p.flag("-L", "--follow-link", dest="follow_link", action="store_true",
           help="Always follow symbol link in SRC_PATH")
    p.flag("-q", "--quiet", action="store_true",
           help="Suppress progress output during copy. Progress output is automatically "
                "suppressed if no terminal is attached")
    p.positionals(2, 2)


class PathStat:
    """A container path's stat, as the archive endpoints report it."""

    def __init__(self, name: str, size: int, mode: int, link_target: str) -> None:
        self.name, self.size, self.mode, self.link_target = name, size, mode, link_target

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & _MODE_DIR)

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode & _MODE_SYMLINK)


def decode_stat(header: str | None) -> PathStat | None:
    """The ``X-Docker-Container-Path-Stat`` header: base64 of a JSON object."""
    if not header:
        return None
    try:
        data: dict[str, Any] = json.loads(base64.b64decode(header))
    except ValueError:
        return None
    return PathStat(str(data.get("name") or ""), int(data.get("size") or 0),
                    int(data.get("mode") or 0), str(data.get("linkTarget") or ""))


def split_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` → (container, path); a local path → ("", path).

    An absolute path is local even with a colon in it; so is one starting with ``.``.
    """
    if arg.startswith(("/", ".")):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep:
        return "", arg
    return container, path


def split_dir_entry(path: str) -> tuple[str, str]:
    """moby's ``SplitPathDirEntry``: ``/a/b/.`` keeps its ``.``, trailing slashes go."""
    cleaned = posixpath.normpath(path) if path else "."
    if path.endswith("/.") or path == ".":
        cleaned = cleaned.rstrip("/") + "/." if cleaned != "/" else "/."
    return posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned)


def _asserts_dir(path: str) -> bool:
    return path.endswith("/") or path.endswith("/.") or path == "."


def stat_path(client: Client, container: str, path: str) -> PathStat:
    with client.request("HEAD", f"/containers/{container}/archive",
                        params={"path": path}) as response:
        stat = decode_stat(response.headers.get("x-docker-container-path-stat"))
    if stat is None:
        raise StatusError(1, "unable to decode container path stat header")
    return stat


def run(ctx: Context, args: Namespace) -> int:
    src, dst = args.args
    src_container, src_path = split_arg(src)
    dst_container, dst_path = split_arg(dst)
    if src_container and dst_container:
        raise StatusError(1, "copying between containers is not supported")
    if not src_container and not dst_container:
        raise StatusError(1, "must specify at least one container source")
    if not src_path:
        raise StatusError(1, "source can not be empty")
    if not dst_path:
        raise StatusError(1, "destination can not be empty")
    if src_container:
        return copy_from(ctx, args, src_container, src_path, dst_path)
    return copy_to(ctx, args, src_path, dst_container, dst_path)


# -- out of a container -----------------------------------------------------------------------


def _local_destination(path: str) -> tuple[bool, bool, str]:
    """(exists, is_dir, path) for a local destination, following symlinks as docker does."""
    if os.path.lexists(path):
        resolved = os.path.realpath(path) if os.path.islink(path) else path
        if os.path.exists(resolved):
            return True, os.path.isdir(resolved), path
        return False, False, resolved
    parent = os.path.dirname(os.path.normpath(path)) or "."
    if not os.path.isdir(parent):
        raise StatusError(1, f"lstat {parent}: no such file or directory" if not
                          os.path.lexists(parent) else f"{parent}: not a directory")
    return False, False, path


def _landing(dst_path: str, exists: bool, is_dir: bool, src_is_dir: bool,
             name: str) -> tuple[str, str]:
    """docker's rule, both ways, for where a copy lands: (the folder it goes into, the name it
    takes there); ``name`` is the source's when the destination is an existing folder."""
    if exists and is_dir:
        return dst_path, name
    if exists and src_is_dir:
        raise StatusError(1, "cannot copy directory")
    if not exists and not src_is_dir and _asserts_dir(dst_path):
        raise StatusError(1, "no such directory")
    return split_dir_entry(dst_path)


def _stat_or_none(client: Client, container: str, path: str) -> PathStat | None:
    """The path's stat, or None when the daemon refuses it (docker goes on without one)."""
    try:
        return stat_path(client, container, path)
    except APIError:
        return None


def _link_target(stat: PathStat, path: str) -> str:
    """Where the symlink at ``path`` points, a relative target taken from the link's folder."""
    target = stat.link_target
    if target.startswith("/"):
        return target
    return posixpath.join(split_dir_entry(path)[0], target)


def copy_from(ctx: Context, args: Namespace, container: str, src_path: str,
              dst_path: str) -> int:
    from berth.cli.commands import _tar

    client = ctx.client
    rebase_name = ""
    if args.follow_link:
        stat = _stat_or_none(client, container, src_path)
        if stat is not None and stat.is_symlink:
            target = _link_target(stat, src_path)
            if posixpath.basename(target) != posixpath.basename(src_path.rstrip("/")):
                rebase_name = posixpath.basename(src_path.rstrip("/"))
            src_path = target
    with client.request("GET", f"/containers/{container}/archive",
                        params={"path": src_path}) as response:
        if dst_path == "-":
            for chunk in response.iter_chunks():
                ctx.stdout.write(chunk)
            ctx.stdout.flush()
            return 0
        stat = decode_stat(response.headers.get("x-docker-container-path-stat"))
        src_is_dir = bool(stat and stat.is_dir)
        exists, is_dir, dst_path = _local_destination(dst_path)
        src_base = split_dir_entry(src_path)[1]
        into, new = _landing(dst_path, exists, is_dir, src_is_dir, rebase_name or src_base)
        progress = _Progress(ctx, args.quiet)
        _tar.extract(response.fileobj(), into, src_base, new)
        progress.done(response.bytes_read, dst_path)
    return 0


# -- into a container -------------------------------------------------------------------------


def _resolve_source(path: str, follow: bool) -> tuple[str, str]:
    """moby's ``ResolveHostSourcePath``: (path to read, name the copy takes if renamed)."""
    if follow:
        resolved = os.path.realpath(path)
        if path.endswith("/.") and not resolved.endswith("/."):
            resolved += "/."
        elif path.endswith("/") and not resolved.endswith("/"):
            resolved += "/"
    else:
        head, base = os.path.split(path)
        resolved = os.path.join(os.path.realpath(head) if head else "", base)
    rebase = ""
    if posixpath.basename(path.rstrip("/")) != posixpath.basename(resolved.rstrip("/")):
        rebase = posixpath.basename(path.rstrip("/"))
    return resolved, rebase


def copy_to(ctx: Context, args: Namespace, src_path: str, container: str,
            dst_path: str) -> int:
    from berth.cli.commands import _tar

    client = ctx.client
    target_path = dst_path
    stat = _stat_or_none(client, container, dst_path)
    if stat is not None and stat.is_symlink:
        target_path = _link_target(stat, dst_path)
        stat = _stat_or_none(client, container, target_path)
    if stat is not None and not stat.is_dir and stat.mode & _MODE_IRREGULAR:
        raise StatusError(1, f'destination "{container}:{dst_path}" must be a directory or a '
                             "regular file")
    exists, is_dir = stat is not None, bool(stat and stat.is_dir)
    params: dict[str, Any] = {"noOverwriteDirNonDir": True,
                              "copyUIDGID": True if args.archive else None}
    if src_path == "-":
        if not is_dir:
            raise StatusError(1, f'destination "{container}:{dst_path}" must be a directory')
        params["path"] = target_path
        client.request("PUT", f"/containers/{container}/archive", params=params,
                       body=ctx.stdin, headers={"Content-Type": "application/x-tar"}).close()
        return 0

    resolved, rebase = _resolve_source(src_path, args.follow_link)
    try:
        os.lstat(resolved.rstrip("/") or resolved)
    except OSError as e:
        raise StatusError(1, f"lstat {resolved}: {(e.strerror or str(e)).lower()}") from None
    src_is_dir = os.path.isdir(resolved)
    src_dir, src_base = split_dir_entry(resolved)
    into, arcname = _landing(target_path, exists, is_dir, src_is_dir, rebase or src_base)
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            _tar.write_tar(os.path.join(src_dir, src_base), arcname, writer)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            failure.append(e)
        finally:
            writer.close()

    thread = threading.Thread(target=produce, name="tar", daemon=True)
    progress = _Progress(ctx, args.quiet)
    thread.start()
    params["path"] = into
    sent = _Counted(reader)
    try:
        client.request("PUT", f"/containers/{container}/archive", params=params, body=sent,
                       headers={"Content-Type": "application/x-tar"}).close()
    finally:
        reader.close()
        thread.join()
    if failure:
        raise failure[0]
    progress.done(sent.count, f"{container}:{dst_path}")
    return 0


class _Counted:
    """An iterable of a file's chunks that counts them (the tar bytes sent)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        while data := self._f.read(64 * 1024):
            self.count += len(data)
            yield data


class _Progress:
    """docker's copy report on a terminal: "Preparing to copy...", then the bytes copied."""

    def __init__(self, ctx: Context, quiet: bool) -> None:
        self._ctx = ctx
        self._on = not quiet and ctx.is_tty(ctx.stderr)
        if self._on:
            ctx.err("\x1b7Preparing to copy...", end="")

    def done(self, size: int, where: str) -> None:
        if self._on:
            from berth.cli.render import human_size

            self._ctx.err(f"\x1b8\x1b[2KSuccessfully copied {human_size(size)} to {where}")
