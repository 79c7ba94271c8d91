"""Non-bare data repositories: writes keep the checked-out files and the index in step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE_REPO, fsck

from gitrecords import Record, Repository, layout
from gitrecords.errors import GitRecordsError, LocalChangesError


def run(work: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="W", GIT_AUTHOR_EMAIL="w@example.org")
    env.update(GIT_COMMITTER_NAME="W", GIT_COMMITTER_EMAIL="w@example.org")
    proc = subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def status(work: Path) -> str:
    return run(work, "status", "--porcelain", "--untracked-files=all")


def tip(work: Path) -> str:
    return run(work, "rev-parse", "main").strip()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def clone(work: Path) -> Repository:
    return Repository.init(work, bare=False)


def test_init_checks_out_the_branch(clone: Repository, work: Path) -> None:
    assert not clone.bare
    assert (work / ".git").is_dir()
    assert json.loads((work / "gitrecords.json").read_text())["branch"] == "main"
    assert run(work, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert status(work) == ""


def test_writes_update_files_and_index(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    file = work / clone.path_for(rec.id)
    assert file.read_bytes() == layout.dumps({"title": "v0"})
    assert status(work) == ""

    rec["title"] = "v1"
    rec.commit()
    assert json.loads(file.read_text()) == {"title": "v1"}
    assert status(work) == ""

    rec.delete()
    assert layout.is_tombstone(json.loads(file.read_text()))
    assert status(work) == ""

    rec.undelete()
    assert json.loads(file.read_text()) == {"title": "v1"}
    rec.revert(0)
    assert json.loads(file.read_text()) == {"title": "v0"}
    assert status(work) == ""

    with clone.transaction():
        others = [Record.create({"n": n}, repo=clone) for n in range(3)]
        rec["title"] = "in tx"
        rec.commit()
    assert status(work) == ""
    for other in others:
        assert json.loads((work / clone.path_for(other.id)).read_text()) == dict(other)

    clone.put_schema("example/thing.json", {"type": "object"})
    assert json.loads((work / "schemas/example/thing.json").read_text()) == {"type": "object"}
    assert status(work) == ""
    # what the index holds is what the commit holds
    assert run(work, "diff", "--cached", "--stat", "HEAD") == ""
    fsck(clone.git_dir)


def test_hard_delete_removes_the_file(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    keep = Record.create({"title": "keep"}, repo=clone)
    file = work / clone.path_for(rec.id)
    rec.delete(force=True)
    assert not file.exists()
    assert (work / clone.path_for(keep.id)).exists()
    assert (work / "purged.txt").read_text() == f"{rec.id}\n"
    assert status(work) == ""
    fsck(clone.git_dir)


def test_local_edits_block_writes_to_that_record(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    other = Record.create({"title": "other"}, repo=clone)
    file = work / clone.path_for(rec.id)
    file.write_text('{"title": "edited locally"}\n')
    before = tip(work)

    rec["title"] = "v1"
    with pytest.raises(LocalChangesError, match="local edits"):
        rec.commit()
    with pytest.raises(LocalChangesError):
        rec.delete()
    with pytest.raises(LocalChangesError):
        rec.delete(force=True)
    assert tip(work) == before
    assert file.read_text() == '{"title": "edited locally"}\n'  # the edit is kept
    assert status(work) == f" M {clone.path_for(rec.id)}\n"

    # writes to other records are fine
    other["title"] = "other v1"
    other.commit()
    assert tip(work) != before
    assert status(work) == f" M {clone.path_for(rec.id)}\n"

    # once the edit is restored, the write goes through
    run(work, "checkout", "--", clone.path_for(rec.id))
    rec.commit()
    assert json.loads(file.read_text()) == {"title": "v1"}
    assert status(work) == ""


def test_staged_changes_block_writes(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    path = clone.path_for(rec.id)
    (work / path).write_text('{"title": "staged"}\n')
    run(work, "add", path)
    before = tip(work)
    rec["title"] = "v1"
    with pytest.raises(LocalChangesError, match="staged changes"):
        rec.commit()
    assert tip(work) == before


def test_a_removed_file_blocks_writes(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    (work / clone.path_for(rec.id)).unlink()
    before = tip(work)
    rec["title"] = "v1"
    with pytest.raises(LocalChangesError, match="removed locally"):
        rec.commit()
    assert tip(work) == before


def test_an_untracked_file_blocks_a_create_with_that_id(clone: Repository, work: Path) -> None:
    import uuid

    record_id = uuid.uuid4()
    file = work / clone.path_for(record_id)
    file.parent.mkdir(parents=True)
    file.write_text('{"mine": true}\n')
    before = tip(work)
    with pytest.raises(LocalChangesError):
        Record.create({"theirs": True}, id_=record_id, repo=clone)
    assert tip(work) == before
    assert file.read_text() == '{"mine": true}\n'


def test_local_edits_to_a_schema_block_put_schema(clone: Repository, work: Path) -> None:
    clone.put_schema("s.json", {"type": "object"})
    (work / "schemas/s.json").write_text("{}\n")
    before = tip(work)
    with pytest.raises(LocalChangesError):
        clone.put_schema("s.json", {"type": "array"})
    assert tip(work) == before


def test_a_hard_delete_keeps_local_edits_to_purged_txt_and_to_files_of_another_branch(
    clone: Repository, work: Path
) -> None:
    """A hard delete writes purged.txt and removes the record's file from the clone whatever
    branch it has checked out: local edits to either are refused, nothing changed, as every
    write refuses to overwrite them."""
    rec = Record.create({"title": "v0"}, repo=clone)
    before = tip(work)
    (work / "purged.txt").write_text("a line of my own\n")  # untracked: purged.txt is new
    with pytest.raises(LocalChangesError, match=r"^purged.txt has local edits in "):
        Record.get_record(rec.id, repo=clone).delete(force=True)
    assert (work / "purged.txt").read_text() == "a line of my own\n" and tip(work) == before
    (work / "purged.txt").unlink()

    run(work, "checkout", "-q", "-b", "feature")
    file = work / clone.path_for(rec.id)
    file.write_text(file.read_text().replace("v0", "my edit"))
    with pytest.raises(LocalChangesError, match="has local edits in"):
        Record.get_record(rec.id, repo=clone).delete(force=True)
    assert "my edit" in file.read_text() and tip(work) == before
    run(work, "checkout", "-q", "--", clone.path_for(rec.id))
    Record.get_record(rec.id, repo=clone).delete(force=True)  # no local edits: it goes
    assert not file.exists() and status(work) == ""
    fsck(clone.git_dir)


def test_a_sparse_checkout_leaves_records_it_does_not_hold_out(clone: Repository, work: Path) -> None:
    """A record outside a sparse checkout (skip-worktree) is not a local removal: writes to it
    go through, its file stays out of the work tree, and git's index follows the branch."""
    inside = Record.create({"title": "in"}, repo=clone)
    outside = Record.create({"title": "out"}, repo=clone)
    inside_dir = clone.path_for(inside.id).rsplit("/", 1)[0]
    assert not clone.path_for(outside.id).startswith(inside_dir)
    run(work, "sparse-checkout", "set", "--no-cone", "/gitrecords.json", f"/{inside_dir}/")
    assert not (work / clone.path_for(outside.id)).exists()
    outside["title"] = "out, changed"
    outside.commit()
    assert not (work / clone.path_for(outside.id)).exists()
    assert status(work) == ""
    assert run(work, "ls-files", "-v", "--", clone.path_for(outside.id)).startswith("S ")
    assert Record.get_record(outside.id, repo=clone)["title"] == "out, changed"
    run(work, "sparse-checkout", "disable")
    assert json.loads((work / clone.path_for(outside.id)).read_text())["title"] == "out, changed"
    (work / clone.path_for(inside.id)).unlink()  # a real removal is still refused
    inside["title"] = "in, changed"
    with pytest.raises(LocalChangesError, match="was removed locally"):
        inside.commit()


def test_new_records_and_bulk_writes_in_a_cone_sparse_checkout(clone: Repository, work: Path) -> None:
    """In a cone-mode sparse checkout that leaves records/ out, a new record's file stays out as
    git's own checkout would leave it (only in the index, skip-worktree), and a bulk edit of
    more records than a command line can name goes through."""
    ids = clone.import_records([{"title": f"r{n}"} for n in range(150)]).ids
    run(work, "sparse-checkout", "set", "--cone", "schemas")
    assert not (work / clone.path_for(ids[0])).exists()
    new = Record.create({"title": "new"}, repo=clone)
    assert not (work / clone.path_for(new.id)).exists()
    assert run(work, "ls-files", "-v", "--", clone.path_for(new.id)).startswith("S ")
    report = clone.update_records(ids, [{"op": "add", "path": "/x", "value": 1}])
    assert report.changed == 150
    assert status(work) == ""
    run(work, "sparse-checkout", "disable")
    assert json.loads((work / clone.path_for(ids[-1])).read_text())["x"] == 1


def test_a_record_in_a_merge_conflict_is_refused_with_a_clear_error(clone: Repository, work: Path) -> None:
    """A write to a record whose file is in an unresolved merge conflict (git's index holds
    only its conflict stages) is refused, naming the file: it was an internal KeyError."""
    rec = Record.create({"title": "v0"}, repo=clone)
    run(work, "checkout", "-q", "-b", "other")
    path = clone.path_for(rec.id)
    (work / path).write_text(layout.dumps({"title": "other"}).decode())
    run(work, "commit", "-qam", "other")
    run(work, "checkout", "-q", "main")
    (work / path).write_text(layout.dumps({"title": "main"}).decode())
    run(work, "commit", "-qam", "main")
    with pytest.raises(AssertionError, match="git merge other failed"):  # stops on the conflict
        run(work, "merge", "other")
    record = Record.get_record(rec.id, repo=clone)
    record["title"] = "resolved?"
    with pytest.raises(LocalChangesError, match=rf"^{path} has an unresolved merge conflict in "):
        record.commit()


def test_another_branch_checked_out(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    run(work, "checkout", "-q", "-b", "draft")
    rec["title"] = "v1 on main"
    rec.commit()  # main is not checked out: the work tree is left alone
    assert json.loads((work / clone.path_for(rec.id)).read_text()) == {"title": "v0"}
    assert status(work) == ""
    run(work, "checkout", "-q", "main")
    assert json.loads((work / clone.path_for(rec.id)).read_text()) == {"title": "v1 on main"}
    assert status(work) == ""


def test_commits_made_in_the_clone_by_git_are_seen(clone: Repository, work: Path) -> None:
    rec = Record.create({"title": "v0"}, repo=clone)
    (work / clone.path_for(rec.id)).write_bytes(layout.dumps({"title": "by git"}))
    run(work, "commit", "-q", "-am", "edit with git")
    got = Record.get_record(rec.id, repo=clone)
    assert got == {"title": "by git"}
    assert got.revision_id == 1
    got["title"] = "v2"
    got.commit()
    assert status(work) == ""


def test_init_from_the_sample_into_a_working_clone(work: Path) -> None:
    clone = Repository.init(work, bare=False, from_dir=SAMPLE_REPO)
    files = sorted(p.relative_to(work).as_posix() for p in (work / "records").rglob("*.json"))
    assert len(files) == 60
    assert all(layout.id_from_path(f) is not None for f in files)
    assert status(work) == ""
    rec = Record.get_record(layout.id_from_path(files[0]), repo=clone)
    rec["version"] = "9.9"
    rec.commit()
    assert status(work) == ""
    # the repository can be opened by discovery-free path, as a working clone
    assert not Repository(work).bare


def test_a_clone_with_crlf_line_endings_can_be_written(tmp_path: Path) -> None:
    """core.autocrlf=true (Git for Windows' default): the checked-out files have CRLF line ends,
    the blobs LF. Every write was refused ('has local edits') in a clean clone."""
    server = Repository.init(tmp_path / "server.git", from_dir=SAMPLE_REPO)
    record_id = next(iter(server.ids()))
    work = tmp_path / "crlf"
    subprocess.run(
        ["git", "clone", "-q", "-c", "core.autocrlf=true", str(server.git_dir), str(work)], check=True
    )
    path = work / server.path_for(record_id)
    assert b"\r\n" in path.read_bytes()  # the test sees what a Windows clone has
    assert status(work) == ""
    clone = Repository(work)
    record = Record.get_record(record_id, repo=clone)
    record["publicationYear"] = "2001"
    record.commit()
    assert json.loads(path.read_text())["publicationYear"] == "2001"
    assert status(work) == ""
    # git sees every file in canonical form, whatever its line ends on disk
    checked = subprocess.run(
        [sys.executable, "-m", "gitrecords.cli", "fmt", "--check"], cwd=work, capture_output=True, text=True
    )
    assert (checked.returncode, checked.stderr) == (0, "60 files in canonical form\n")
    # a file edited by hand still blocks a write to its record
    path.write_bytes(path.read_bytes().replace(b'"2001"', b'"2002"'))
    record = Record.get_record(record_id, repo=clone)
    record["publicationYear"] = "2003"
    with pytest.raises(LocalChangesError, match="has local edits"):
        record.commit()
    fsck(clone)


def test_a_write_to_a_branch_checked_out_in_a_linked_worktree_updates_it(tmp_path: Path) -> None:
    """The clone is on another branch; 'git worktree add ../wt main' has main. A write to main
    left wt's files and index as they were: git status showed the write undone, staged, and the
    next plain commit there undid it."""
    server = Repository.init(tmp_path / "server.git", from_dir=SAMPLE_REPO)
    record_id = next(iter(server.ids()))
    work, linked = tmp_path / "work", tmp_path / "wt"
    subprocess.run(["git", "clone", "-q", str(server.git_dir), str(work)], check=True)
    run(work, "checkout", "-q", "-b", "feature")
    run(work, "worktree", "add", "-q", str(linked), "main")
    main = Repository(work, branch="main")
    record = Record.get_record(record_id, repo=main)
    record["publicationYear"] = "1999"
    record.commit()
    assert status(linked) == ""
    assert json.loads((linked / main.path_for(record_id)).read_text())["publicationYear"] == "1999"
    (linked / "notes.txt").write_text("a note\n")
    run(linked, "add", "notes.txt")
    run(linked, "commit", "-q", "-m", "a plain commit in the linked worktree")
    assert Record.get_record(record_id, repo=Repository(work, branch="main"))["publicationYear"] == "1999"
    # local edits there block a write to that record, as in the clone's own work tree
    file = linked / main.path_for(record_id)
    file.write_text(file.read_text().replace('"1999"', '"1998"'))
    record = Record.get_record(record_id, repo=Repository(work, branch="main"))
    record["publicationYear"] = "2000"
    with pytest.raises(LocalChangesError, match=f"has local edits in {linked}"):
        record.commit()
    fsck(main)


def linked_pair(tmp_path: Path) -> tuple[Repository, Path, Path]:
    """A bare repository of the sample with two linked worktrees: wtA on feature, wtB on main."""
    bare = Repository.init(tmp_path / "b.git", from_dir=SAMPLE_REPO)
    a, b = tmp_path / "wtA", tmp_path / "wtB"
    run(bare.git_dir, "worktree", "add", "-q", str(a), "-b", "feature")
    run(bare.git_dir, "worktree", "add", "-q", str(b), "main")
    return bare, a, b


def test_a_write_made_in_one_linked_worktree_updates_another(tmp_path: Path) -> None:
    """Opened in a linked worktree, the repository looked for the others under its own folder
    (b.git/worktrees/wtA/worktrees/...), found none on main, and left wtB stale."""
    _bare, a, b = linked_pair(tmp_path)
    inside = Repository(a, branch="main")
    created = Record.create({"title": "made from wtA"}, repo=inside)
    assert (b / inside.path_for(created.id)).exists()
    assert status(b) == ""


def test_a_hard_delete_in_a_linked_worktree_is_refused_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """In a linked worktree the purge refused every record as having staged changes (a false
    message); it now says where to run it. Run there, it removes the purged words from the
    linked worktrees' own search indexes too (each keeps them in its folder)."""
    bare, a, _b = linked_pair(tmp_path)
    inside = Repository(a)
    secret = Record.create({"title": "purgeme expedition"}, repo=inside)
    assert inside.search("purgeme").total == 1  # wtA's own search index has the word
    with pytest.raises(GitRecordsError, match="run it there, not in a linked worktree"):
        inside.hard_delete([secret.id])
    inside.close()
    Repository(bare.path, branch="feature").hard_delete([secret.id])
    for index in (bare.git_dir / "worktrees").glob("*/gitrecords/search-*.sqlite*"):
        assert b"purgeme" not in index.read_bytes(), index
    assert Repository(a).search("purgeme").total == 0
    fsck(bare)


def test_a_hard_delete_refuses_while_a_linked_worktree_has_refs_of_its_own(tmp_path: Path) -> None:
    """refs/worktree/* and refs/bisect/* of a linked worktree live in its own folder, which the
    repository's refs do not list: the hard delete left them naming commits it deleted (git
    fsck: invalid sha1 pointer). It refuses, nothing changed, until they are gone."""
    from gitrecords.errors import HardDeleteRefusedError

    bare, a, _b = linked_pair(tmp_path)
    secret = Record.create({"title": "purge me"}, repo=Repository(bare.path, branch="feature"))
    run(a, "update-ref", "refs/worktree/keep", "HEAD")
    before = run(bare.git_dir, "rev-parse", "feature")
    with pytest.raises(HardDeleteRefusedError, match=r"has refs of its own \(refs/worktree/keep\)"):
        Repository(bare.path, branch="feature").hard_delete([secret.id])
    assert run(bare.git_dir, "rev-parse", "feature") == before
    run(a, "update-ref", "-d", "refs/worktree/keep")
    Repository(bare.path, branch="feature").hard_delete([secret.id])
    fsck(bare.git_dir)


def test_a_hard_delete_killed_after_its_refs_moved_is_finished_by_the_next_write(
    clone: Repository, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between moving the refs and updating the clone, a hard delete left the purged
    files staged and purged.txt behind, and every later hard delete was refused (as local
    changes). It notes the clone's changes first: the next write finishes them."""
    from gitrecords.worktree import WorkingClone

    first = Record.create({"title": "one"}, repo=clone)
    second = Record.create({"title": "two"}, repo=clone)
    Record.create({"title": "kept"}, repo=clone)

    def killed(self, paths):  # type: ignore[no-untyped-def]
        raise SystemExit("killed")

    monkeypatch.setattr(WorkingClone, "forget", killed)
    with pytest.raises(SystemExit):
        clone.hard_delete([first.id])
    monkeypatch.undo()
    assert status(work) != ""  # the branch moved, the clone did not follow
    again = Repository(work)
    again.hard_delete([second.id])  # the note is replayed first: no "local changes"
    assert status(work) == ""
    assert not (work / again.path_for(first.id)).exists()
    assert set((work / "purged.txt").read_text().split()) == {str(first.id), str(second.id)}
    fsck(again.git_dir)
