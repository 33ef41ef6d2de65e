"""The index folder's housekeeping: the build lock, the atomic swap of a finished build, and recovery from a build
that died. POSIX only, like the rest of the deployment.
"""

from __future__ import annotations

import contextlib
import fcntl  # flock needs no extra dependency and dies with its process
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from knowledge.index_errors import MANIFEST, BuildLockedError, IndexError_, IndexNotFoundError


def _refuse_foreign_directory(index_dir: Path) -> None:
    """Never replace a folder that is not an index: it may hold someone's files."""
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexError_(f"{index_dir} is a file, not a folder; give --index a folder (new or an existing index)")
    if index_dir.exists() and any(index_dir.iterdir()) and not (index_dir / MANIFEST).exists():
        raise IndexError_(f"{index_dir} exists and is not a patient-qa index; choose another --index folder")


def _make_parent(index_dir: Path, building: bool = False) -> Path:
    """Create the index's parent folder (and, when `building`, the temporary build folder inside it)."""
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        if building:
            return Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.building-", dir=index_dir.parent))
    except OSError as err:
        raise IndexError_(f"cannot write an index at {index_dir} ({err.strerror or err}); "
                          "choose a folder you can write to with --index") from None
    return index_dir.parent


def _swap_into_place(tmp: Path, index_dir: Path) -> None:
    """Rename the finished build over the old index; the old one is kept until the new one is in place."""
    if index_dir.exists():
        retired = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
        shutil.rmtree(retired, ignore_errors=True)
        index_dir.rename(retired)
        tmp.rename(index_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        tmp.rename(index_dir)


def _recover_interrupted_swap(index_dir: Path) -> None:
    """If a build died between its two renames, put the previous index back; call only under the build lock."""
    if index_dir.exists():
        return
    for retired in sorted(index_dir.parent.glob(f".{index_dir.name}.old-*")):
        if (retired / MANIFEST).exists():
            retired.rename(index_dir)
            return


def _remove_leftovers(index_dir: Path) -> None:
    """Remove the temporary and retired folders of builds that died; under the lock, no live build owns any."""
    for pattern in (f".{index_dir.name}.building-*", f".{index_dir.name}.old-*"):
        for leftover in index_dir.parent.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)


def lock_path(index_dir: Path) -> Path:
    """The lock file beside the index: the index folder itself is renamed away during a swap."""
    return index_dir.parent / f".{index_dir.name}.lock"


def _lock_holder(handle) -> str:
    """The pid the running build wrote into the lock file, or '?' if it has not yet."""
    try:
        os.lseek(handle, 0, os.SEEK_SET)
        return os.read(handle, 32).decode("ascii", "replace").strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def build_lock(index_dir: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the index's build lock, waiting up to `wait_seconds` for another build; else a `BuildLockedError`.

    flock (not a pid file) because the kernel releases it when the holder dies, even by kill -9,
    so a crashed build never leaves a stale lock behind.
    """
    path = lock_path(index_dir)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise IndexError_(f"cannot write an index at {index_dir} ({err.strerror or err}); "
                          "choose a folder you can write to with --index") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildLockedError(
                        f"another build is running (pid {_lock_holder(handle)}) on {index_dir}; "
                        "wait for it to finish, then try again"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _build_running(index_dir: Path) -> str | None:
    """The pid of a build holding the index's lock, or None when no build is running."""
    try:
        handle = os.open(lock_path(index_dir), os.O_RDONLY)
    except OSError:
        return None  # no lock file: no build since locks exist
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _lock_holder(handle)
    finally:
        os.close(handle)


def _recover_for_reader(index_dir: Path, wait_seconds: float = 2.0) -> None:
    """A reader finding only a retired index restores it if its build died, and never while a build is swapping."""
    if index_dir.exists() or not any(index_dir.parent.glob(f".{index_dir.name}.old-*")):
        return
    deadline = time.monotonic() + wait_seconds
    while (pid := _build_running(index_dir)) is not None:
        if index_dir.exists():
            return  # the swap finished
        if time.monotonic() >= deadline:
            raise IndexNotFoundError(f"a build (pid {pid}) is replacing the index at {index_dir} right now; "
                                     "try again in a moment")
        time.sleep(0.05)
    try:
        with build_lock(index_dir, wait_seconds=0):
            _recover_interrupted_swap(index_dir)
    except IndexError_:
        pass  # a build started meanwhile, or the folder is read-only: load what is there
