"""A working clone's files and git index, kept in step with the branch it has checked out.

A write refuses to overwrite local edits (:meth:`WorkingClone.check`, before the
branch moves) and brings the files it changed into the working tree and git's
index (:meth:`WorkingClone.update`, after). A bare repository has no working
clone: both do nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import _git
from .errors import LocalChangesError


class WorkingClone:
    """The working tree of a (non-bare) repository, when ``branch`` is checked out."""

    def __init__(self, git: Any, bare: bool, branch: str, head_branch: Callable[[], str | None]) -> None:
        self.git = git
        self.bare = bare
        self.branch = branch
        self._head_branch = head_branch

    def checked_out(self) -> bool:
        return not self.bare and self._head_branch() == self.branch and self.git.workdir is not None

    def check(self, base: _git.Oid | None, changes: Iterable[str]) -> None:
        """Raise :class:`LocalChangesError` if a file in ``changes`` has staged or local edits."""
        if not self.checked_out():
            return
        tree = _git.tree_of(self.git, base)
        index = self.git.index
        index.read()
        workdir = Path(self.git.workdir)
        for path in changes:
            committed = _git.entry_id(tree, path)
            entry = index[path] if path in index else None
            staged = entry.id if entry is not None else None
            if staged != committed:
                raise LocalChangesError(f"{path} has staged changes in {workdir}; commit or reset them first")
            file = workdir / path
            if file.exists():
                on_disk = _git.hash_file(file)
                if on_disk != committed:
                    raise LocalChangesError(
                        f"{path} has local edits in {workdir}; commit or restore them first"
                    )
            elif committed is not None:
                raise LocalChangesError(f"{path} was removed locally in {workdir}; restore it first")

    def update(self, changes: Mapping[str, _git.Oid | None]) -> None:
        """Write ``changes`` (path -> blob, None removes) into the files and git's index."""
        if not self.checked_out():
            return
        index = self.git.index
        index.read()
        workdir = Path(self.git.workdir)
        for path, blob in changes.items():
            file = workdir / path
            if blob is None:
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
                if path in index:
                    index.remove(path)
                for parent in file.parents:
                    if parent == workdir:
                        break
                    with contextlib.suppress(OSError):
                        parent.rmdir()
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                temp.write_bytes(_git.read_blob(self.git, blob))
                os.replace(temp, file)
                index.add(path)
        index.write()

    def forget(self, paths: Iterable[str]) -> None:
        """After a history rewrite, drop ``paths`` from the index and the files (any HEAD)."""
        if self.bare or self.git.workdir is None:
            return
        index = self.git.index
        index.read()
        workdir = Path(self.git.workdir)
        for path in paths:
            if path in index:
                index.remove(path)
            with contextlib.suppress(FileNotFoundError):
                (workdir / path).unlink()
        index.write()
