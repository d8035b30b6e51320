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

__all__ = ["atomic_output", "check_target", "remove_stale_partials"]

# ".<name>.<random>.partial"; tempfile's random part has no dot, so <name> is unambiguous
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.partial", re.DOTALL)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


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
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
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


def _locked_partial(final: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.partial`` beside ``final``, open and locked for this writer."""
    folder = final.parent
    for _ in range(100):
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=folder)
        except OSError as exc:
            raise RecordingError(folder, f"cannot write here ({exc.strerror})") from exc
        tmp = Path(tmp_name)
        # another writer's clean-up may have taken it in the instant before our lock: try again
        if _lock(fd) is not False and _same_file(fd, tmp):
            return fd, tmp
        os.close(fd)
    raise RecordingError(folder, "cannot create a temporary file here; try again")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
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

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    RecordingError
        The folder does not exist or is not writable, or ``path`` is not a regular file (a
        folder, device, named pipe, socket or a link to one), with or without ``overwrite``.
    """
    final = Path(path)
    check_target(final, overwrite=overwrite)
    folder = final.parent
    if not folder.is_dir():
        raise RecordingError(folder, "output folder does not exist; create it first")
    remove_stale_partials(folder, final.name)
    fd, tmp = _locked_partial(final)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp
        check_target(final, overwrite=overwrite)  # something appeared while we were writing
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(fd)  # releases the lock
