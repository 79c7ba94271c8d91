"""The git merge driver: plain ``git merge``/``git pull`` in a clone merge records like gitrecords."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import fsck, git

from gitrecords import Record, Repository, layout
from gitrecords.replication import driver_command, install_merge_driver, push

pytestmark = pytest.mark.usefixtures("curator_identity")


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc


def clone(server: Repository, dest: Path) -> Repository:
    subprocess.run(["git", "clone", "--quiet", f"file://{server.path}", str(dest)], check=True)
    return Repository(dest)


def edit(repo: Repository, record_id: uuid.UUID, **changes: object) -> None:
    record = Record.get_record(record_id, repo=repo)
    record.update(changes)
    record.commit()


@pytest.fixture
def server(tmp_path: Path) -> Repository:
    return Repository.init(tmp_path / "server.git")


@pytest.fixture
def rec(server: Repository) -> uuid.UUID:
    return Record.create({"title": "T", "year": 2020, "tags": ["a"]}, repo=server).id


@pytest.fixture
def work(server: Repository, rec: uuid.UUID, tmp_path: Path) -> Repository:
    return clone(server, tmp_path / "work")


def test_install_in_a_working_clone_and_a_bare_repository(work: Repository, server: Repository, gr) -> None:  # type: ignore[no-untyped-def]
    result = gr(work, "merge-driver", "install")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Installed the gitrecords merge driver for records/**/*.json (")
    assert gr(work, "merge-driver", "install").exit_code == 0  # installing again changes nothing
    assert (work.path / ".gitattributes").read_text() == "records/**/*.json merge=gitrecords\n"
    assert git(work, "config", "merge.gitrecords.driver").strip() == driver_command()
    assert git(work, "config", "merge.gitrecords.name").strip().startswith("gitrecords: ")
    path = work.path_for(uuid.uuid4())
    assert sh(work.path, "check-attr", "merge", "--", path).stdout == f"{path}: merge: gitrecords\n"
    assert sh(work.path, "check-attr", "merge", "--", "gitrecords.json").stdout == (
        "gitrecords.json: merge: unspecified\n"
    )

    attributes = server.git_dir / "info" / "attributes"
    attributes.parent.mkdir(exist_ok=True)
    attributes.write_text("*.bin binary")  # an existing file without a final newline
    install_merge_driver(server, command="gitrecords merge-driver %O %A %B %P")
    assert attributes.read_text() == "*.bin binary\nrecords/**/*.json merge=gitrecords\n"
    assert git(server, "config", "merge.gitrecords.driver").strip() == "gitrecords merge-driver %O %A %B %P"
    assert not (server.path / ".gitattributes").exists()


def branches_editing(
    work: Repository, rec: uuid.UUID, theirs: dict[str, object], ours: dict[str, object]
) -> None:
    """Branch 'other' changes ``theirs``; main (checked out) changes ``ours``."""
    sh(work.path, "branch", "other")
    other = Repository(work.path, branch="other")  # not checked out: writes only the branch
    edit(other, rec, **theirs)
    edit(work, rec, **ours)


def test_git_merge_merges_adjacent_fields_that_a_line_merge_cannot(work: Repository, rec: uuid.UUID) -> None:
    # "title" and "year" are neighbouring lines of the canonical file: git's text merge conflicts
    branches_editing(work, rec, theirs={"title": "theirs"}, ours={"year": 2021})
    proc = sh(work.path, "merge", "--no-edit", "other", check=False)
    assert proc.returncode == 1 and "CONFLICT (content)" in proc.stdout
    sh(work.path, "merge", "--abort")

    install_merge_driver(work)
    proc = sh(work.path, "merge", "--no-edit", "other", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = {"title": "theirs", "year": 2021, "tags": ["a"]}
    assert (work.path / work.path_for(rec)).read_bytes() == layout.dumps(merged)
    assert sh(work.path, "status", "--porcelain").stdout == "?? .gitattributes\n"
    assert Record.get_record(rec, repo=work) == merged
    # the merge commit is one revision on the first-parent history
    assert Record.get_record(rec, repo=work).revision_id == 2
    assert [r["year"] for r in Record.get_record(rec, repo=work).revisions] == [2020, 2021, 2021]
    fsck(work)


def test_git_merge_stops_on_a_conflict_with_our_file_and_a_report(work: Repository, rec: uuid.UUID) -> None:
    install_merge_driver(work)
    branches_editing(work, rec, theirs={"title": "theirs", "tags": ["b"]}, ours={"title": "ours"})
    proc = sh(work.path, "merge", "--no-edit", "other", check=False)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert f'record {rec} /title: changed on both sides: base "T", ours "ours", theirs "theirs"' in output
    path = work.path_for(rec)
    assert sh(work.path, "diff", "--name-only", "--diff-filter=U").stdout == f"{path}\n"
    # the file holds our version, valid JSON without conflict markers
    assert json.loads((work.path / path).read_text()) == {"title": "ours", "year": 2020, "tags": ["a"]}


def test_git_merge_of_criss_cross_histories_conflicts_where_the_bases_disagree(
    work: Repository, rec: uuid.UUID
) -> None:
    """main and other set /year differently, each merges the other's commit keeping its own
    value; the next plain git merge must report /year again. git merges the two merge bases
    with merge.gitrecords.recursive's driver: with the driver itself there, the virtual base
    kept main's value and other's won without a conflict."""
    install_merge_driver(work)
    assert git(work, "config", "merge.gitrecords.recursive").strip() == "gitrecords-base"
    assert "--virtual-base" in git(work, "config", "merge.gitrecords-base.driver")
    branches_editing(work, rec, theirs={"year": 2}, ours={"year": 1})
    path = work.path_for(rec)
    first_ours, first_theirs = git(work, "rev-parse", "main").strip(), git(work, "rev-parse", "other").strip()
    for branch, merged in (("main", first_theirs), ("other", first_ours)):
        sh(work.path, "checkout", "-q", branch)
        assert sh(work.path, "merge", "--no-edit", merged, check=False).returncode == 1
        sh(work.path, "add", path)  # the driver left our version in the file: keep it
        sh(work.path, "commit", "-q", "--no-edit")
    sh(work.path, "checkout", "-q", "main")
    assert len(git(work, "merge-base", "--all", "main", "other").split()) == 2
    edit(work, rec, title="main again")
    proc = sh(work.path, "merge", "--no-edit", "other", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    shown = "changed on both sides: base (the merge bases disagree), ours 1, theirs 2"
    assert f"record {rec} /year: {shown}" in output
    assert json.loads((work.path / path).read_text())["year"] == 1
    sh(work.path, "merge", "--abort")
    fsck(work)


def test_the_base_driver_ignores_a_strategy_of_the_drivers_command(
    files: tuple[Path, Path, Path], gr
) -> None:  # type: ignore[no-untyped-def]
    """A driver installed with --command '... merge-driver --strategy theirs ...' gets the same
    words for git's inner merges plus --virtual-base: that merge must not fail (git then went on
    with a base of its own), and the strategy is for the real merge only."""
    base, ours, theirs = files
    args = ("--virtual-base", "--strategy", "theirs", str(base), str(ours), str(theirs))
    result = gr(None, "merge-driver", *args)
    assert result.exit_code == 0, result.stderr
    from gitrecords.replication import base_driver_command

    assert base_driver_command("gitrecords merge-driver --strategy theirs %O %A %B %P") == (
        "gitrecords merge-driver --virtual-base --strategy theirs %O %A %B %P"
    )


def test_git_pull_in_a_clone_uses_the_driver(
    server: Repository, rec: uuid.UUID, work: Repository, tmp_path: Path
) -> None:
    other = clone(server, tmp_path / "other")
    edit(other, rec, title="from the server")
    push(other)
    install_merge_driver(work)
    edit(work, rec, tags=["a", "local"])
    proc = sh(work.path, "pull", "--no-rebase", "--no-edit", "origin", "main", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = {"title": "from the server", "year": 2020, "tags": ["a", "local"]}
    assert Record.get_record(rec, repo=work) == merged
    assert (work.path / work.path_for(rec)).read_bytes() == layout.dumps(merged)
    # git pull makes the local tip the first parent: the merge is one more local revision
    assert [r["title"] for r in Record.get_record(rec, repo=work).revisions] == ["T", "T", "from the server"]
    fresh = Repository(work.path)
    fresh.reindex()
    assert fresh.index.revisions(rec) == work.index.revisions(rec)
    fsck(work)


# -- the driver command itself --------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    paths = (tmp_path / "base", tmp_path / "ours", tmp_path / "theirs")
    for path, data in zip(
        paths,
        ({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"b": 3, "a": 1}),
        strict=True,
    ):
        path.write_text(json.dumps(data))  # not canonical: the driver writes canonical JSON
    return paths


def test_driver_writes_the_merged_record_into_ours(files: tuple[Path, Path, Path], gr) -> None:  # type: ignore[no-untyped-def]
    base, ours, theirs = files
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs), "records/aa/bb/x.json")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert ours.read_bytes() == layout.dumps({"a": 2, "b": 3})


def test_driver_conflict_leaves_ours_and_exits_1(files: tuple[Path, Path, Path], gr) -> None:  # type: ignore[no-untyped-def]
    base, ours, theirs = files
    theirs.write_text('{"a": 5, "b": 1}')
    before = ours.read_bytes()
    rid = "deadbeef-9fe4-43d3-a08f-38c2b309afba"
    path = layout.path_for(rid)
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs), path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"record {rid} /a: changed on both sides: base 1, ours 2, theirs 5\n"
        f"Error: {path}: 1 conflict; the file keeps our version: edit it (or 'git checkout --theirs' it), "
        "then 'git add' it\n"
    )
    assert ours.read_bytes() == before
    result = gr(None, "merge-driver", "--strategy", "theirs", str(base), str(ours), str(theirs), path)
    assert result.exit_code == 0
    assert ours.read_bytes() == layout.dumps({"a": 5, "b": 1})


def test_driver_edit_versus_delete_and_new_files(files: tuple[Path, Path, Path], gr) -> None:  # type: ignore[no-untyped-def]
    base, ours, theirs = files
    theirs.write_bytes(layout.dumps(layout.tombstone(datetime.now(UTC))))
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs))
    assert result.exit_code == 1
    assert result.stderr.startswith("record: deleted on theirs, changed on ours: base {")
    # git gives an empty base file when both sides added the file
    base.write_text("")
    theirs.write_text('{"c": 1}')
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs))
    assert result.exit_code == 0
    assert json.loads(ours.read_text()) == {"a": 2, "b": 1, "c": 1}


def test_driver_errors(files: tuple[Path, Path, Path], gr) -> None:  # type: ignore[no-untyped-def]
    base, ours, theirs = files
    theirs.write_text("<<<<<<< HEAD\n")
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs), "x.json")
    assert result.exit_code == 1
    assert result.stderr == "Error: x.json (theirs) is not valid JSON: Expecting value (line 1 column 1)\n"
    result = gr(None, "merge-driver", str(base), str(ours))
    assert result.exit_code == 2
    assert result.stderr == "Error: give BASE OURS THEIRS [PATH] (git's %O %A %B %P), or 'install'\n"
    result = gr(None, "merge-driver", str(base), str(ours), str(theirs), "--command", "x")
    assert result.exit_code == 2 and result.stderr == "Error: --command is for install\n"


def test_duplicate_pids_from_a_plain_git_pull_are_reported(
    work: Repository, server: Repository, tmp_path: Path, gr
) -> None:  # type: ignore[no-untyped-def]
    """Two replicas each give a new record recid 7; a plain `git pull` (the driver merges no file:
    the records are different files) joins them. validate, in a range and whole, names both
    (issue 18, 25); the index keeps both owners and lookup_pid names them."""
    install_merge_driver(work)
    other = clone(server, tmp_path / "other")
    theirs = Record.create({"title": "theirs", "control_number": "7"}, repo=other)
    push(other)
    ours = Record.create({"title": "ours", "control_number": "7"}, repo=work)
    sh(work.path, "pull", "--quiet", "--no-rebase", "--no-edit", "origin", "main")
    for args in (("validate", "origin/main..HEAD", "--json"), ("validate", "HEAD", "--json")):
        result = gr(work, *args)
        assert result.exit_code == 1, args
        problems = [p for p in json.loads(result.stdout)["problems"] if p["check"] == "pid"]
        assert {p["id"] for p in problems} & {str(ours.id), str(theirs.id)}, args
    fresh = Repository(work.path)
    fresh.sync_index()
    assert sorted(fresh.index.pid_owners("recid", "7")) == sorted([ours.id, theirs.id])
    assert [t for t, v, _owners in fresh.index.duplicate_pids()] == ["recid"]
