"""Commands for replicas: pull, push and the git merge driver for record files."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidRecordError
from ..merge import (
    STRATEGIES,
    UNRESOLVABLE,
    VIRTUAL_BASE,
    MergeConflictError,
    describe_conflicts,
    merge_files,
)
from ..repository import Repository
from ._common import (
    DataError,
    ProblemsError,
    State,
    UsageFailure,
    json_option,
    pass_repo,
    short,
    write_options,
)
from ._output import echo_json, note

# gitrecords.replication is imported in the commands that use it, not at start-up (5 ms)

STRATEGY = click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="Resolve each conflicting field (or record) with our side or theirs; "
    "changes that do not conflict are merged from both sides.",
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.command()
@click.argument("remote", default="origin", required=False)
@click.argument("branch", required=False)
@STRATEGY
@write_options
@json_option
@pass_repo
def pull(
    repo: Repository,
    remote: str,
    branch: str | None,
    strategy: str | None,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Fetch BRANCH from REMOTE and merge it, record by record.

    REMOTE is a remote's name or a URL (default: origin); BRANCH defaults to
    the repository's branch. When both sides have new commits, records
    changed on one side only are taken as they are and records changed on
    both sides are merged field by field into one merge commit, whose first
    parent is the remote's tip. Conflicting edits of the same field,
    edit-versus-delete and two records with the same PID stop the pull with a
    report (record, JSON pointer, base/ours/theirs) and change nothing.

    \b
    Examples:
      gitrecords pull
      gitrecords pull origin main --strategy theirs
      gitrecords pull --json | jq '.conflicts'
    """
    from .. import replication

    try:
        outcome = replication.pull(repo, remote, branch, strategy=strategy, message=message, author=author)
    except MergeConflictError as err:
        unresolved = [c for c in err.conflicts if not c.resolved]
        hint = (
            ": give the records their own PIDs, or update the stale replica, and pull again"
            if all(c.kind in UNRESOLVABLE for c in unresolved)
            else ": resolve with --strategy ours|theirs, or change the records so that both sides agree "
            "and pull again"
        )
        if as_json:
            echo_json({"status": "conflict", "conflicts": [c.to_json() for c in unresolved]})
            raise DataError(f"{err}{hint}") from None
        raise ProblemsError(describe_conflicts(unresolved), f"{err}{hint}") from None
    if as_json:
        echo_json(outcome.to_json())
        return
    where = f"{replication.shown_url(remote)}/{branch or repo.branch}"
    changed = _plural(len(outcome.records), "record")
    if outcome.status == "up-to-date":
        note(f"Already up to date with {where}.")
    elif outcome.status == "fast-forward":
        note(f"Fast-forwarded {repo.branch} to {short(outcome.commit)} ({where}): {changed} changed.")
    else:
        merged = _plural(len(outcome.merged), "record")
        note(
            f"Merged {where} into {repo.branch}: commit {short(outcome.commit)}, {changed} changed, "
            f"{merged} merged field by field."
        )
        for line in describe_conflicts(outcome.resolved):
            note(f"  {strategy}: {line}")


@click.command()
@click.argument("remote", default="origin", required=False)
@click.argument("branch", required=False)
@json_option
@pass_repo
def push(repo: Repository, remote: str, branch: str | None, as_json: bool) -> None:
    """Push the repository's branch to BRANCH of REMOTE (default: origin, same name).

    Never forces: when REMOTE has commits this repository does not have, the
    push is refused (exit 1); run 'gitrecords pull' and push again.

    \b
    Examples:
      gitrecords push
      gitrecords push origin main --json
    """
    from .. import replication

    try:
        result = replication.push(repo, remote, branch)
    except replication.PushRejectedError as err:
        if as_json:  # a script reading stdout learns what happened, as pull --json tells a conflict
            echo_json(
                {
                    "status": "rejected",
                    "remote": replication.shown_url(remote),
                    "branch": branch or repo.branch,
                    "reason": str(err),
                }
            )
            raise DataError(str(err)) from None
        raise
    if as_json:
        echo_json(result.to_json())
    elif result.status == "up-to-date":
        note(f"{result.remote}/{result.branch} is up to date.")
    else:
        before = f"{short(result.previous)}.." if result.previous else "new branch "
        note(f"Pushed {repo.branch} to {result.remote}/{result.branch} ({before}{short(result.commit)}).")


@click.command("merge-driver")
@click.argument("args", nargs=-1, metavar="BASE OURS THEIRS [PATH] | install")
@STRATEGY
@click.option(
    "--command",
    metavar="COMMAND",
    help="With install: the command git runs (default: this Python's gitrecords, by absolute path).",
)
@click.option(
    "--virtual-base",
    is_flag=True,
    hidden=True,
    help="Merge two merge bases into git's virtual base (merge.gitrecords.recursive).",
)
@click.pass_context
def merge_driver(
    ctx: click.Context,
    args: tuple[str, ...],
    strategy: str | None,
    command: str | None,
    virtual_base: bool,
) -> None:
    """Merge one record file for git (%O %A %B %P), or install the driver.

    git runs 'gitrecords merge-driver %O %A %B %P' for each record file both
    sides changed: BASE, OURS and THEIRS are the three versions and PATH the
    file's path. The merged record is written into OURS as canonical JSON
    (exit 0); on a conflict OURS is left as it is, the conflicts are listed on
    stderr and the exit code is 1, so git marks the file as conflicted.

    'gitrecords merge-driver install' sets merge.gitrecords.driver and
    merge.gitrecords.name in the repository's git config and adds
    'records/**/*.json merge=gitrecords' to .gitattributes (info/attributes
    in a bare repository), so that plain 'git merge' and 'git pull' merge
    records the way 'gitrecords pull' does. It also sets the driver of git's
    merges of two merge bases (criss-cross histories, merge.gitrecords.recursive),
    so that a field the bases disagree on conflicts again unless both sides agree.

    \b
    Examples:
      gitrecords merge-driver install
      git pull    # now merges record files field by field
    """
    from .. import replication

    if args == ("install",):
        if strategy is not None:
            raise UsageFailure("--strategy is for merging files, not for install")
        repo = ctx.ensure_object(State).repository()
        written = replication.install_merge_driver(repo, command)
        note(
            f"Installed the gitrecords merge driver for {repo.records_dir}/**/*.json ({', '.join(written)})."
        )
        return
    if command is not None:
        raise UsageFailure("--command is for install")
    if len(args) not in (3, 4):
        raise UsageFailure("give BASE OURS THEIRS [PATH] (git's %O %A %B %P), or 'install'")
    base, ours, theirs = (Path(a) for a in args[:3])
    path = args[3] if len(args) == 4 else None
    if virtual_base:
        # git's inner merge: never a conflict; where the bases disagree, a value no record holds
        # (a --strategy of the driver's command is for the real merge, not this one)
        data, _result = merge_files(
            base.read_bytes(), ours.read_bytes(), theirs.read_bytes(), path=path, strategy=VIRTUAL_BASE
        )
        if data is not None:
            ours.write_bytes(data)
        return
    data, result = merge_files(
        base.read_bytes(), ours.read_bytes(), theirs.read_bytes(), path=path, strategy=strategy
    )
    if result.unresolved:
        shown = path or str(ours)
        raise ProblemsError(
            describe_conflicts(result.unresolved),
            f"{shown}: {_plural(len(result.unresolved), 'conflict')}; the file keeps our version: "
            "edit it (or 'git checkout --theirs' it), then 'git add' it",
        )
    if data is None:
        raise InvalidRecordError(
            f"{path or ours}: the merge deletes the record file; git cannot do that here"
        )
    ours.write_bytes(data)


COMMANDS = [pull, push, merge_driver]
