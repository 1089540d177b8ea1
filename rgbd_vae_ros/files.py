"""Atomic file output: write beside the target, then rename, so nothing half-written is left."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only when the block completes.

    On any error (disk full, interrupt) the temporary file is removed and ``path`` keeps its
    previous content, so readers see the old file or the whole new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named for this process, so that remove_leftovers can tell a killed writer's file from a live one's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; the result should look like any new file
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# Folders are staged as hidden siblings named for their owner process, ``.NAME.PID.XXXX.partial``
# (files as ``.NAME.PID.XXXX.tmp``), so a later run can tell a killed writer's leftovers (owner
# gone) from a live writer's.
_STAGING_SUFFIX = ".partial"
_TEMP_SUFFIX = ".tmp"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _leftover_owner(entry: Path, target_name: str) -> int | None:
    """The process id in a staging folder's or temporary file's name for ``target_name``."""
    prefix, name = f".{target_name}.", entry.name
    suffix = next((s for s in (_STAGING_SUFFIX, _TEMP_SUFFIX) if name.endswith(s)), None)
    if suffix is None or not name.startswith(prefix):
        return None
    pid, _, _ = name[len(prefix):-len(suffix)].partition(".")
    return int(pid) if pid.isdigit() else None


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove the staging folders and temporary files of ``target`` left by processes that no
    longer run (killed by SIGKILL or SIGTERM before they could clean up); returns what was removed."""
    import shutil

    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for entry in target.parent.iterdir():
        pid = _leftover_owner(entry, target.name)
        if pid is None or _process_alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def staging_dir(target: str | os.PathLike) -> Path:
    """A new empty hidden folder beside ``target``, owned by this process, after removing the
    leftovers of dead ones."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=_STAGING_SUFFIX,
                                    dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the renamed result should look like any new folder
    return staging


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """A folder that appears at ``target`` whole, or not at all: fill the yielded staging folder;
    when the block completes it replaces ``target`` (an old ``target`` goes only then)."""
    import shutil

    target = Path(target)
    staging = staging_dir(target)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not target.exists():
        staging.rename(target)
        return
    replaced = staging.with_name(staging.name[:-len(_STAGING_SUFFIX)] + ".old" + _STAGING_SUFFIX)
    target.rename(replaced)  # an owned staging name: if this process dies now, the next run removes it
    try:
        staging.rename(target)
    except BaseException:
        replaced.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(replaced, ignore_errors=True)
