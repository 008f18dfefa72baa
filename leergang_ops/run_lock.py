"""The run lock: `<ledger>.lock` beside the send ledger, so two runs never overlap.

The lock is the operating system's (flock; on Windows msvcrt.locking), so a crashed run
releases it with its process; the file itself stays and only names the last holder's
process id. Every command that writes the workbook or the ledger holds it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leergang_ops.environment import translated
from leergang_ops.errors import WorkbookInUse


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold `<ledger>.lock` for the block, so two runs never overlap; raise WorkbookInUse.

    The lock is the operating system's (flock), so a crashed run releases it with its process;
    the file itself stays and only names the last holder's process id.
    """
    lock_path = path.with_name(path.name + ".lock")
    with translated(lock_path):
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            raise WorkbookInUse(
                f"Er loopt al een run voor deze leergang{_holder(fd)}; er is niets gedaan. "
                f"Probeer het later opnieuw. (Vergrendeling: {lock_path})")
        with translated(lock_path):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """Describe the process holding the lock, from the pid it wrote, or nothing."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode(errors="replace").strip()
    except OSError:  # Windows refuses reading a region another process locked
        return ""
    return f" (proces {text})" if text.isdigit() else ""


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
