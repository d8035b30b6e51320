"""Write-then-rename: outputs appear whole or not at all, and nothing is overwritten unasked.

Every output is written to a hidden ``.<name>.<random>.partial`` file in its folder and renamed
into place when complete. While it writes, the writer holds an advisory lock (``flock``) on its
partial file; the kernel drops that lock when the writer's process ends, however it ends. So a
partial file whose lock can be taken has no live writer (its run was killed: SIGKILL, out of
memory, power cut) and the next write of the same output removes it. A partial file that is
being written is never touched, however old it looks. Where locks are not available (Windows,
some network file systems) leftover partial files are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputExistsError, RecordingError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DISK_FULL_ERRNOS",
    "atomic_output",
    "check_target",
    "disk_full_error",
    "kind_of",
    "remove_stale_partials",
    "require_regular_file",
]

# ".<name>.<random>.partial"; tempfile's random part has no dot, so <name> is unambiguous
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.partial", re.DOTALL)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


#: errno values that mean "no room for this file": the disk is full, the quota is used up, or the
#: file outgrew the largest file the file system (FAT32: 4 GiB) or ``RLIMIT_FSIZE`` allows
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_DISK_FULL_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up (disk full for this user)",
    errno.EFBIG: "disk full for this file: it outgrew the largest file this file system or the "
    "process's file-size limit (ulimit -f) allows",
}


# numpy's ndarray.tofile (also inside tifffile) reports a short write without its errno
_SHORT_WRITE = re.compile(r"\b\d+ requested and \d+ written\b")


def _short_write_errno(partial: str | os.PathLike | None) -> int:
    """Why a write came up short: EFBIG when the file reached ``RLIMIT_FSIZE``, else ENOSPC."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = _size(partial)
        if soft != resource.RLIM_INFINITY and size is not None and size >= soft:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):  # pragma: no cover - Windows
        pass
    return errno.ENOSPC


def _disk_full_errno(
    exc: BaseException | None, partial: str | os.PathLike | None = None
) -> int | None:
    """The disk-full errno behind ``exc`` (itself, or its cause/context chain), else None.

    Libraries that wrap the OSError keep only its text: a text naming a disk-full errno (HDF5
    through h5py: ``errno = 28``), or numpy's ``"N requested and M written"`` (a short write,
    whose errno numpy drops), counts too.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc.errno
        if isinstance(exc, (OSError, RuntimeError)):  # h5py raises RuntimeError for HDF5's
            text = str(exc)
            for code in DISK_FULL_ERRNOS:
                if os.strerror(code) in text or f"errno = {code}," in text:
                    return code
            if getattr(exc, "errno", None) is None and _SHORT_WRITE.search(text):
                return _short_write_errno(partial)
        exc = exc.__cause__ or exc.__context__
    return None


def _is_ours(exc: BaseException) -> bool:
    """A disk-full RecordingError this module (or a writer through it) already made."""
    return isinstance(exc, RecordingError) and exc.errno in DISK_FULL_ERRNOS


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: Windows
        return None
    return int(st.f_bavail) * int(st.f_frsize)


def _size(path: str | os.PathLike | None) -> int | None:
    if path is None:
        return None
    try:
        path = Path(path)
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size
    except OSError:
        return None


def _amount(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n} bytes ({n / size:.1f} {unit})"
    return f"{n} bytes"


def disk_full_error(
    exc: BaseException,
    path: str | os.PathLike,
    *,
    partial: str | os.PathLike | None = None,
    needed_bytes: int | None = None,
    existing_kept: bool = False,
) -> RecordingError | None:
    """Our error for a write to ``path`` that ran out of room, or None if ``exc`` is not that.

    Parameters
    ----------
    exc : BaseException
        What the write raised. It counts as "out of room" when it (or the exception it was
        raised from) is an :class:`OSError` with errno ``ENOSPC``, ``EDQUOT`` or ``EFBIG``
        (:data:`DISK_FULL_ERRNOS`), or an OSError or RuntimeError (h5py's) that names one in
        its text, or numpy's short-write OSError (``"N requested and M written"``, no errno:
        EFBIG when the partial file reached ``RLIMIT_FSIZE``, else ENOSPC).
    path : str or os.PathLike
        The final output the user asked for (not the temporary file), named by the error.
    partial : str or os.PathLike, optional
        The temporary file (or folder) being written, to say how much had been written when the
        room ran out; read before it is removed.
    needed_bytes : int, optional
        The size the output would have had, when the writer knows it.
    existing_kept : bool
        An earlier output at ``path`` exists and is kept as it was (said in the message).

    Returns
    -------
    RecordingError or None
        A :class:`~napari_calcium.errors.RecordingError` naming ``path``, saying the disk is
        full (with the bytes needed, written and free where known) and what to do, with
        ``errno`` (and ``strerror``) set to the original errno, so ``except OSError`` code
        can test it; ``exc`` itself when it is already such an error; None when ``exc`` is not
        about room on the disk.
    """
    if _is_ours(exc):
        return exc  # type: ignore[return-value]
    code = _disk_full_errno(exc, partial)
    if code is None:
        return None
    final = Path(path)
    facts = []
    if needed_bytes is not None and needed_bytes > 0:
        facts.append(f"it needs about {_amount(int(needed_bytes))}")
    written = _size(partial)
    if written is not None:
        facts.append(f"{_amount(written)} had been written when it failed")
    free = _free_bytes(final.parent)
    if free is not None:
        facts.append(f"{_amount(free)} are free there now")
    kept = "; the existing file is unchanged" if existing_kept else ""
    problem = (
        f"cannot be written: {_DISK_FULL_WHY[code]} ({os.strerror(code)})"
        + (f"; {', '.join(facts)}" if facts else "")
        + f". Nothing was written (the partial file was removed){kept}: free some space or "
        "write to another disk"
    )
    err = RecordingError(final, problem)
    err.errno, err.strerror = code, os.strerror(code)
    return err


def kind_of(mode: int) -> str:
    """Name the kind of file a ``st_mode`` describes ("a folder", "a named pipe (FIFO)", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def require_regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Raise unless ``path`` is a regular file (or a link to one), before anything opens it.

    Opening a named pipe blocks until a writer appears, and a device can stream without end;
    loaders call this first so such a path gets a clear error instead of a hang.

    Parameters
    ----------
    path : str or os.PathLike
        The file a loader is about to open.
    what : str
        What the file should hold, for the message ("ROI file", "trace file", ...).

    Returns
    -------
    pathlib.Path
        ``path`` as a Path.

    Raises
    ------
    RecordingError
        ``path`` does not exist, cannot be examined, or is not a regular file.
    """
    final = Path(path)
    try:
        mode = final.stat().st_mode
    except FileNotFoundError as exc:
        raise RecordingError(final, f"no such {what}") from exc
    except OSError as exc:
        raise RecordingError(final, f"cannot open this {what} ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(mode):
        raise RecordingError(final, f"is {kind_of(mode)}, not a regular file; expected a {what}")
    return final


def check_target(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Raise unless a writer may put a regular file at ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    overwrite : bool
        Whether an existing regular file may be replaced.

    Raises
    ------
    RecordingError
        ``path`` is a folder, a device, a named pipe, a socket, or a symbolic link to one of
        them. Nothing but a regular file is ever replaced, not even with ``overwrite``.
    OutputExistsError
        ``path`` is a regular file (or a link to one) and ``overwrite`` is False.
    """
    final = Path(path)
    try:
        mode = final.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there (a dangling symbolic link is replaced, its target untouched)
    except OSError as exc:
        raise RecordingError(
            final, f"cannot check what is there ({exc.strerror or exc}); choose another output"
        ) from exc
    if not stat.S_ISREG(mode):
        kind = kind_of(mode)
        if final.is_symlink():
            kind = f"a symbolic link to {kind}"
        raise RecordingError(
            final,
            f"is {kind}, not a regular file; writers replace only regular files, even with "
            "overwrite=True: choose another output path",
        )
    if not overwrite:
        raise OutputExistsError(final)


def _lock(fd: int) -> bool | None:
    """Take an exclusive lock on ``fd`` without waiting: True, False (held elsewhere), None (no
    locks on this platform or file system)."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP, ...: no locks here
        return None
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    st = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino)


def remove_stale_partials(
    folder: str | os.PathLike, belongs: str | Callable[[str], bool]
) -> list[Path]:
    """Remove the partial files that killed runs left for some outputs in ``folder``.

    Parameters
    ----------
    folder : str or os.PathLike
        The outputs' folder.
    belongs : str or callable
        The output's file name, or a test ``belongs(name) -> bool`` on output file names.

    Returns
    -------
    list of pathlib.Path
        The partial files removed: ``.<name>.<random>.partial`` regular files of these outputs
        whose lock could be taken, i.e. that no live process is writing. Anything else (a
        partial being written, one on a file system without locks, one that cannot be opened)
        is left alone, silently.
    """
    wanted = (lambda name: name == belongs) if isinstance(belongs, str) else belongs
    removed: list[Path] = []
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:
        return removed
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for entry in entries:
        match = _PARTIAL.fullmatch(entry)
        if match is None or not wanted(match["name"]):
            continue
        path = Path(folder, entry)
        try:
            fd = os.open(path, flags)  # no link followed; a FIFO named like this does not block
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and _lock(fd) and _same_file(fd, path):
                path.unlink()
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _locked_partial(final: Path, needed_bytes: int | None = None) -> tuple[int, Path]:
    """Create ``.<name>.<random>.partial`` beside ``final``, open and locked for this writer."""
    folder = final.parent
    for _ in range(100):
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=folder)
        except OSError as exc:
            full = disk_full_error(
                exc, final, needed_bytes=needed_bytes, existing_kept=final.exists()
            )
            if full is not None:  # no room even for an empty file (no free inode, quota)
                raise full from exc
            raise RecordingError(folder, f"cannot write here ({exc.strerror})") from exc
        tmp = Path(tmp_name)
        # another writer's clean-up may have taken it in the instant before our lock: try again
        if _lock(fd) is not False and _same_file(fd, tmp):
            return fd, tmp
        os.close(fd)
    raise RecordingError(folder, "cannot create a temporary file here; try again")


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, overwrite: bool = False, needed_bytes: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    The temporary file lives in the same folder (so the final :func:`os.replace` is atomic on the
    same file system) and is removed if the block raises, so a failed or interrupted write never
    leaves a partial output or clobbers an existing one. The writer holds a lock on it until the
    end, and partial files of the same output left by killed runs (whose lock is free) are
    removed first (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        Final output file.
    overwrite : bool
        Replace an existing regular file at ``path``. Without it an existing file raises
        :class:`~napari_calcium.errors.OutputExistsError` before anything is written.
    needed_bytes : int, optional
        The size the output will have, where the writer knows it: said in the message if the
        disk fills up.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    RecordingError
        The folder does not exist or is not writable, or ``path`` is not a regular file (a
        folder, device, named pipe, socket or a link to one), with or without ``overwrite``.
        A write in the block (or the rename) that runs out of room (disk full, quota, file
        size limit) raises it too, naming ``path`` and saying the disk is full
        (:func:`disk_full_error`; its ``errno`` is the original one); the partial file is
        removed and an existing ``path`` is left as it was.
    """
    final = Path(path)
    check_target(final, overwrite=overwrite)
    folder = final.parent
    if not folder.is_dir():
        raise RecordingError(folder, "output folder does not exist; create it first")
    remove_stale_partials(folder, final.name)
    fd, tmp = _locked_partial(final, needed_bytes)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp
        check_target(final, overwrite=overwrite)  # something appeared while we were writing
        os.replace(tmp, final)
    except (OSError, RuntimeError) as exc:  # RecordingError too; h5py's RuntimeError
        full = disk_full_error(
            exc, final, partial=tmp, needed_bytes=needed_bytes, existing_kept=final.exists()
        )
        if full is None or full is exc:
            raise
        raise full from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(fd)  # releases the lock
