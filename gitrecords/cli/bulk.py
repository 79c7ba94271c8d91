"""Commands over many records: list, export, import, reindex (validate is in ci.py; search in search.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import sys
import tempfile
import uuid
from array import array
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from .. import layout
from ..config import PURGED_FILE
from ..errors import BatchValidationError, GitRecordsError
from ..record import Record
from ..repository import Repository
from ._batch import Problem, Written, fail, report, write_items
from ._common import (
    DataError,
    UsageFailure,
    create_options,
    json_option,
    pass_repo,
    short,
    write_options,
)
from ._input import Item, label_for, parse_lines, read_bytes
from ._output import Progress, echo_json, echo_nl, note, printable, progress_iter
from .search import (
    NEWEST_FIRST,
    SORT_HELP,
    Unreadable,
    fields_option,
    find,
    load,
    output_format,
    print_rows,
)


def summary(data: dict[str, Any], skip: Collection[str] = ()) -> str | None:
    """A title-ish summary: ``title``, else DataCite's ``titles[0].title``, else the first string field."""
    title = data.get("title")
    if isinstance(title, str):
        return title
    titles = data.get("titles")
    if isinstance(titles, list) and titles and isinstance(titles[0], dict):
        first = titles[0].get("title")
        if isinstance(first, str):
            return first
    for key, value in data.items():
        if isinstance(value, str) and not key.startswith("$") and key not in skip:
            return value
    return None


#: the columns of list --csv and --table without --fields
LIST_COLUMNS = ["id", "revision_id", "updated", "title"]


@click.command("list")
@click.option("-q", "--query", metavar="QUERY", help="Only the records that match QUERY (see 'search').")
@click.option("--sort", metavar="FIELD", help=SORT_HELP)
@click.option("--limit", metavar="N", type=click.IntRange(min=1), help="List at most N records.")
@click.option("--with-deleted", is_flag=True, help="Include soft-deleted records.")
@click.option(
    "--count", is_flag=True, help="Print only the number of records (at most --limit, as 'list' lists)."
)
@json_option
@click.option("--nl", is_flag=True, help="Print one JSON object per line (JSON Lines).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header, then one row per record.")
@click.option(
    "--table", "as_table", is_flag=True, help="Print a table of the --fields, cut to fit the terminal."
)
@fields_option("Default: id, revision_id, updated, title (and is_deleted with --with-deleted).")
@pass_repo
def list_(
    repo: Repository,
    query: str | None,
    sort: str | None,
    limit: int | None,
    with_deleted: bool,
    count: bool,
    as_json: bool,
    nl: bool,
    as_csv: bool,
    as_table: bool,
    fields: list[str] | None,
) -> None:
    """List the records: each id with its title (or another summary).

    --json prints one JSON array, --nl one object per line, each with id,
    revision_id, is_deleted and summary. --csv prints the --fields of each
    record (lists joined with "; "), --table the same as a table whose long
    cells are cut to fit the terminal. Plain 'list' goes through the
    records in storage order; with -q, --sort or --limit it asks the search
    index (see 'search'), most recently changed first unless --sort says
    otherwise.

    A record file that cannot be read (e.g. invalid JSON committed with
    plain git) is one line on stderr; the others are listed, and the exit
    code is 1.

    \b
    Examples:
      gitrecords list
      gitrecords list --count
      gitrecords list --nl | jq -r .summary
      gitrecords list --table
      gitrecords list --csv --fields id,publicationYear,creators.name > records.csv
      gitrecords list -q 'type:Software' --sort title
      gitrecords list -q 'publicationYear:>=2023' --count
    """
    fmt = output_format(as_json, nl, as_csv, as_table, fields)
    searched = query is not None or sort is not None or limit is not None
    if count:
        if searched:
            total = find(repo, query or "", with_deleted=with_deleted, limit=1).total
            click.echo(str(total if limit is None else min(total, limit)))
        else:
            click.echo(str(sum(1 for _ in repo.ids(with_deleted=with_deleted))))
        return
    if searched:
        sorted_by = sort if sort is not None else NEWEST_FIRST
        ids: Iterable[uuid.UUID] = find(
            repo, query or "", sort=sorted_by, limit=limit, with_deleted=with_deleted
        ).ids
    else:
        ids = repo.ids(with_deleted=with_deleted)
    unreadable = Unreadable()
    listed = 0

    def records() -> Iterator[tuple[uuid.UUID, Record | str]]:
        nonlocal listed
        for record_id in ids:
            record = load(repo, record_id)
            if record is None:  # gone since the ids were read
                continue
            if isinstance(record, str):
                unreadable.report(record)
            listed += 1
            yield record_id, record

    if fmt in ("csv", "table"):
        columns = fields or LIST_COLUMNS + (["is_deleted"] if with_deleted else [])
        print_rows(repo, records(), columns, fmt)
        unreadable.check(listed)
        return
    skip = set((repo.config.get("pids") or {}).values())
    rows: list[dict[str, Any]] = []
    for record_id, record in records():
        if isinstance(record, str):
            row: dict[str, Any] = {
                "id": str(record_id),
                "revision_id": None,
                "is_deleted": None,
                "summary": None,
                "error": record,
            }
        else:
            row = {
                "id": str(record_id),
                "revision_id": record.revision_id,
                "is_deleted": record.is_deleted,
                "summary": None if record.is_deleted else summary(record, skip),
            }
        if nl:
            echo_nl(row)
        elif as_json:
            rows.append(row)
        elif isinstance(record, str):
            click.echo(f"{record_id}  (unreadable)")
        else:
            text = "(deleted)" if record.is_deleted else flatten(row["summary"])
            click.echo(f"{record_id}  {text}".rstrip())
    if as_json:
        echo_json(rows)
    unreadable.check(listed)


def flatten(text: str | None) -> str:
    """A summary on one line of a listing, with its control characters escaped."""
    return printable(" ".join(text.split())) if text else ""


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Write JSON Lines to this file instead of stdout.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Write a copy that 'init --from' reads back into this new directory: gitrecords.json, the "
    "schema store and one canonical <id>.json file per record, at their paths in the repository.",
)
@pass_repo
def export(repo: Repository, output: str, directory: str | None) -> None:
    """Export every live record.

    By default, JSON Lines on stdout: one {"id", "revision_id", "data"}
    object per record, which 'gitrecords import' reads back. With --dir,
    a working tree like a working clone's: gitrecords.json, the schema
    store (schemas/) and records/<h>/<h>/<id>.json, which
    'gitrecords init --from' makes into a repository again.

    A record file that cannot be read (e.g. invalid JSON committed with
    plain git) is one line on stderr; the others are exported, and the
    exit code is 1.

    \b
    Examples:
      gitrecords export > records.jsonl
      gitrecords export -o records.jsonl
      gitrecords export --dir snapshot/ && gitrecords init --from snapshot/ copy.git
    """
    if directory is not None and output != "-":
        raise UsageFailure("use -o/--output or --dir, not both")
    ids = list(repo.ids())
    unreadable = Unreadable()

    def records() -> Iterator[tuple[uuid.UUID, Record]]:
        # JSON Lines on stdout (-o /dev/stdout too): no bar drawn between them on a terminal
        streaming = directory is None and _is_stdout(output)
        for record_id in progress_iter(ids, "Exporting", len(ids), streaming=streaming):
            record = load(repo, record_id)
            if isinstance(record, str):
                unreadable.report(record)
            elif record is not None and not record.is_deleted:  # None, deleted: a write since
                yield record_id, record

    exported = 0
    extra = ""
    if directory is not None:
        root = Path(directory)
        if root.exists() and any(root.iterdir()):
            raise UsageFailure(f"{directory} already exists and is not empty")
        files = repo.config_and_schema_files()
        for path, data in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        schemas = len(files) - (layout.CONFIG_FILE in files) - (PURGED_FILE in files)
        extra = f" with {layout.CONFIG_FILE} and {schemas} schema file{'' if schemas == 1 else 's'}"
        if PURGED_FILE in files:
            extra += f" and {PURGED_FILE}"
        for record_id, record in records():
            target = root / repo.path_for(record_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(layout.dumps(dict(record)))
            exported += 1
    else:
        with open_output(output) as stream:
            for record_id, record in records():
                line = {"id": str(record_id), "revision_id": record.revision_id, "data": dict(record)}
                stream.write(_json_line(line))
                exported += 1
    if directory is not None or output != "-":
        note(f"Exported {exported} records to {directory or output}{extra}")
    unreadable.check(len(ids))


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def open_output(path: str) -> Iterator[IO[str]]:
    """``-o PATH`` opened for text: stdout for ``-`` (or a path that is stdout, as /dev/stdout);
    a regular file, or one that does not exist yet, is written to a temporary file renamed over
    it at the end, so a failed export leaves the old file whole; anything else (a FIFO, a
    device) is written in place, as a rename would replace it with a regular file."""
    try:
        info: os.stat_result | None = None if path == "-" else os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise UsageFailure(f"-o {path}: {err.strerror}") from None
    if _is_stdout(path, info):
        with click.open_file("-", "w", encoding="utf-8") as stream:
            yield stream
        return
    if info is not None and not stat.S_ISREG(info.st_mode):
        with _writing(path, _open_in_place(path)) as stream:
            yield stream
        return
    # a symlink stays a symlink: the file it points to is the one replaced
    target = os.path.realpath(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=os.path.dirname(target))
    except OSError as err:
        raise UsageFailure(f"-o {path}: {err.strerror}") from None
    try:
        if info is not None:
            os.fchmod(fd, stat.S_IMODE(info.st_mode))
        else:  # mkstemp's 0600, widened to what open() would give a new file
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with _writing(path, open(fd, "w", encoding="utf-8")) as stream:
            yield stream
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _open_in_place(path: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as err:
        raise UsageFailure(f"-o {path}: {err.strerror}") from None


@contextlib.contextmanager
def _writing(path: str, stream: IO[str]) -> Iterator[IO[str]]:
    """``stream``, closed at the end; a failed write (a full disk) names ``path`` (exit 1)."""
    try:
        with stream:
            yield stream
    except OSError as err:
        if err.strerror is None:
            raise
        raise DataError(f"{path}: {err.strerror}") from None


def _is_stdout(path: str, info: os.stat_result | None = None) -> bool:
    """Whether ``-o PATH`` writes to stdout: ``-``, or a path that is stdout (/dev/stdout);
    ``info`` is PATH's stat when known (None: looked up here)."""
    if path == "-":
        return True
    if info is None:
        try:
            info = os.stat(path)
        except OSError:
            return False
    return _same_file(info, _stdout_stat())


def _stdout_stat() -> os.stat_result | None:
    try:
        return os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # no file descriptor (tests)
        return None


def _same_file(a: os.stat_result, b: os.stat_result | None) -> bool:
    return b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


ENVELOPE_KEYS = {"id", "revision_id", "data"}

#: import's advice for a FILE that is one JSON document (it has no --nl: it reads lines only)
IMPORT_READS_LINES = "import reads JSON Lines, one record per line ('create' reads a document)"


def _unwrap(items: list[Item]) -> None:
    """Turn ``{"id": ..., "data": {...}}`` lines (as 'export' writes) into id + data.

    An envelope whose "data" is not an object is refused, as the fast path refuses it, not
    taken as a record's data."""
    problems: list[Problem] = []
    for item in items:
        data = item.data
        if not (isinstance(data, dict) and "data" in data and set(data) <= ENVELOPE_KEYS):
            continue
        if not isinstance(data["data"], dict):
            text = f"a record must be a JSON object, not {layout.json_type(data['data'])}"
            problems.append(Problem(text, "/data", where=item.where))
            continue
        item.data = data["data"]
        if data.get("id") is not None:
            try:
                item.id = layout.normalize_id(data["id"])
            except GitRecordsError as err:
                problems.append(Problem(str(err), "/id", where=item.where))
    if problems:
        fail(problems, len(items))


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@create_options
@write_options
@json_option
@pass_repo
def import_(
    repo: Repository,
    file: str,
    force: bool,
    pid_minters: tuple[str, ...] | None,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Import records from a JSON Lines FILE as one commit.

    FILE may be '-' for stdin. Each line is a record's data, or {"id": ..., "data": {...}} as 'export'
    writes it. Every record is checked before anything is written; the ids
    are printed one per line, in input order.

    \b
    Examples:
      gitrecords import records.jsonl -m "Import from the old system"
      gitrecords --repo old.git export | gitrecords --repo new.git import -
    """
    label = label_for(file)
    # minting (given, or the repository's "mint") and --force take the record-by-record path
    if force or pid_minters or (pid_minters is None and repo.config.get("mint")):
        items = parse_lines(read_bytes(file), label, IMPORT_READS_LINES)
        _unwrap(items)
        name = os.path.basename(label)

        def default_message(count: int) -> str:  # the records written: unchanged ones left out
            return f"import {count} record{'' if count == 1 else 's'} from {name}"

        written = write_items(
            repo,
            items,
            replace=force,
            pid_minters=pid_minters,
            message=message if message is not None else default_message,
            author=author,
            progress=True,
        )
        if not as_json:
            for record in written.records:
                click.echo(str(record.id))
        report("Imported", written, as_json)
        return
    _fast_import(repo, file, label, message, author, as_json)


def _fast_import(
    repo: Repository, file: str, label: str, message: str | None, author: str | None, as_json: bool
) -> None:
    """New records only: streamed through Repository.import_records (git fast-import)."""
    line_numbers = array("L")
    given_ids = bytearray()  # 1 where the input named the record's id
    unparsed = bytearray()  # 1 where the line went to the import as text, to be parsed there
    parse_errors: dict[int, str] = {}

    def items() -> Iterator[tuple[Any, Any]]:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")
        try:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                if line.endswith(b"\n"):  # a position in the line is within it, not past its end
                    line = line[:-1]
                line_numbers.append(number)
                if file != "-" and not _may_be_envelope(line):
                    given_ids.append(0)
                    unparsed.append(1)
                    yield None, line  # parsed (in parallel) by the import; see _parse_errors
                    continue
                unparsed.append(0)
                try:
                    data = layout.loads(line, what=f"{label} line {number}")
                except GitRecordsError as err:
                    given_ids.append(0)
                    parse_errors[len(line_numbers) - 1] = str(err)
                    yield None, line  # the worker reports it too; the message above names the line
                    continue
                if isinstance(data, dict) and "data" in data and set(data) <= ENVELOPE_KEYS:
                    given_ids.append(data.get("id") is not None)
                    yield data.get("id"), _parsed_value(data["data"])
                else:
                    given_ids.append(0)
                    yield None, _parsed_value(data)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    before = repo.tip()
    source = items()
    with Progress("Importing") as progress:
        if progress.enabled:  # a terminal: worth a first read of the input for the total
            progress.total = count_records(file)
        try:
            result = repo.import_records(
                source, message=message, author=author, source=os.path.basename(label), progress=progress
            )
        except BatchValidationError as err:
            parse_errors.update(_parse_errors(label, err.problems, unparsed, line_numbers))
            existing = [p for p in err.problems if p[3] == f"record {p[1]} already exists"]
            if existing and len(existing) == len(err.problems):
                shown = ", ".join(str(p[1]) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
                raise DataError(
                    f"{len(existing)} record{'' if len(existing) == 1 else 's'} already exist ({shown}): "
                    "use --force to write revisions"
                ) from None
            problems = [
                Problem(
                    _with_lines(text, line_numbers),
                    where,
                    uuid.UUID(record_id) if record_id else None,
                    f"{label} line {line_numbers[idx]}",
                    new=not given_ids[idx],
                )
                if idx not in parse_errors
                else Problem(parse_errors[idx], where=f"{label} line {line_numbers[idx]}", named=True)
                for idx, record_id, where, text in err.problems
            ]
            fail(problems, err.total)
        finally:
            source.close()
    written = Written([], result.commit_id or (str(before) if before else None), result.commit_id is not None)
    if as_json:
        echo_json(
            {
                "commit": written.commit,
                "records": [{"id": str(i), "revision_id": 0, "is_deleted": False} for i in result.ids],
            }
        )
    else:
        for record_id in result.ids:
            click.echo(str(record_id))
    count = len(result.ids)
    if written.changed:
        note(f"Imported {count} record{'' if count == 1 else 's'} (commit {short(written.commit)})")
    else:
        note("Nothing to write: the input holds no records")


def count_records(file: str) -> int | None:
    """The number of records (non-blank lines) in a JSON Lines file, or in stdin when it is a
    regular file (``import - < records.jsonl``); None when that cannot be known (a pipe, a
    FIFO, which is not opened: the import opens it once). Reads with ``os.pread``, so stdin
    is left where it was."""
    try:
        # a path is looked at before it is opened: opening a FIFO would take its input
        if file != "-" and not stat.S_ISREG(os.stat(file).st_mode):
            return None
        fd = sys.stdin.fileno() if file == "-" else os.open(file, os.O_RDONLY)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = 0
        rest = b""
        while chunk := os.pread(fd, 1 << 20, offset):
            offset += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            count += sum(1 for line in lines if line.strip())
        return count + (1 if rest.strip() else 0)
    except OSError:
        return None
    finally:
        if file != "-":
            os.close(fd)


def _may_be_envelope(line: bytes) -> bool:
    """False for a line that cannot be ``{"id": ..., "data": ...}``: no "data" key, even escaped."""
    return b'"data"' in line or b"\\u" in line


#: how the import words a line it could not parse: ``layout.loads(line, what="record")``
_UNPARSED_WHAT = "record"


def _parse_errors(
    label: str, problems: list[Any], unparsed: bytearray, line_numbers: array[int]
) -> dict[int, str]:
    """The messages of lines sent unparsed that do not parse, worded as when parsed here.

    The import parsed them with ``layout.loads(line, what="record")``, whose messages start
    with that ``what`` ("record is not valid JSON: ..."): the line's label takes its place.
    FILE is never read again (it may be a pipe)."""
    found: dict[int, str] = {}
    prefix = f"{_UNPARSED_WHAT} is "
    for idx, _record_id, where, text in problems:
        if where == "/" and unparsed[idx] and text.startswith(prefix):
            found[idx] = f"{label} line {line_numbers[idx]}{text[len(_UNPARSED_WHAT) :]}"
    return found


@click.command()
@pass_repo
def reindex(repo: Repository) -> None:
    """Rebuild the derived revision and PID index.

    Prints the number of revisions indexed. The index is a cache kept in
    the git directory; rebuilding it is always safe, e.g. after a history
    rewrite by other tools.

    \b
    Example:
      gitrecords reindex
    """
    count = repo.reindex()
    click.echo(str(count))
    note(f"Indexed {count} revisions")


COMMANDS = [list_, export, import_, reindex]  # validate: see ci.py


def _parsed_value(value: Any) -> Any:
    """A parsed line's value as the import takes it: a text is JSON text to the import (parsed
    again), so a string parsed here goes back as the JSON of that string (refused there as not
    an object, as ``create`` refuses it), never as the JSON inside it."""
    return json.dumps(value).encode() if isinstance(value, str) else value


#: "(also at 3)", "the record at 3": the import names another record by its place in the input
_OTHER_RECORD = re.compile(r"(also at|the record at) (\d+)\b")


def _with_lines(text: str, line_numbers: Any) -> str:
    """``text`` with the other records it names by their place in the input named by line."""

    def line(match: re.Match[str]) -> str:
        place = int(match[2])
        return f"{match[1]} line {line_numbers[place]}" if place < len(line_numbers) else match[0]

    return _OTHER_RECORD.sub(line, text)
