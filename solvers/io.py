"""Files written so that nothing is lost: atomic replacement and an advisory lock.

``atomic_write(path, data)`` writes to a fresh temporary file in the target's folder, flushes and fsyncs it,
then ``os.replace``-s it over ``path``. A reader sees the old file or the new one, never half of one; a write
that fails (disk full, ``ulimit -f``, permission, a crash) leaves the previous file untouched and no
temporary behind; concurrent writers never share a temporary name.

``locked(path)`` holds an exclusive ``fcntl.flock`` on ``path + ".lock"`` for read–merge–write cycles (the
SOR tuner file), so several processes sharing one state file keep every update. The lock is advisory: it
orders writers that use it, nothing else.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Union

try:  # POSIX; on other systems the lock is a no-op and atomic_write still never tears a file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

Writer = Callable[[object], object]


class FileWriteError(OSError):
    """A file could not be written; the message names the path and the reason in one line."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes, Writer], *,
                 binary: Optional[bool] = None) -> None:
    """Replace ``path`` by ``data`` atomically.

    ``data``: text, bytes, or a function ``write(fh)`` that writes to an open file (``torch.save``,
    ``csv.writer``, ``fig.savefig(fh, format="png")``); ``binary`` picks the file mode for a function
    (default binary). Raises :class:`FileWriteError` naming ``path`` when anything fails.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileWriteError(path, f"folder {folder} does not exist")
    if os.path.isdir(path):
        raise FileWriteError(path, "is a folder")
    if binary is None:
        binary = not isinstance(data, str)
    # a unique name (pid + random) opened with O_EXCL: concurrent writers never share a temporary, and the
    # mode 0o666 goes through the umask like any new file
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise FileWriteError(path, _reason(exc)) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.exists(path):  # keep the permissions of the file being replaced
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise FileWriteError(path, _reason(exc)) from None
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def locked(path: Union[str, os.PathLike]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path + ".lock"`` (created if missing; never deleted, since
    deleting a lock file races with a process about to lock it)."""
    lock_path = os.fspath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise FileWriteError(lock_path, _reason(exc)) from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
