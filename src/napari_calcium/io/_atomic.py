"""Write-then-rename: outputs appear whole or not at all, and nothing is overwritten unasked."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputExistsError, RecordingError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    The temporary file lives in the same folder (so the final :func:`os.replace` is atomic on the
    same file system) and is removed if the block raises, so a failed or interrupted write never
    leaves a partial output or clobbers an existing one.

    Parameters
    ----------
    path : str or os.PathLike
        Final output file.
    overwrite : bool
        Replace an existing ``path``. Without it an existing file raises
        :class:`~napari_calcium.errors.OutputExistsError` before anything is written.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    RecordingError
        The folder does not exist or is not writable.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputExistsError(final)
    folder = final.parent
    if not folder.is_dir():
        raise RecordingError(folder, "output folder does not exist; create it first")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise RecordingError(folder, f"cannot write here ({exc.strerror})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        if final.exists() and not overwrite:  # appeared while we were writing
            raise OutputExistsError(final)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
