"""Replacing a config file safely: atomic, owner and mode kept, symlinks followed, backups.

A Synapse in Docker runs as uid 991 and must still read its config after
``sudo maildoctor fix``, so the new file gets the original's owner, group and mode; a
symlink is followed to the file it points at (the link stays a link); the original is
copied to a backup name never used before (``.bak``, then ``.bak.1``...); and nothing is
written when the file changed since it was read. Used by ``fix`` and ``init --merge``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from maildoctor.errors import ConfigLoadError


class FixError(ConfigLoadError):
    """A fix cannot be applied safely (the file changed, or the result is not what was meant)."""


def file_digest(path: str) -> str | None:
    """SHA-256 of the file's bytes, or None when there is no such file. Only a regular file
    of a config's size is read (a device like /dev/zero would never end)."""
    import stat

    from maildoctor.config.load import MAX_FILE_BYTES

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise FixError("not a regular file", file=path)
        if st.st_size > MAX_FILE_BYTES:
            raise FixError(f"file is {st.st_size:,} bytes; maildoctor reads config files up "
                           f"to {MAX_FILE_BYTES:,} bytes", file=path)
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FixError(f"cannot read: {exc.strerror or exc}", file=path) from exc


def _free_backup_name(base: str) -> tuple[str, int]:
    """Create (exclusively) the first of ``base.bak``, ``base.bak.1``, ... that does not exist."""
    for n in range(10_000):
        name = base + ".bak" + (f".{n}" if n else "")
        try:
            return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
    raise FixError("too many backups already; remove old ones", file=base + ".bak")


def _take_owner_and_mode(fd: int, st: os.stat_result, path: str) -> None:
    """Give an open file the original's owner, group and mode. Only root (or the owner, for
    a group it is in) may do so; rather than silently hand the file to someone else,
    nothing is written when it is not allowed."""
    now = os.fstat(fd)
    if (now.st_uid, now.st_gid) != (st.st_uid, st.st_gid):
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError as exc:
            raise FixError(
                f"cannot keep the file's owner {st.st_uid}:{st.st_gid} (only root or that "
                "user can); nothing written", file=path) from exc
    os.fchmod(fd, st.st_mode & 0o7777)  # after chown, which may clear set-id bits


def _backup(real: str, name: str, st: os.stat_result) -> str:
    """Copy the original byte for byte to a backup name not used yet, same owner and mode."""
    bak, fd = _free_backup_name(name)
    try:
        with os.fdopen(fd, "wb") as out, open(real, "rb") as src:
            out.write(src.read())
            out.flush()
            _take_owner_and_mode(out.fileno(), st, bak)
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(bak)
        raise
    return bak


def replace_file(path: str, text: str, digest: str | None, *, backup: bool = True) -> str | None:
    """Replace the file at ``path`` with ``text`` atomically; return the backup's path.

    ``digest`` is :func:`file_digest` of the file when it was read (None: it did not exist);
    a file that changed since is left alone. A symlink is followed: the file it points at
    is replaced (and backed up next to it), the link stays a link. The new file gets the
    original's owner, group and mode; a new file is created private (0600: it may hold a
    password). OS errors become :class:`FixError` here, with nothing left behind.
    """
    try:
        return _replace(path, text, digest, backup)
    except OSError as exc:
        raise FixError(f"cannot write: {exc.strerror or exc}; nothing written",
                       file=path) from exc


def _replace(path: str, text: str, digest: str | None, backup: bool) -> str | None:
    real = os.path.realpath(path)
    if file_digest(real) != digest:
        raise FixError("the file changed since it was read; nothing written, run again",
                       file=path)
    try:
        st: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        st = None
    shown = path if real == os.path.abspath(path) else real
    try:
        fd, tmp = tempfile.mkstemp(prefix=".maildoctor-", dir=os.path.dirname(real))
    except PermissionError as exc:
        raise FixError(f"cannot create a file in {os.path.dirname(real)} (the new version is "
                       "written next to the file, then renamed over it); nothing written",
                       file=path) from exc
    bak = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if st is None:
                os.fchmod(fh.fileno(), 0o600)
            else:
                _take_owner_and_mode(fh.fileno(), st, path)
            os.fsync(fh.fileno())
        if file_digest(real) != digest:
            raise FixError("the file changed while maildoctor was writing; nothing written",
                           file=path)
        if backup and st is not None:
            bak = _backup(real, shown, st)
        os.replace(tmp, real)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return bak
