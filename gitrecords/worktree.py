"""A working clone's files and git index, kept in step with the branch it has checked out.

A write refuses to overwrite local edits (:meth:`WorkingClone.check`, before the
branch moves) and brings the files it changed into the working tree and git's
index (:meth:`WorkingClone.update`, after). A bare repository has no working
clone: both do nothing.

Between the two, the write keeps a small journal (``gitrecords/worktree-journal``:
the commit it was built on and the files it changes). A writer killed after the
branch moved but before the files followed leaves the journal behind; the next
check finishes that update (for files still as they were before the write), so
the next write succeeds instead of seeing the stale file as a local edit.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import _git
from .errors import LocalChangesError


class WorkingClone:
    """The working trees of a repository that have ``branch`` checked out: its own (when it is
    not bare and its HEAD is on the branch), and every linked worktree (``git worktree add``)
    on the branch. A write checks and updates each of them."""

    def __init__(self, git: Any, bare: bool, branch: str, head_branch: Callable[[], str | None]) -> None:
        self.git = git
        self.bare = bare
        self.branch = branch
        self._head_branch = head_branch

    def _trees(self) -> list[Any]:
        """A repository handle (its work tree and git index) for each working tree on the branch."""
        trees = []
        if not self.bare and self.git.workdir is not None and self._head_branch() == self.branch:
            trees.append(self.git)
        ref = f"refs/heads/{self.branch}"
        for worktree in _git.linked_worktrees(self.git):
            if worktree.branch == ref and worktree.exists:
                trees.append(_git.open_worktree(worktree))
        return trees

    def checked_out(self) -> bool:
        return bool(self._trees())

    @property
    def _journal(self) -> Path:
        return Path(self.git.path) / "gitrecords" / "worktree-journal"

    def check(self, base: _git.Oid | None, changes: Iterable[str] | Mapping[str, _git.Oid | None]) -> None:
        """Raise :class:`LocalChangesError` if a file in ``changes`` has staged or local edits in
        a working tree on the branch.

        With ``changes`` as path -> new blob, the write is journaled until :meth:`update`."""
        trees = self._trees()
        if not trees:
            return
        self.recover(trees)
        tree = _git.tree_of(self.git, base)
        for git in trees:
            _check_tree(git, tree, list(changes))
        if isinstance(changes, Mapping):
            self.journal(base, changes)

    def journal(
        self,
        base: _git.Oid | None,
        changes: Mapping[str, _git.Oid | None],
        before: Mapping[str, _git.Oid | None] | None = None,
    ) -> None:
        """Note the files a write is about to change (path -> new blob), until :meth:`update`:
        a writer killed after its branch moved leaves the note, and :meth:`recover` finishes
        the update. ``before``: the files' blobs before the write, where ``base``'s tree will
        not be there to say (a hard delete removes the old commits)."""
        if not self._trees():
            return
        entry: dict[str, Any] = {
            "base": str(base) if base is not None else None,
            "changes": {p: str(b) if b is not None else None for p, b in changes.items()},
        }
        if before is not None:
            entry["before"] = {p: str(b) if b is not None else None for p, b in before.items()}
        with contextlib.suppress(OSError):
            self._journal.parent.mkdir(exist_ok=True)
            self._journal.write_text(json.dumps(entry))

    def check_checked_out(self, paths: Iterable[str]) -> None:
        """Raise :class:`LocalChangesError` if a file in ``paths`` has staged or local edits in the
        clone's own work tree, whatever its HEAD is on (compared with HEAD's commit): a history
        rewrite removes them there (:meth:`forget`) whichever branch is checked out."""
        if self.bare or self.git.workdir is None:
            return
        head = _git.resolve_commit(self.git, "HEAD")
        _check_tree(self.git, _git.tree_of(self.git, head) if head is not None else None, list(paths))

    def recover(self, trees: list[Any] | None = None) -> None:
        """Finish the update of a write killed after its branch moved (see the module docstring):
        a journaled file that the branch now has at its new blob, and that is still as it was
        before the write (in a work tree and its git index), is brought up to date there."""
        try:
            entry = json.loads(self._journal.read_text())
        except (OSError, ValueError):
            return
        head_tree = _git.tree_of(self.git, _git.tip(self.git, f"refs/heads/{self.branch}"))
        base = entry.get("base")
        noted = entry.get("before")
        base_tree = _git.tree_of(self.git, _git.Oid(hex=base)) if base and noted is None else None
        for git in self._trees() if trees is None else trees:
            index = git.index
            index.read()
            workdir = Path(git.workdir)
            behind: dict[str, _git.Oid | None] = {}
            for path, blob in (entry.get("changes") or {}).items():
                new = _git.Oid(hex=blob) if blob else None
                if _git.entry_id(head_tree, path) != new:
                    continue  # the write did not land, or the file changed again since
                if noted is not None:
                    before = _git.Oid(hex=noted[path]) if noted.get(path) else None
                else:
                    before = _git.entry_id(base_tree, path)
                staged = _git.index_blob(index, path)
                file = workdir / path
                on_disk = _git.hash_worktree_file(git, file) if file.exists() else None
                if staged == before and on_disk == before and before != new:
                    behind[path] = new
            if behind:
                self._write(git, behind)
            for path in entry.get("changes") or {}:  # the killed writer's temporary files
                file = workdir / path
                for temp in file.parent.glob(_temp_file(file, "*").name):
                    with contextlib.suppress(OSError):
                        temp.unlink()
        with contextlib.suppress(FileNotFoundError):
            self._journal.unlink()

    def update(self, changes: Mapping[str, _git.Oid | None]) -> None:
        """Write ``changes`` (path -> blob, None removes) into the files and git's index of every
        working tree on the branch."""
        for git in self._trees():
            self._write(git, changes)
        with contextlib.suppress(FileNotFoundError):
            self._journal.unlink()

    def _write(self, git: Any, changes: Mapping[str, _git.Oid | None]) -> None:
        index = git.index
        index.read()
        workdir = Path(git.workdir)
        # files a sparse checkout leaves out stay out: only their index entries change
        absent = [
            p for p, b in changes.items() if b is not None and p in index and not (workdir / p).exists()
        ]
        added = any(b is not None and p not in index for p, b in changes.items())
        sparse = _git.skip_worktree(git, absent) if absent else set()
        for path, blob in changes.items():
            file = workdir / path
            if path in sparse:
                continue
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
                temp = _temp_file(file, str(os.getpid()))
                temp.write_bytes(_git.read_blob(self.git, blob))
                os.replace(temp, file)
                index.add(path)
        index.write()
        for path in sorted(sparse):
            blob = changes[path]
            assert blob is not None
            _git.set_index_entry_outside_worktree(git, path, blob)
        if added and _git.sparse_checkout(git):
            # a new file outside the sparse checkout's folders: git's own rules take it out
            _git.reapply_sparse_checkout(git)

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


def _temp_file(file: Path, pid: str) -> Path:
    """Where process ``pid`` writes ``file`` before renaming it into place (``*``: any's)."""
    return file.with_name(f".{file.name}.{pid}.tmp")


def _check_tree(git: Any, tree: Any, paths: list[str]) -> None:
    """Raise :class:`LocalChangesError` if a file in ``paths`` differs in ``git``'s index or work
    tree from ``tree`` (a commit's): staged, edited, removed, or in an unresolved merge conflict.
    A file a sparse checkout leaves out (skip-worktree) is not a removal."""
    index = git.index
    index.read()
    workdir = Path(git.workdir)
    missing: list[str] = []
    for path in paths:
        if _git.in_conflict(index, path):
            raise LocalChangesError(
                f"{path} has an unresolved merge conflict in {workdir}; resolve it (edit the file and "
                "'git add' it, or 'git merge --abort') first"
            )
        committed = _git.entry_id(tree, path)
        staged = _git.index_blob(index, path)
        if staged != committed:
            raise LocalChangesError(f"{path} has staged changes in {workdir}; commit or reset them first")
        file = workdir / path
        if file.exists():
            if _git.hash_worktree_file(git, file) != committed:
                raise LocalChangesError(f"{path} has local edits in {workdir}; commit or restore them first")
        elif committed is not None:
            missing.append(path)
    if missing:
        removed = sorted(set(missing) - _git.skip_worktree(git, missing))
        if removed:
            raise LocalChangesError(f"{removed[0]} was removed locally in {workdir}; restore it first")
