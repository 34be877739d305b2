"""Writing a file so that a reader never sees half of it: a crash, a kill or a full disk leaves
the old file (or none), never a torn one. Checkpoints, results, figures and sample grids go
through here. And a run folder that one training writes at a time (exclusive_folder)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: folders are not held
    fcntl = None

STALE_S = 3600  # a temporary file this old was left by a write that was killed, not one under way
_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it) and put back
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` to write to (same suffix, so writers that go by
    it, like savefig, still can); once the block ends it is flushed to disk and renamed over
    ``path``; if the block raises it is removed. Two writers of one path never share a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp{path.suffix}"):
        with contextlib.suppress(OSError):  # another process may have just removed it
            if time.time() - stale.stat().st_mtime > STALE_S:
                stale.unlink()
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                dir=path.parent)  # fmt: skip
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_UMASK)  # as a plain open() would make it, not mkstemp's owner-only 0o600
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """atomic_path for files written together: a temporary path beside each, all renamed over
    them when the block ends, the first named last (the one that names the others: a record, an
    index); if the block raises, none is, and the old files stay as they were."""
    with contextlib.ExitStack() as stack:  # it leaves the last entered first
        yield [stack.enter_context(atomic_path(p)) for p in paths]


def fsync(path: str | Path) -> None:
    """Flush ``path``'s data to the disk: done before a rename publishes it, so that after a
    power cut the new name never points at a file whose data was still in memory."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


FULL = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota: the machine's, not a bad path


class DiskFull(OSError):
    """A file did not fit on its disk: not bad input (the command line exits 1, not 2). The
    message says what was kept; with more space, the same call goes on from there."""


def why_unwritable(folder: str | Path) -> str | None:
    """Why files cannot be written in ``folder`` (made first where missing), or None if they
    can: asked before the work, so that an output under a file or in a read-only place fails at
    once, not as an OSError once the work is done."""
    found = _unwritable(Path(folder))
    return None if found is None else found[0]


def check_writable(folder: str | Path, name: str) -> None:
    """ValueError "``name``: why" where files cannot be written in ``folder``; DiskFull where its
    disk is full, which is no mistake of whoever named it."""
    found = _unwritable(Path(folder))
    if found is not None:
        why, code = found
        raise (DiskFull if code in FULL else ValueError)(f"{name}: {why}")


def write_error(name: str, e: OSError, then: str = "") -> Exception:
    """``e``, raised while writing ``name``, as one line to raise: DiskFull (``then`` added: what
    was kept, what to do) where the disk is full, else a ValueError (the place given cannot take
    the file)."""
    why = f"{name}: cannot write it ({e.strerror or e})"
    return DiskFull(why + then) if e.errno in FULL else ValueError(why)


def _unwritable(folder: Path) -> tuple[str, int | None] | None:
    """why_unwritable's answer, with the errno behind it (None: not an OSError)."""
    for p in (folder, *folder.parents):  # the nearest one that exists must be a writable folder
        if p.is_symlink() and not p.exists():  # mkdir would say only "File exists"
            return f"{p} is a link to {os.readlink(p)}, which does not exist", None
        if p.exists():
            if not p.is_dir():
                return f"{p} is a file, not a folder", None
            try:
                # a real file, gone at once: os.access says yes to root in /sys, for one
                tempfile.TemporaryFile(dir=p).close()
            except OSError as e:
                return f"cannot write in {p} ({e.strerror or e})", e.errno
            return None
    return None


def missing_folders(folder: str | Path) -> list[Path]:
    """``folder`` and those above it that do not exist yet, deepest first: what writing into it
    makes, for remove_empty to take back."""
    folder = Path(folder)
    return [p for p in (folder, *folder.parents) if not p.exists()]


def remove_empty(made: list[Path]) -> None:
    """Remove the folders a failed write made (missing_folders), deepest first, while they are
    empty (nothing of anyone else's goes)."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            break


LOCK_FILE = ".training.lock"  # in a run folder while a training holds it (exclusive_folder)


@contextlib.contextmanager
def exclusive_folder(folder: str | Path) -> Iterator[bool]:
    """Hold ``folder`` (made if missing) for this process until the block ends; yields False,
    without waiting, where another holder has it.

    An flock on LOCK_FILE in the folder: NFS clients take it as a lock on the server, so it
    holds across machines too; the kernel lets go of it if the process dies. The file is
    removed when the block ends. Where no lock can be had (Windows, a file system without
    locks, a lock file nobody here may open) it yields True and holds nothing: the lock is a
    safeguard, not a condition."""
    folder = Path(folder)
    path, fd, held = folder / LOCK_FILE, None, True
    for _ in range(10) if fcntl is not None else ():
        folder.mkdir(parents=True, exist_ok=True)  # again: a holder may have just removed it
        try:
            fd = _open_lock(path)
        except FileNotFoundError:  # the folder went between mkdir and open
            continue
        if fd is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        except OSError:  # the file system keeps no locks: none here, and no file left behind
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
            fd = None
            break
        else:
            if _same_file(fd, path):
                break
            # the holder before removed it between our open and our lock: take the new one
        os.close(fd)
        fd = None
        if not held:
            break
    else:
        if fcntl is not None:  # the file kept changing under us: someone else is at it
            held = False
    if fcntl is None:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        yield held
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # before letting go: the next holder makes a file of its own
            os.close(fd)


def _open_lock(path: Path) -> int | None:
    """The lock file opened (made where missing), or None where it cannot be: read-only is
    enough for a local flock when another user's file refuses writing. FileNotFoundError where
    its folder is gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:
        raise
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the one ``path`` names now."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a ValueError naming the file if it cannot be read or is not JSON
    (a file edited by hand, or cut short by a full disk before this package wrote atomically)."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from e
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON file ({e})") from e


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a leftover of a dead one may go); where that cannot
    be asked safely (Windows, where os.kill would end it), it counts as running."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and belongs to someone else
        return True
    return True
