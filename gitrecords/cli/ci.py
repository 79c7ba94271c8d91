"""Commands for CI and git hooks: validate, fmt, hooks."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import _git, layout
from ..errors import GitRecordsError, InvalidRecordError, RepositoryError, SchemaError
from ..record import Record
from ..repository import DEFAULT_CONFIG, Repository
from ._common import DataError, ProblemsError, State, UsageFailure, short
from ._output import Progress, echo_json, note

if TYPE_CHECKING:  # imported where used: the checks and hooks modules cost 25 ms at start-up
    from .. import checks

FORMATS = ("text", "json", "github")


def open_any(ctx: click.Context, from_env: bool = False) -> Repository:
    """The repository of ``--repo`` (or around the current directory), without requiring
    its branch to exist: a CI clone is often on a detached HEAD."""
    state = ctx.ensure_object(State)
    path = state.repo_path
    if path is None:
        found = _git.discover(os.getcwd())
        if found is None:
            raise UsageFailure(
                f"no data repository here ({os.getcwd()} is not inside a git repository): "
                "use --repo PATH or set GITRECORDS_REPO"
            )
        path = found
    try:
        repo = Repository(
            path, branch=state.branch, from_env=from_env, lock_wait=state.wait, allow_shallow=True
        )
    except RepositoryError as err:
        raise UsageFailure(f"{err} (from --repo or GITRECORDS_REPO)") from None
    ctx.find_root().call_on_close(repo.close)
    return repo


# -- validate ------------------------------------------------------------------------


def _is_id(text: str) -> bool:
    try:
        layout.normalize_id(text)
    except InvalidRecordError:
        return False
    return True


def _staged_tree(repo: Repository) -> str:
    """The tree the index (staging area) would commit, written as git write-tree does."""
    if repo.bare:
        raise UsageFailure(f"{repo.path} is a bare repository: --staged needs a working clone")
    try:
        return _git.git(str(repo.git_dir), "write-tree").stdout.decode().strip()
    except RepositoryError as err:
        raise DataError(f"cannot read the staged files: {err}") from None


def _escape(text: str, property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_annotation(problem: checks.Problem, level: str = "error") -> str:
    """A GitHub Actions ``::error`` (or ``::warning``) workflow command for ``problem``."""
    props = [f"file={_escape(problem.path, True)}"]
    if problem.line:
        props.append(f"line={problem.line}")
    props.append(f"title={_escape('gitrecords ' + problem.check, True)}")
    text = f"{problem.pointer}: {problem.message}" if problem.pointer else problem.message
    return f"::{level} {','.join(props)}::{_escape(text)}"


def show_report(report: checks.Report, output_format: str, head_label: str | None = None) -> None:
    """Print the problems (stdout) and exit 1 if there are any; else a note on stderr."""
    if output_format == "json":
        echo_json(report.to_dict())
    else:
        for problem in report.problems:
            click.echo(github_annotation(problem) if output_format == "github" else str(problem))
        for warning in report.warnings:
            shown = (
                github_annotation(warning, "warning") if output_format == "github" else f"warning: {warning}"
            )
            click.echo(shown, err=output_format != "github")
    summary = report.summary()
    if report.base is not None or head_label is not None:
        span = head_label or short(report.head)
        if report.base is not None:
            span = f"{short(report.base)}..{span}"
        summary = f"{span}: {summary}"
    if not report.ok:
        raise DataError(summary)
    note(summary)


@click.command()
@click.argument("targets", nargs=-1, metavar="[RANGE | REVISION | ID... | QUERY]")
@click.option(
    "--since",
    metavar="BASE",
    help="Check only what changed since BASE (the same as BASE..HEAD).",
)
@click.option(
    "--staged",
    is_flag=True,
    help="Check what 'git commit' would commit (the staged files) against HEAD: for pre-commit hooks.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for scripts, github for annotations on a pull request.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    help="Processes that check records (default: one per core for large checks).",
)
@click.option(
    "--schema",
    metavar="NEW",
    help="Check the live records (those QUERY selects, or IDs) against the schema NEW of the store "
    "instead of their own: which would fail after 'edit --schema NEW'. Writes nothing.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    targets: tuple[str, ...],
    since: str | None,
    staged: bool,
    output_format: str,
    as_json: bool,
    workers: int | None,
    schema: str | None,
) -> None:
    """Check the records, the schema store and the configuration; report every problem.

    Without arguments, checks the whole tree of the branch (HEAD): every record
    file is valid, canonical JSON at its place in the layout and validates
    against its $schema; records/ holds nothing else; PIDs are unique; the
    schemas are valid. With RANGE (BASE..HEAD) or --since BASE, checks only
    the records the range adds or changes (all of them if it changes the
    schemas or gitrecords.json), and that record files it removes were hard
    deletes. Like 'git diff BASE...HEAD', the changes are taken from the merge
    base. REVISION checks the whole tree of another commit; IDs check those
    records only. Everything is read from git objects, so it works in bare
    repositories and shallow clones. Prints each problem as
    'path:line: [check] pointer: message' and exits with 1 if there is any.

    --schema NEW checks, before a migration, which live records of the
    branch (every one, those QUERY selects in the search syntax, or IDs)
    would fail under the schema NEW of the store, and why, as 'gitrecords
    edit --schema NEW' would check them.

    \b
    Examples:
      gitrecords validate
      gitrecords validate origin/main..HEAD --format github
      gitrecords validate --since main --json | jq '.problems[].path'
      gitrecords validate --staged
      gitrecords validate --schema datacite/v2.json 'publicationYear:<2010'
    """
    from .. import checks

    if as_json:
        output_format = "json"
    repo = open_any(ctx)
    if schema is not None:
        if staged or since:
            raise UsageFailure("--schema checks the records of the branch: give no --since or --staged")
        _validate_schema(repo, schema, targets, output_format)
        return
    state = ctx.ensure_object(State)
    head: Any = f"refs/heads/{state.branch}" if state.branch else "HEAD"
    base: Any = None
    ids: list[uuid.UUID] | None = None
    ranged = checks.split_range(targets[0]) if len(targets) == 1 else None
    if staged and (targets or since):
        raise UsageFailure("--staged checks the staged files against HEAD: give no RANGE or --since")
    if ranged is not None and since:
        raise UsageFailure("give a RANGE or --since, not both")
    try:
        if staged:
            head = _staged_tree(repo)
            base = _head_or_none(repo)
        elif ranged is not None:
            head = ranged[1]
            base = checks.range_base(repo, ranged[0], head)
        elif targets and all(_is_id(t) for t in targets):
            if since:
                raise UsageFailure("--since checks a range, not record IDs")
            ids = [layout.normalize_id(t) for t in targets]
        elif len(targets) == 1:
            head = targets[0]
        elif targets:
            raise UsageFailure("give one RANGE (BASE..HEAD) or REVISION, or record IDs")
        if since:
            base = checks.range_base(repo, since, head)
        checks.resolve(repo, head)
    except RepositoryError as err:
        if head == "HEAD" and repo.git.head_is_unborn:
            raise UsageFailure(f"{repo.path} has no commit yet: there is nothing to check") from None
        raise UsageFailure(str(err)) from None
    # a range whose base is not in head's history (a hard delete rewrote it): its commits are
    # not new, and are not read one by one
    given = ranged[0] if ranged is not None else since
    rewritten = bool(given) and base is not None and checks.resolve(repo, given)[0] != base
    with Progress("Validating") as progress:
        report = checks.validate(
            repo,
            head,
            base,
            ids=ids,
            workers=workers,
            progress=progress,
            format_checker=Record.format_checker,
            validator_cls=Record.validator,
            rewritten=rewritten,
        )
    show_report(report, output_format, "staged" if staged else None)


def _validate_schema(repo: Repository, schema: str, targets: tuple[str, ...], output_format: str) -> None:
    from ..edit import validate_schema

    if repo.tip() is None:
        raise UsageFailure(f"{repo.path}: there is no branch {repo.branch!r}")
    try:
        repo.schema_store().resolve_schema(schema)
    except SchemaError as err:
        raise UsageFailure(f"--schema {schema}: {err}") from None
    selection: Any = " ".join(targets)
    if targets and all(_is_id(t) for t in targets):
        selection = [layout.normalize_id(t) for t in targets]
    with Progress("Validating") as progress:
        report = validate_schema(repo, schema, selection, progress=progress if progress.enabled else None)
    show_report(report, output_format, f"under {schema}")


def _head_or_none(repo: Repository) -> Any:
    from .. import checks

    try:
        return checks.resolve(repo, "HEAD")[0]
    except RepositoryError:
        return None  # the first commit: the staged tree is checked whole


# -- fmt -----------------------------------------------------------------------------


def _records_dir(root: Path) -> str:
    config = root / layout.CONFIG_FILE
    try:
        settings = layout.loads(config.read_bytes(), what=str(config))
    except (OSError, InvalidRecordError):
        settings = {}
    value = settings.get("records") if isinstance(settings, dict) else None
    return value if isinstance(value, str) and value else DEFAULT_CONFIG["records"]


def _working_clone(repo: Repository) -> Path:
    """The root of ``repo``'s working tree, which must hold a data repository: fmt rewrites no
    file of a source code repository, nor of a bare one."""
    if repo.bare or repo.git.workdir is None:
        raise UsageFailure(f"{repo.path} is a bare repository: fmt rewrites files in a working clone")
    root = Path(repo.git.workdir)
    if not (root / layout.CONFIG_FILE).is_file():
        raise UsageFailure(
            f"{root} is not a gitrecords data repository (no {layout.CONFIG_FILE} in its "
            "working tree): use --repo PATH, or create one with 'gitrecords init'"
        )
    return root


def _inside(root: Path, path: Path) -> Path:
    """``path``, refused when it is outside the working clone at ``root``."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise UsageFailure(f"{path} is outside the working clone {root}: fmt rewrites only its files")
    return path


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing: list the files that are not canonical.")
@click.pass_context
def fmt(ctx: click.Context, paths: tuple[Path, ...], check: bool) -> None:
    """Rewrite record files in canonical JSON form, in a working clone.

    Without PATHS, formats every .json file under the records folder of the
    working clone; PATHS may be files or folders in it. Prints the files it
    rewrote (with --check: that are not canonical; exit 1 if any). Files
    that are not valid JSON are reported and left alone. Records written by
    gitrecords are always canonical: this is for files edited by hand.

    \b
    Examples:
      gitrecords fmt
      gitrecords fmt --check
      gitrecords fmt records/74/a4/deadbeef-9fe4-43d3-a08f-38c2b309afba.json
    """
    from .. import checks

    repo = open_any(ctx)
    root = _working_clone(repo)
    roots = [_inside(root, path) for path in paths] if paths else [root / _records_dir(root)]
    git = repo.git  # line ends as the clone checks files out (core.autocrlf), for PATHS too
    files: list[Path] = []
    for path in roots:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.exists():
            files.append(path)
    changed = 0
    problems: list[str] = []
    for result in checks.fmt(files, check=check, git=git):
        if result.error is not None:
            where = f"{_shown(result.path)}:{result.line}" if result.line else _shown(result.path)
            problems.append(f"{where}: [json] {result.error}")
        elif result.changed:
            changed += 1
            click.echo(_shown(result.path))
    total = len(files)
    noun = "file" if total == 1 else "files"
    if check and changed:
        message = f"{changed} of {total} {noun} not in canonical form: run 'gitrecords fmt' to rewrite them"
        _fail(problems, message)
    if problems:
        _fail(problems, f"{len(problems)} of {total} {noun} not valid JSON; left as they are")
    if check:
        note(f"{total} {noun} in canonical form")
    elif changed:
        note(f"Reformatted {changed} of {total} {noun}")
    else:
        note(f"{total} {noun} already in canonical form")


def _fail(problems: list[str], message: str) -> None:
    if problems:
        raise ProblemsError(problems, message)
    raise DataError(message)


# -- hooks ---------------------------------------------------------------------------


@click.group()
def hooks() -> None:
    """Server-side git hooks that validate every push.

    'hooks install' writes a pre-receive hook into a bare repository; git
    then runs 'hooks pre-receive' on every push, which validates each pushed
    ref update like 'gitrecords validate OLD..NEW' and rejects the whole push
    if anything is wrong.

    \b
    Example:
      gitrecords --repo /srv/git/records.git hooks install
    """


def rewrite_options(f: Any) -> Any:
    f = click.option(
        "--allow-rewrite",
        "allow_rewrite",
        metavar="REF",
        multiple=True,
        help="A ref (or pattern, like 'refs/heads/wip/*') that may be rewritten anyway; repeatable.",
    )(f)
    f = click.option(
        "--reject-rewrites/--accept-rewrites",
        default=True,
        show_default=True,
        help="Reject non-fast-forward updates (force pushes that rewrite history, which could bring "
        "back what a hard delete removed); --accept-rewrites allows them on every ref.",
    )(f)
    return f


@hooks.command("install")
@rewrite_options
@click.option(
    "--notify",
    "notify",
    metavar="URL",
    multiple=True,
    help="Also write a post-receive hook that tells the read replica at URL (gitrecords serve "
    "--follow) to fetch after each push, in the background; repeatable.",
)
@click.option("--force", is_flag=True, help="Replace hooks that gitrecords did not write.")
@click.pass_context
def hooks_install(
    ctx: click.Context,
    reject_rewrites: bool,
    allow_rewrite: tuple[str, ...],
    notify: tuple[str, ...],
    force: bool,
) -> None:
    """Write the pre-receive hook (and with --notify the post-receive hook) into the repository.

    The hook runs this gitrecords, with the Python that runs this command;
    install it again after moving gitrecords to another environment. The
    post-receive hook POSTs to URL/_fetch with curl (else Python), never
    waiting for an answer: a push never fails or waits because a replica is down.

    \b
    Examples:
      gitrecords --repo records.git hooks install
      gitrecords --repo records.git hooks install --allow-rewrite 'wip/*'
      gitrecords --repo records.git hooks install --accept-rewrites
      gitrecords --repo records.git hooks install --notify http://replica1:5000 --notify http://replica2:5000
    """
    from .. import githooks

    repo = open_any(ctx)
    if allow_rewrite and not reject_rewrites:
        raise UsageFailure("--allow-rewrite makes no sense with --accept-rewrites")
    try:
        path = githooks.install(
            repo, reject_rewrites=reject_rewrites, allow_rewrite=allow_rewrite, force=force
        )
        notified = githooks.install_notify(repo, notify, force=force) if notify else None
    except GitRecordsError as err:
        raise UsageFailure(str(err)) from None
    if not repo.bare:
        note(f"{repo.path} is not bare: the hook runs on pushes into it, not on its own commits")
    what = "validates every push"
    if reject_rewrites:
        what += " and rejects non-fast-forward updates"
        if allow_rewrite:
            what += f" except to {', '.join(githooks.normalise_refs(allow_rewrite))}"
    note(f"Installed {path} ({what})")
    if notified is not None:
        note(f"Installed {notified} (tells {', '.join(notify)} to fetch after each push)")


@hooks.command("pre-receive")
@rewrite_options
@click.option("-j", "--workers", type=click.IntRange(min=1), help="Processes that check records.")
def hooks_pre_receive(reject_rewrites: bool, allow_rewrite: tuple[str, ...], workers: int | None) -> None:
    """Validate the ref updates on stdin (what the installed hook runs).

    Reads '<old> <new> <ref>' lines, as git gives a pre-receive hook, opens
    the repository from git's environment (so that the pushed objects, still
    in quarantine, are visible) and exits with 1, listing every problem, if
    any update is wrong.

    \b
    Example:
      echo "$OLD $NEW refs/heads/main" | GIT_DIR=records.git gitrecords hooks pre-receive
    """
    from .. import githooks

    try:
        repo = Repository(os.environ.get("GIT_DIR", "."), from_env=True)
    except RepositoryError as err:
        raise UsageFailure(f"{err}: run this from a git hook, or set GIT_DIR") from None
    indexed = None
    try:
        updates = githooks.parse_updates(sys.stdin.read())
        indexed = githooks.server_index(repo)
        results = githooks.check_push(
            repo,
            updates,
            reject_rewrites=reject_rewrites,
            allow_rewrite=allow_rewrite,
            workers=workers,
            format_checker=Record.format_checker,
            validator_cls=Record.validator,
            pid_index=indexed.index if indexed is not None else None,
        )
    finally:
        if indexed is not None:
            indexed.close()
        repo.close()
    rejected = 0
    for result in results:
        if result.refused is not None:
            rejected += 1
            click.echo(result.refused, err=True)
            continue
        report = result.report
        if report is None:
            continue
        if report.ok:
            click.echo(f"{result.update.ref}: {report.summary()} ({result.scope})", err=True)
            continue
        rejected += 1
        click.echo(f"{result.update.ref}: {report.summary()} ({result.scope}):", err=True)
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
    if rejected:
        noun = "update" if rejected == 1 else "updates"
        raise DataError(
            f"push rejected ({rejected} ref {noun}): fix the problems above "
            "('gitrecords validate' shows them before you push), commit and push again"
        )


COMMANDS = [validate, fmt, hooks]
