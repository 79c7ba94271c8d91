"""Server-side git hooks: a ``pre-receive`` hook that validates every push, and a
``post-receive`` hook that tells read replicas to fetch.

:func:`install` writes a ``pre-receive`` script into a (bare) repository. git
runs it with one ``<old> <new> <ref>`` line per pushed ref update on stdin,
after the pushed objects arrived but before any ref moves; the objects are
still in a quarantine directory that only the ``GIT_*`` environment names,
so the hook opens the repository with ``from_env=True``. The script runs
``python -m gitrecords.cli hooks pre-receive`` with the Python that installed
it, which calls :func:`check_push`; any problem rejects the whole push and no
ref moves.

:func:`install_notify` writes a ``post-receive`` script that, once a push has
landed, POSTs to ``URL/_fetch`` of each read replica (``gitrecords serve
--follow``), in the background with a short timeout and every error ignored:
a replica that is down never slows or fails a push (it catches up on its
next interval fetch).

(These are git hooks; the plugin hooks of gitrecords are in ``hookspecs``.)
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _git, checks
from .errors import GitRecordsError, RepositoryError
from .storage import Storage as Repository

__all__ = [
    "HOOK_MARKER",
    "NOTIFY_MARKER",
    "RefCheck",
    "RefUpdate",
    "check_push",
    "hook_script",
    "install",
    "install_notify",
    "notify_script",
    "parse_updates",
    "server_index",
]

#: the second line of every hook script gitrecords writes (so it can replace its own)
HOOK_MARKER = "# gitrecords pre-receive hook"
#: the second line of the post-receive script that notifies replicas
NOTIFY_MARKER = "# gitrecords post-receive hook"
#: seconds a notification may take (it runs in the background: the push does not wait for it)
NOTIFY_TIMEOUT = 5


def hook_script(
    python: str | None = None, *, reject_rewrites: bool = True, allow_rewrite: Sequence[str] = ()
) -> str:
    """The text of the ``pre-receive`` script."""
    # -P: the git directory (the working directory of a hook) holds a gitrecords/ folder that must
    # not shadow the package
    command = [python or sys.executable, "-P", "-m", "gitrecords.cli", "hooks", "pre-receive"]
    command.append("--reject-rewrites" if reject_rewrites else "--accept-rewrites")
    for ref in allow_rewrite:
        command += ["--allow-rewrite", ref]
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER}, written by 'gitrecords hooks install'.\n"
        "# It validates every pushed ref update and rejects the push if anything is wrong.\n"
        "# Run 'gitrecords hooks install --force ...' to change it.\n"
        "unset GITRECORDS_REPO\n"
        f"exec {shlex.join(command)}\n"
    )


def install(
    repo: Repository,
    *,
    reject_rewrites: bool = True,
    allow_rewrite: Sequence[str] = (),
    force: bool = False,
    python: str | None = None,
) -> Path:
    """Write the ``pre-receive`` hook into ``repo``'s git directory; returns its path.

    A hook that gitrecords did not write is replaced only with ``force``.
    """
    text = hook_script(python, reject_rewrites=reject_rewrites, allow_rewrite=normalise_refs(allow_rewrite))
    return _write_hook(repo, "pre-receive", HOOK_MARKER, text, force)


def notify_script(urls: Sequence[str], python: str | None = None) -> str:
    """The text of the ``post-receive`` script that POSTs to ``URL/_fetch`` for each of ``urls``:
    with curl when it is installed, else with this Python's standard library; detached from git's
    pipes, so the push neither waits for it nor shows its errors."""
    python = shlex.quote(python or sys.executable)
    post = (
        "import sys, urllib.request; "
        "urllib.request.build_opener(urllib.request.ProxyHandler({})).open("
        f"urllib.request.Request(sys.argv[1], data=bytes()), timeout={NOTIFY_TIMEOUT})"
    )
    lines = [
        "#!/bin/sh",
        f"{NOTIFY_MARKER}, written by 'gitrecords hooks install --notify'.",
        "# It tells the read replicas to fetch, in the background: it never blocks or fails a push.",
        "# Run 'gitrecords hooks install --notify URL ...' again to change it.",
        "cat >/dev/null",
        # a subshell, detached from git's pipes (a backgrounded shell function is not, in dash)
        f"for url in {' '.join(shlex.quote(url.rstrip('/') + '/_fetch') for url in urls)}; do",
        "    (",
        "        if command -v curl >/dev/null 2>&1; then",
        f"            curl --silent --max-time {NOTIFY_TIMEOUT} --noproxy '*' --request POST \"$url\"",
        "        else",
        f'            {python} -P -c {shlex.quote(post)} "$url"',
        "        fi",
        "    ) </dev/null >/dev/null 2>&1 &",
        "done",
    ]
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def install_notify(
    repo: Repository, urls: Sequence[str], *, force: bool = False, python: str | None = None
) -> Path:
    """Write the ``post-receive`` hook that notifies the read replicas at ``urls``; returns its path.

    A hook that gitrecords did not write is replaced only with ``force``.
    """
    for url in urls:
        if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
            raise GitRecordsError(f"{url!r} is not a replica's URL (http://host:port or https://...)")
    return _write_hook(repo, "post-receive", NOTIFY_MARKER, notify_script(urls, python), force)


def _write_hook(repo: Repository, name: str, marker: str, text: str, force: bool) -> Path:
    hooks_dir = Path(repo.git_dir) / "hooks"
    target = hooks_dir / name
    if target.exists() and not force:
        lines = target.read_text("utf-8", errors="replace").splitlines()
        if len(lines) < 2 or not lines[1].startswith(marker):
            raise GitRecordsError(
                f"{target} exists and was not written by gitrecords: use --force to replace it"
            )
    hooks_dir.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{name}.{os.getpid()}.tmp")
    temp.write_text(text, "utf-8")
    temp.chmod(0o755)
    os.replace(temp, target)
    return target


def normalise_refs(refs: Iterable[str]) -> list[str]:
    """``main`` -> ``refs/heads/main``; full names and patterns (``refs/heads/wip/*``) stay."""
    return [ref if ref.startswith("refs/") else f"refs/heads/{ref}" for ref in refs]


@dataclass(frozen=True)
class RefUpdate:
    """One line of a pre-receive hook's input."""

    old: str
    new: str
    ref: str

    @property
    def created(self) -> bool:
        return _is_zero(self.old)

    @property
    def deleted(self) -> bool:
        return _is_zero(self.new)


def _is_zero(oid: str) -> bool:
    return set(oid) == {"0"}


def parse_updates(text: str) -> list[RefUpdate]:
    """The ref updates of a pre-receive hook's stdin (``<old> <new> <ref>`` lines)."""
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise GitRecordsError(f"not a pre-receive line: {line!r}")
        updates.append(RefUpdate(*parts))
    return updates


@dataclass
class RefCheck:
    """The verdict on one ref update."""

    update: RefUpdate
    #: the validation report (None when nothing was validated: a deletion, a rejected rewrite)
    report: checks.Report | None = None
    #: why the update is rejected without validation (a non-fast-forward update)
    refused: str | None = None
    #: what was validated, e.g. ``1a2b3c4..5d6e7f8`` or ``the whole tree of 5d6e7f8``
    scope: str = ""

    @property
    def ok(self) -> bool:
        return self.refused is None and (self.report is None or self.report.ok)


def check_push(
    repo: Repository,
    updates: Sequence[RefUpdate],
    *,
    reject_rewrites: bool = True,
    allow_rewrite: Sequence[str] = (),
    workers: int | None = None,
    format_checker: Any = None,
    validator_cls: Any = None,
    progress: Callable[[int, int], None] | None = None,
    pid_index: Any = None,
) -> list[RefCheck]:
    """Validate each pushed ref update (``repo`` opened with ``from_env=True`` in a hook).

    An update is validated as the range from its old value (for a new ref:
    from its merge base with the default branch, else as a whole tree) to its
    new value. A deletion is allowed. With ``reject_rewrites`` (the default), an
    update whose new value does not contain the old one is refused unless the ref
    matches a pattern of ``allow_rewrite``. Whatever the settings, an update that
    brings back the content of a hard-deleted record (its history, from a clone
    made before the hard delete) is refused by the validation. ``pid_index`` (see :func:`server_index`) is
    the revision index whose PID table is used when it is at an update's base.
    """
    allowed = normalise_refs(allow_rewrite)
    git = repo.git
    default_tip = _git.tip(git, repo.ref)
    results = []
    for update in updates:
        result = RefCheck(update)
        results.append(result)
        if update.deleted:
            result.scope = "deleted"
            continue
        new = _git.Oid(hex=update.new)
        try:
            commit = git[new].peel(_git.ObjectType.COMMIT)
        except (KeyError, ValueError, _git.GitError):
            # a tag of a blob or a tree would keep any file, a purged record's too, past every check
            result.scope = "not a commit"
            result.refused = (
                f"{update.ref}: names no commit (a tag of a file or a tree?): the refs of a data "
                "repository name commits, or tags of commits"
            )
            continue
        base: _git.Oid | None = None
        rewrite = False
        if not update.created:
            old = _git.Oid(hex=update.old)
            fast_forward = old in git and git.descendant_of(commit.id, old)
            if not fast_forward and old != commit.id:
                if reject_rewrites and not any(fnmatch.fnmatchcase(update.ref, p) for p in allowed):
                    result.refused = (
                        f"{update.ref}: a non-fast-forward update (history rewrite) is not allowed here: "
                        "pull, merge or rebase onto the current branch, and push without --force"
                    )
                    continue
                base = _merge_base(git, old, commit.id)
                rewrite = True
            else:
                base = old
        elif default_tip is not None and update.ref != repo.ref:
            base = _merge_base(git, default_tip, commit.id)
        if update.ref.startswith("refs/notes/"):
            # git notes: a tree of notes keyed by the objects they annotate, no records (a hard
            # delete moves them with the commits it rewrites, docs/format.md); but a notes ref
            # can name any commit, an old clone's branch too: no purged content comes back
            result.scope = "notes"
            result.report = checks.purged_history(repo, commit.id, base)
            continue
        try:
            result.report = checks.validate(
                repo,
                commit.id,
                base,
                workers=workers,
                format_checker=format_checker,
                validator_cls=validator_cls,
                progress=progress,
                pid_index=pid_index,
                rewritten=rewrite,
            )
        except RepositoryError as err:
            result.refused = f"{update.ref}: {err}"
            continue
        short = str(commit.id)[:7]
        result.scope = f"{str(base)[:7]}..{short}" if base is not None else f"the whole tree of {short}"
    return results


def server_index(repo: Repository) -> Repository | None:
    """The repository opened again without the quarantine, with its revision index (kept in
    the git directory) brought to the default branch's current tip; None when it has none.

    A push to the default branch is checked from that tip, so the index answers the PID
    check at once instead of a pass over every record. An index that was never built is
    not built here (that would read the whole history): the check scans instead.
    """
    try:
        plain = Repository(repo.git_dir, branch=repo.branch)
    except GitRecordsError:
        return None
    try:
        if plain.index.path is None or plain.index.indexed_tip() is None:
            plain.close()
            return None
        plain.sync_index()
    except Exception:
        plain.close()
        raise
    return plain


def _merge_base(git: Any, a: _git.Oid, b: _git.Oid) -> _git.Oid | None:
    try:
        return git.merge_base(a, b)
    except (KeyError, ValueError, _git.GitError):
        return None
