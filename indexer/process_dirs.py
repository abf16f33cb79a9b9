"""Folders in the temporary folder that belong to one process, named PREFIX<pid>-<random>.

A process removes its own at exit, but one that ends by a signal runs no exit handler: a server stops
by the SIGTERM that uvicorn raises again after its graceful shutdown, and a worker or a build may be
killed. So making a new one first removes those of this user's processes that are gone, and a folder
left behind lasts only until the next process of its kind starts.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path


def new_process_dir(prefix: str) -> Path:
    """A new folder PREFIX<pid>-<random> in the temporary folder, after removing those of gone processes."""
    remove_orphans(Path(tempfile.gettempdir()), prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def remove_orphans(parent: Path, prefix: str) -> list[Path]:
    """Remove this user's folders PREFIX<pid>-* in `parent` whose process is no longer running; returns them."""
    named = re.compile(rf"{re.escape(prefix)}(\d+)-.+")
    removed = []
    for path in parent.glob(f"{prefix}*"):
        found = named.fullmatch(path.name)
        try:
            ours = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.geteuid()
        except OSError:  # gone meanwhile
            continue
        if found and ours and not process_alive(int(found[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a number no pid can be: keep
        return True
    try:  # a zombie takes signals too: its state tells (where there is a /proc to read)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
