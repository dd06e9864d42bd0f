"""Tar streams for ``berth cp``: extracting what a container sends, writing what it receives.

Apart from :mod:`berth.cli.commands.cp` so that ``cp --help`` does not pay for ``tarfile``.
Extraction checks every entry before touching the disk for it (nothing outside the
destination, no write through a link); archives are written as Go's ``archive/tar`` ends them.
"""

from __future__ import annotations

import os
import tarfile

from berth.cli.context import StatusError

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from typing import IO


def rebase(name: str, old: str, new: str) -> str:
    """moby's ``RebaseArchiveEntries``: the first path element ``old`` becomes ``new``."""
    if old in ("", "/"):
        return name
    first, sep, rest = name.partition("/")
    if first != old:
        return name
    return new + sep + rest


class _NoChownTar(tarfile.TarFile):
    """Extraction as docker's CLI does it: no lchown (``NoLchown``), ownership is not ours."""

    def chown(self, tarinfo: tarfile.TarInfo, targetpath: str, numeric_owner: bool) -> None:
        return


def _safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``tar`` filter (no absolute names, nothing outside ``dest``), modes kept."""
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(mode=member.mode, deep=False)


def extract(stream: IO[bytes], dest_dir: str, old: str, new: str) -> None:
    """Extract a tar stream into ``dest_dir``, renaming ``old`` → ``new``."""
    with _NoChownTar.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            member.name = rebase(member.name, old, new)
            if member.islnk():
                member.linkname = rebase(member.linkname, old, new)
            try:  # checked before anything on disk is touched for it
                member = _safe(member, dest_dir)
            except tarfile.FilterError as e:
                raise StatusError(1, f"refusing to extract {member.name!r}: {e}") from None
            target = os.path.join(dest_dir, member.name)
            # NoOverwriteDirNonDir: never replace a directory by a file or a file by a directory.
            if os.path.lexists(target) and member.name.strip("/.") != "":
                is_dir = os.path.isdir(target) and not os.path.islink(target)
                if is_dir and not member.isdir():
                    raise StatusError(1, f"cannot overwrite directory \"{target}\" with "
                                         f"non-directory \"{member.name}\"")
                if member.isdir() and not is_dir:
                    raise StatusError(1, f"cannot overwrite non-directory \"{target}\" with "
                                         f"directory \"{member.name}\"")
                if not is_dir and not member.isdir():
                    os.unlink(target)
            try:
                tar.extract(member, dest_dir, set_attrs=True, filter=_safe)
            except tarfile.FilterError as e:
                raise StatusError(1, f"refusing to extract {member.name!r}: {e}") from None


class _GoTarWriter(tarfile.TarFile):
    """Ends an archive as Go's archive/tar does: two zero blocks, no padding to 10 KiB."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE * 2))
            self.offset += tarfile.BLOCKSIZE * 2
        finally:
            if not self._extfileobj:
                self.fileobj.close()


def write_tar(path: str, arcname: str, write: IO[bytes]) -> None:
    with _GoTarWriter.open(fileobj=write, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=arcname, recursive=True, filter=_whole_seconds)


def _whole_seconds(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Modification times to the second, as docker's archives carry them (no PAX record)."""
    info.mtime = int(info.mtime)
    return info
