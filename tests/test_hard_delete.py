"""Hard delete: the record's content is purged from every commit, ref, reflog and the object store."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import annotated_tag, commit_file_by_plumbing, fsck, git

from gitrecords import GitRecordsError, NoResultFound, Record, RecordExistsError, Repository


def blob_history(repo: Repository, ref: str, path: str) -> list[str]:
    """The blob ids ``path`` had in the history of ``ref``, oldest first (zeros: removed)."""
    out = git(repo, "log", "--reverse", "--format=", "--raw", "--no-abbrev", "--no-renames", ref, "--", path)
    return [line.split()[3] for line in out.splitlines() if line.startswith(":")]


def commit_facts(repo: Repository, ref: str) -> list[tuple[str, ...]]:
    """(author, author date, committer date, message) of every commit of ``ref``, oldest first."""
    out = git(repo, "log", "--reverse", "--format=%an <%ae>%x1f%ad%x1f%cd%x1f%B%x1e", ref)
    return [tuple(entry.strip("\n").split("\x1f")) for entry in out.split("\x1e") if entry.strip()]


def exists(repo: Repository, oid: str) -> bool:
    """``git cat-file -e``: does the object store have ``oid``?"""
    proc = subprocess.run(["git", "--git-dir", str(repo.git_dir), "cat-file", "-e", oid], capture_output=True)
    return proc.returncode == 0


@dataclass
class Story:
    repo: Repository
    target: Record
    others: list[Record]
    twin: Record  # a record that shares one blob with the target
    target_blobs: set[str]
    shared_blob: str
    only_target_subjects: set[str]


@pytest.fixture
def story(repo: Repository) -> Story:
    """About 30 commits: the target and other records, a transaction touching both, an annotated
    and a lightweight tag, and a second branch on which the target changed too."""
    others = [Record.create({"title": f"other {n}", "n": n}, repo=repo) for n in range(3)]
    target = Record.create({"title": "secret v0", "ssn": "123-45-6789"}, repo=repo)
    only_target: set[str] = {f"create record {target.id}"}
    for n in range(1, 6):
        target["title"] = f"secret v{n}"
        target.commit(message=f"target edit {n}")
        only_target.add(f"target edit {n}")
        other = others[n % 3]
        other["n"] = other["n"] + 10
        other.commit(message=f"other edit {n}")
    with repo.transaction(message="mixed commit"):
        target["title"] = "secret mixed"
        target.commit()
        others[0]["mixed"] = True
        others[0].commit()
    twin = Record.create(
        {"title": "secret v2", "ssn": "123-45-6789"}, repo=repo
    )  # same bytes as target rev 2
    annotated_tag(repo, "v1", "release 1", "main")
    for n in range(6, 12):
        target["title"] = f"secret v{n}"
        target.commit(message=f"target edit {n}")
        only_target.add(f"target edit {n}")
        others[1]["n"] = others[1]["n"] + 1
        others[1].commit(message=f"other edit {n}")
    git(repo, "tag", "light", "main~2")
    git(repo, "branch", "archive", "main~4")
    # the target changes on the second branch as well
    archive = Repository(repo.path, branch="archive")
    on_archive = Record.get_record(target.id, repo=archive)
    on_archive["title"] = "secret on archive"
    on_archive.commit(message="archive: target edit")
    only_target.add("archive: target edit")
    extra = Record.create({"title": "archive only"}, repo=archive)
    others.append(extra)
    target.delete(message="soft delete target")
    only_target.add("soft delete target")
    archive.close()

    path = repo.path_for(target.id)
    blobs = {b for ref in ("main", "archive") for b in blob_history(repo, ref, path)}
    blobs.discard("0" * 40)
    shared = git(repo, "rev-parse", f"main:{repo.path_for(twin.id)}").strip()
    assert shared in blobs
    assert int(git(repo, "rev-list", "--count", "--all")) >= 30
    return Story(repo, target, others, twin, blobs, shared, only_target)


def test_hard_delete_purges_the_record_from_history(story: Story) -> None:
    repo, target = story.repo, story.target
    path = repo.path_for(target.id)
    refs = ("main", "archive", "v1", "light")
    all_others = [*story.others, story.twin]
    histories = {
        (r.id, ref): blob_history(repo, ref, repo.path_for(r.id)) for r in all_others for ref in refs
    }
    indexed = {r.id: [row.blob for row in repo.index.revisions(r.id)] for r in all_others}
    facts = {ref: commit_facts(repo, ref) for ref in ("main", "archive")}
    tag_message = git(repo, "tag", "-l", "--format=%(contents)", "v1")
    assert git(repo, "log", "--all", "--format=%H", "--", path) != ""
    assert all(exists(repo, blob) for blob in story.target_blobs)

    rec = Record.get_record(target.id, with_deleted=True, repo=repo)  # hard delete of a soft-deleted record
    assert rec.delete(force=True) is rec
    assert rec.is_deleted

    # no commit of any ref (or reflog) has the file; its blobs are gone unless another record shares them
    assert git(repo, "log", "--all", "--format=%H", "--", path) == ""
    assert git(repo, "log", "--all", "--reflog", "--format=%H", "--", path) == ""
    assert path not in git(repo, "rev-list", "--all", "--reflog", "--objects")
    for blob in story.target_blobs - {story.shared_blob}:
        assert not exists(repo, blob), blob
    assert exists(repo, story.shared_blob)
    assert git(repo, "reflog", "show", "archive") == ""  # expired; only main has the purge-log commit
    assert len(git(repo, "reflog", "show", "main").splitlines()) <= 1
    unreachable = git(repo, "fsck", "--unreachable", "--no-reflogs", "--no-progress")
    assert unreachable == ""
    fsck(repo)

    # every other record keeps exactly the same blobs, on every ref, in git and in the index
    for (record_id, ref), before in histories.items():
        assert blob_history(repo, ref, repo.path_for(record_id)) == before, (record_id, ref)
    for record_id, before in indexed.items():
        assert [row.blob for row in repo.index.revisions(record_id)] == before

    # commits that only changed the target are dropped; the others keep author, dates and message
    main_after = commit_facts(repo, "main")
    assert main_after[:-1] == [
        f for f in facts["main"] if f[3].splitlines()[0] not in story.only_target_subjects
    ]
    assert main_after[-1][3].splitlines()[0] == f"hard delete record {target.id}"
    assert "Gitrecords-Operation: hard-delete" in main_after[-1][3]
    assert commit_facts(repo, "archive") == [
        f for f in facts["archive"] if f[3].splitlines()[0] not in story.only_target_subjects
    ]
    assert git(repo, "log", "-1", "--format=%s", "archive").strip() == f"create record {story.others[-1].id}"
    # the tags survive, rewritten: the annotated one keeps its message
    assert git(repo, "cat-file", "-t", "v1").strip() == "tag"
    assert git(repo, "tag", "-l", "--format=%(contents)", "v1") == tag_message
    assert git(repo, "cat-file", "-t", "light").strip() == "commit"

    # the record is gone, and listed in purged.txt
    with pytest.raises(NoResultFound):
        Record.get_record(target.id, with_deleted=True, repo=repo)
    assert target.id not in set(repo.ids(with_deleted=True))
    assert git(repo, "show", "main:purged.txt").split() == [str(target.id)]
    assert Record.get_record(story.twin.id, repo=repo) == {"title": "secret v2", "ssn": "123-45-6789"}


def test_the_id_cannot_be_used_again(story: Story) -> None:
    """A hard-deleted id stays listed in purged.txt and the write path refuses it, as validate and
    the pre-receive hook do (issue 15, F8)."""
    repo, target = story.repo, story.target
    target.delete(force=True)
    before = git(repo, "rev-parse", "main").strip()
    with pytest.raises(RecordExistsError, match="was hard-deleted"):
        Record.create({"title": "new life"}, id_=target.id, repo=repo)
    assert git(repo, "rev-parse", "main").strip() == before
    assert Repository(repo.path).index.revisions(target.id) == []
    fsck(repo)


def test_other_handles_and_records_carry_on(story: Story) -> None:
    repo, target = story.repo, story.target
    other_handle = Repository(repo.path)
    other_handle.sync_index()
    stale_copy = Record.get_record(story.others[0].id, repo=repo)
    target.delete(force=True)

    # another Repository object notices the rewrite and rebuilds its index
    with pytest.raises(NoResultFound):
        Record.get_record(target.id, with_deleted=True, repo=other_handle)
    assert len(Record.get_record(story.others[0].id, repo=other_handle).revisions) == len(
        repo.index.revisions(story.others[0].id)
    )
    # a copy of another record read before the purge can still be committed: its blob did not change
    stale_copy["after"] = "purge"
    stale_copy.commit()
    assert Record.get_record(stale_copy.id, repo=other_handle)["after"] == "purge"
    fsck(repo)


def test_a_record_read_before_another_handle_purged_it_says_so(repo: Repository) -> None:
    record = Record.create({"secret": "s1"}, repo=repo)
    record["secret"] = "s2"
    record = record.commit()
    revisions = record.revisions
    copy = Record.get_record(record.id, repo=repo)
    Repository(repo.path).hard_delete([record.id])  # another request or process
    for read in (lambda: revisions[0], lambda: list(revisions), lambda: copy.revert(0)):
        with pytest.raises(NoResultFound, match="was hard-deleted"):
            read()


def test_hard_delete_purges_the_file_from_commits_made_before_the_records_folder_moved(
    tmp_path: Path,
) -> None:
    """Each commit is read with its own gitrecords.json: before "records" moved to data/, the
    record's file was under records/. The hard delete removes it there too; it left that
    file, and the content, in every commit from before the move."""
    import json

    work = tmp_path / "work"
    repo = Repository.init(work, bare=False)
    secret = Record.create({"title": "zyxqv secret"}, repo=repo)
    keep = Record.create({"title": "kept"}, repo=repo)
    identity = ["-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "-C", str(work), "mv", "records", "data"], check=True)
    config = json.loads((work / "gitrecords.json").read_text())
    (work / "gitrecords.json").write_text(json.dumps({**config, "records": "data"}, indent=2) + "\n")
    subprocess.run(["git", "-C", str(work), *identity, "commit", "-qam", "records move to data/"], check=True)
    repo = Repository(work)
    assert repo.path_for(secret.id).startswith("data/")
    repo.hard_delete([secret.id])
    for commit in git(repo, "log", "--all", "--format=%H").split():
        assert str(secret.id) not in git(repo, "ls-tree", "-r", "--name-only", commit), commit
    assert "zyxqv" not in git(repo, "log", "--all", "-p")
    assert Record.get_record(keep.id, repo=repo)["title"] == "kept"
    fsck(repo)


def test_a_merge_of_branches_that_only_changed_the_record_goes_with_them(tmp_path: Path) -> None:
    """Two branches that only changed the purged record, then merged: both sides' commits go,
    so the merge's parents became one commit twice (git never writes that). It goes too."""
    work = tmp_path / "work"
    repo = Repository.init(work, bare=False)
    secret = Record.create({"title": "secret"}, repo=repo)
    keep = Record.create({"title": "kept"}, repo=repo)
    path = repo.path_for(secret.id)
    identity = ["-c", "user.name=T", "-c", "user.email=t@example.org"]

    def run(*args: str) -> None:
        subprocess.run(["git", "-C", str(work), *identity, *args], check=True, capture_output=True)

    run("checkout", "-q", "-b", "side")
    (work / path).write_text('{\n  "title": "side"\n}\n')
    run("commit", "-qam", "side")
    run("checkout", "-q", "main")
    (work / path).write_text('{\n  "title": "main"\n}\n')
    run("commit", "-qam", "main")
    run("merge", "-q", "--no-edit", "-s", "ours", "side")
    repo = Repository(work)
    repo.hard_delete([secret.id])
    for line in git(repo, "log", "--all", "--format=%H %P").splitlines():
        parents = line.split()[1:]
        assert len(parents) == len(set(parents)), line
    assert "Merge branch" not in git(repo, "log", "--format=%s", "main")
    assert Record.get_record(keep.id, repo=repo)["title"] == "kept"
    fsck_strict = ["git", "--git-dir", str(repo.git_dir), "fsck", "--strict"]
    subprocess.run(fsck_strict, check=True, capture_output=True)


def test_hard_delete_several_records(repo: Repository) -> None:
    a = Record.create({"t": "a"}, repo=repo)
    b = Record.create({"t": "b"}, repo=repo)
    keep = Record.create({"t": "keep"}, repo=repo)
    repo.hard_delete([b.id, str(a.id).upper()], message="GDPR request 42")
    assert git(repo, "show", "main:purged.txt").split() == sorted([str(a.id), str(b.id)])
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "GDPR request 42"
    assert list(repo.ids(with_deleted=True)) == [keep.id]
    # purged.txt accumulates
    keep.delete(force=True)
    assert git(repo, "show", "main:purged.txt").split() == sorted([str(a.id), str(b.id), str(keep.id)])
    fsck(repo)


def test_hard_delete_of_a_missing_record(repo: Repository) -> None:
    rec = Record.create({"t": "a"}, repo=repo)
    before = git(repo, "rev-parse", "main").strip()
    with pytest.raises(NoResultFound):
        repo.hard_delete([uuid.uuid4()])
    rec.delete(force=True)
    with pytest.raises(GitRecordsError):
        rec.delete(force=True)  # already purged
    with pytest.raises(NoResultFound):
        repo.hard_delete([rec.id])
    assert git(repo, "rev-parse", "main").strip() != before


def test_hard_delete_with_progress(repo: Repository) -> None:
    recs = [Record.create({"n": n}, repo=repo) for n in range(5)]
    seen: list[tuple[int, int]] = []
    repo.hard_delete([recs[2].id], progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (6, 6)  # the init commit and five creates were walked
    assert [d for d, _ in seen] == list(range(1, 7))


def test_hard_delete_needs_a_written_record(repo: Repository) -> None:
    with pytest.raises(GitRecordsError, match="never written"):
        Record({"t": 1}, repo=repo).delete(force=True)


def test_a_hard_deleted_record_object_says_so(repo):
    from gitrecords import NoResultFound, Record

    record = Record.create({"title": "gone soon"}, repo=repo)
    record.delete(force=True)
    with pytest.raises(NoResultFound, match="was hard-deleted"):
        record.commit()
    with pytest.raises(NoResultFound, match="was hard-deleted"):
        record.revisions  # noqa: B018


def test_hard_delete_in_a_packed_repository_with_a_commit_graph(repo):
    """After `git gc` the old objects sit in a pack and a commit-graph lists the old commits."""
    from gitrecords import Record

    victim = Record.create({"title": "secret"}, repo=repo)
    blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    keep = Record.create({"title": "keep"}, repo=repo)
    for n in range(5):
        keep["n"] = n
        keep = keep.commit()
    git(repo, "gc", "--quiet")
    assert (repo.git_dir / "objects" / "info" / "commit-graph").exists()
    victim.delete(force=True)
    fsck(repo)
    proc = subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), "cat-file", "-e", blob], capture_output=True
    )
    assert proc.returncode != 0
    assert [r["n"] for r in list(Record.get_record(keep.id, repo=repo).revisions)[1:]] == [0, 1, 2, 3, 4]


# -- the rewrite writes one pack ------------------------------------------------------------------


def loose_objects(repo: Repository) -> set[str]:
    folder = repo.git_dir / "objects"
    return {d.name + f.name for d in folder.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def test_the_rewritten_commits_and_trees_go_into_one_pack(repo: Repository) -> None:
    """No loose object per rewritten tree or commit: one pack, trees stored as short delta chains."""
    git(repo, "config", "pack.depth", "3")
    victim = Record.create({"title": "secret"}, repo=repo)
    others = [Record.create({"n": n}, repo=repo) for n in range(4)]
    for n in range(20):
        others[n % 4]["v"] = n
        others[n % 4] = others[n % 4].commit()
    before = loose_objects(repo)
    packs_before = set((repo.git_dir / "objects" / "pack").glob("*.pack"))
    repo.hard_delete([victim.id])

    new_loose = loose_objects(repo) - before
    kinds = {git(repo, "cat-file", "-t", oid).strip() for oid in new_loose}
    assert kinds <= {"blob", "tree", "commit"}
    assert len(new_loose) <= 3  # only the purge-log commit, its tree and purged.txt
    [pack] = set((repo.git_dir / "objects" / "pack").glob("*.pack")) - packs_before
    listing = git(repo, "verify-pack", "-v", str(pack.with_suffix(".idx")))
    rows = [
        line.split() for line in listing.splitlines() if len(line.split()) >= 5 and len(line.split()[0]) == 40
    ]
    assert sum(1 for row in rows if row[1] == "commit") >= 24
    deltas = [int(row[5]) for row in rows if row[1] == "tree" and len(row) == 7]
    assert deltas and max(deltas) <= 3
    fsck(repo)
    git(repo, "fsck", "--full", "--strict", "--no-progress")
    for record in others:
        assert [r["n"] for r in Record.get_record(record.id, repo=repo).revisions] == [record["n"]] * len(
            record.revisions
        )


def plain_repo_with_a_blob(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A bare git repository (no gitrecords) holding one blob: its git dir, pack folder and blob id."""
    git_dir = tmp_path / "plain.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(git_dir)], check=True)
    blob_id = subprocess.run(
        ["git", "--git-dir", str(git_dir), "hash-object", "-w", "--stdin"],
        input=b"x",
        capture_output=True,
        check=True,
    ).stdout.strip()
    return git_dir, git_dir / "objects" / "pack", bytes.fromhex(blob_id.decode())


def test_the_pack_writer_round_trips_through_git(tmp_path) -> None:
    """Objects written by PackWriter read back byte for byte with git, deltas included (long copies,
    long inserts, growing and shrinking targets)."""
    from gitrecords import _pack

    git_dir, pack_dir, entry = plain_repo_with_a_blob(tmp_path)
    writer = _pack.PackWriter(str(pack_dir), depth=2)

    def tree(names: list[str]) -> bytes:
        return b"".join(b"100644 " + name.encode() + b"\x00" + entry for name in sorted(names))

    names = [f"file-{n:06d}" for n in range(4000)]  # ~128 KiB: copies longer than 64 KiB
    contents = [
        tree(names),
        tree([*names[:2000], "file-001999-" + "y" * 200, *names[2000:]]),  # an insert over 127 bytes
        tree(names[1:]),
        tree(names[:10]),  # a small target of a big base: stored whole
        tree(names[:3]),
        tree([*names[:3], "z"]),
    ]
    ids = [writer.add(_pack.TREE, raw, slot="t") for raw in contents]
    ids.append(
        writer.add(
            _pack.COMMIT,
            b"tree " + ids[0].hex().encode() + b"\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\nm\n",
        )
    )
    assert writer.add(_pack.TREE, contents[0], slot="t") == ids[0]  # once only
    path = writer.finish()
    assert path is not None
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "verify-pack", "-v", path[:-5] + ".idx"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "chain length = 2" in out and "chain length = 3" not in out
    for oid, raw in zip(ids, contents, strict=False):
        got = subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "tree", oid.hex()], capture_output=True, check=True
        ).stdout
        assert got == raw
    assert git(git_dir, "log", "--format=%s", ids[-1].hex()) == "m\n"
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--strict", "--no-dangling"], check=True)


def test_copying_a_pack_without_some_objects(tmp_path) -> None:
    """copy_without drops objects spread over a pack of interleaved delta chains: the deltas whose
    base moved across a dropped entry get new distances, those whose base is dropped are stored
    whole, and git reads every other object as before."""
    import pygit2

    from gitrecords import _pack

    git_dir, pack_dir, entry = plain_repo_with_a_blob(tmp_path)
    writer = _pack.PackWriter(str(pack_dir), depth=50)
    written: list[tuple[bytes, bytes]] = []
    for version in range(80):
        for slot in ("a", "b", "c"):  # the chains interleave: a delta's base is 3 entries back
            names = [f"{slot}-{n:04d}" for n in range(40 + version)]
            raw = b"".join(b"100644 " + name.encode() + b"\x00" + entry for name in sorted(names))
            written.append((writer.add(_pack.TREE, raw, slot=slot), raw))
    path = writer.finish()
    assert path is not None
    idx = path[: -len(".pack")] + ".idx"
    drop = {oid for n, (oid, _raw) in enumerate(written) if n % 7 in (2, 3)}
    odb = pygit2.Repository(str(git_dir)).odb

    def read(oid: bytes) -> tuple[int, bytes]:
        kind, data = odb.read(pygit2.Oid(raw=oid))
        return int(kind), data

    copy = _pack.copy_without(path, _pack.read_index(idx), drop, read)
    new_path = copy.install()
    for suffix in (".pack", ".idx"):
        os.unlink(path[: -len(".pack")] + suffix)
    subprocess.run(["git", "--git-dir", str(git_dir), "verify-pack", new_path[:-5] + ".idx"], check=True)
    index = _pack.read_index(new_path[:-5] + ".idx")
    assert len(index) == len(written) - len(drop)
    data = Path(new_path).read_bytes()
    kinds = [_pack._parse_header(data, offset)[0] for offset in index.offsets]
    assert kinds.count(6) > len(kinds) // 2  # most entries are still deltas
    for oid, raw in written:
        hex_id = oid.hex()
        found = subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "tree", hex_id], capture_output=True
        )
        if oid in drop:
            assert found.returncode != 0
        else:
            assert found.stdout == raw
    subprocess.run(["git", "--git-dir", str(git_dir), "fsck", "--strict", "--no-dangling"], check=True)


# -- packed content: the packs that hold it are copied without it ----------------------------------


def all_objects(repo: Repository) -> set[str]:
    out = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(out.split())


def packs(repo: Repository) -> set[str]:
    return {p.name for p in (repo.git_dir / "objects" / "pack").glob("*.pack")}


def big_record(n: int, extra: str = "") -> dict:
    """A record large enough for git to store its revisions as deltas of each other."""
    return {
        "title": "record with many fields" + extra,
        "fields": {f"key{i}": f"value {i} {n}" for i in range(200)},
    }


def entry_kinds(repo: Repository) -> set[int]:
    """The entry types in the repository's packs (6: OFS_DELTA, 7: REF_DELTA)."""
    from gitrecords import _pack

    kinds = set()
    for idx in (repo.git_dir / "objects" / "pack").glob("*.idx"):
        index = _pack.read_index(str(idx))
        data = idx.with_suffix(".pack").read_bytes()
        kinds |= {_pack._parse_header(data, offset)[0] for offset in index.offsets}
    return kinds


@pytest.mark.parametrize("offsets", [True, False], ids=["ofs-delta", "ref-delta"])
def test_a_purged_blob_that_was_a_delta_base(repo: Repository, offsets: bool) -> None:
    """After `git gc`, another record's blob is stored as a delta of the purged record's blob: the
    copied pack stores it whole, so nothing of the purged content stays, and it reads the same."""
    # ids whose file names end alike and a larger victim: git picks the victim's blob as the base
    victim_id, twin_id = (uuid.UUID(f"000{d}{d}{d}{d}0-0000-0000-0000-000000000000") for d in (1, 2))
    victim = Record.create(big_record(0, " extra" * 20), id_=victim_id, repo=repo)
    twin = Record.create(big_record(0), id_=twin_id, repo=repo)  # nearly the same bytes
    for n in range(1, 4):
        twin["fields"]["key0"] = f"changed {n}"
        twin = twin.commit()
    offset_config = f"repack.useDeltaBaseOffset={str(offsets).lower()}"
    git(repo, "-c", offset_config, "-c", "pack.threads=1", "gc", "--quiet", "--aggressive")
    assert (6 if offsets else 7) in entry_kinds(repo)
    victim_blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    deltas = git(repo, "verify-pack", "-v", *map(str, (repo.git_dir / "objects" / "pack").glob("*.idx")))
    assert any(line.endswith(victim_blob) for line in deltas.splitlines()), (
        "no object is a delta of the victim"
    )
    twin_blobs = set(blob_history(repo, "main", repo.path_for(twin.id)))
    contents = {blob: git(repo, "cat-file", "blob", blob) for blob in twin_blobs}

    victim.delete(force=True)
    assert victim_blob not in all_objects(repo)
    for blob, text in contents.items():
        assert git(repo, "cat-file", "blob", blob) == text
    git(repo, "fsck", "--full", "--strict", "--no-progress")
    for idx in (repo.git_dir / "objects" / "pack").glob("*.idx"):
        git(repo, "verify-pack", str(idx))
    assert [r["fields"]["key0"] for r in Record.get_record(twin.id, repo=repo).revisions] == [
        "value 0 0",
        "changed 1",
        "changed 2",
        "changed 3",
    ]


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "loose"])
def test_content_another_branch_or_file_shares_is_kept(repo: Repository, packed: bool) -> None:
    """A blob of the purged record that something else still reaches (a record only on another
    branch, a file outside records/) stays; the others go."""
    victim = Record.create({"title": "shared"}, repo=repo)
    shared_blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    victim["title"] = "mine alone"
    victim = victim.commit()
    own_blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    victim["title"] = "copied"
    victim = victim.commit()
    copied_blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    other = Repository(repo.path, branch="side")
    git(repo, "branch", "side", "main~2")
    Record.create({"title": "shared"}, repo=other)  # same bytes, only on the side branch
    other.close()
    # a plain file on main with the same bytes as the last revision
    commit_file_by_plumbing(repo, "main", "copy.json", copied_blob, "a copy", who=("A", "a@example.org"))
    if packed:
        git(repo, "gc", "--quiet")
    victim.delete(force=True)
    objects = all_objects(repo)
    assert shared_blob in objects and copied_blob in objects
    assert own_blob not in objects
    assert git(repo, "cat-file", "blob", "main:copy.json") == git(repo, "cat-file", "blob", copied_blob)
    fsck(repo)
    git(repo, "fsck", "--full", "--strict", "--no-progress")


def test_a_multi_pack_index_leaves_it_to_git_repack(repo: Repository) -> None:
    victim = Record.create({"title": "secret"}, repo=repo)
    blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    keep = Record.create({"title": "keep"}, repo=repo)
    git(repo, "gc", "--quiet")
    git(repo, "multi-pack-index", "write")
    victim.delete(force=True)
    assert blob not in all_objects(repo)
    git(repo, "fsck", "--full", "--strict", "--no-progress")
    assert Record.get_record(keep.id, repo=repo) == {"title": "keep"}


def test_old_packs_are_replaced_and_only_the_affected_ones(repo: Repository) -> None:
    """A pack without the purged content is left alone; one with it is replaced by a copy."""
    early = Record.create({"title": "early"}, repo=repo)
    git(repo, "repack", "-q")  # a first pack: the init commit and `early`
    first = packs(repo)
    victim = Record.create({"title": "secret"}, repo=repo)
    blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    Record.create({"title": "later"}, repo=repo)
    git(repo, "repack", "-q")  # a second pack with the victim
    second = packs(repo) - first
    victim.delete(force=True)
    now = packs(repo)
    assert first <= now and not second & now
    assert blob not in all_objects(repo)
    assert Record.get_record(early.id, repo=repo) == {"title": "early"}
    git(repo, "fsck", "--full", "--strict", "--no-progress")


def test_finding_a_tree_entry() -> None:
    """The fan-out shortcut (entries of one width) and the walk over entries agree."""
    import random

    from gitrecords import purge

    rng = random.Random(4)

    def entry(mode: bytes, name: bytes) -> bytes:
        return mode + b" " + name + b"\x00" + bytes(rng.randrange(256) for _ in range(20))

    fan_out = b"".join(entry(b"40000", b"%02x" % i) for i in range(0, 256, 3))
    mixed = entry(b"100644", b"gitrecords.json") + entry(b"40000", b"records") + entry(b"40000", b"schemas")
    # an id holding " 7e\0" must not be taken for an entry
    tricky = entry(b"40000", b"7d")[:-20] + b"\x01 7e\x00" + b"\x02" * 15 + entry(b"40000", b"7f")
    for raw in (fan_out, mixed, tricky):
        for name in (
            b"00",
            b"03",
            b"7e",
            b"7f",
            b"fc",
            b"ff",
            b"records",
            b"schemas",
            b"gitrecords.json",
            b"x",
        ):
            expected = None
            position = 0
            while position < len(raw):  # the plain walk over entries
                space = raw.index(b" ", position)
                nul = raw.index(b"\x00", space)
                if raw[space + 1 : nul] == name:
                    expected = (position, nul + 21, raw[position:space])
                position = nul + 21
            assert purge._find_entry(raw, name) == expected, (raw, name)


def test_the_pack_reader_reads_what_git_reads(repo: Repository) -> None:
    """Every object of a packed repository, read by PackReader (deltas resolved, checked against
    their ids), is what git has; what it cannot read it leaves to libgit2 (None)."""
    from gitrecords import _pack

    records = [Record.create(big_record(n), repo=repo) for n in range(3)]
    for n in range(6):
        records[n % 3]["fields"]["key1"] = f"changed {n}"
        records[n % 3] = records[n % 3].commit()
    git(repo, "gc", "--quiet", "--aggressive")
    loose = Record.create({"title": "loose"}, repo=repo)
    reader = _pack.PackReader(str(repo.git_dir / "objects" / "pack"), cache_bytes=4096)
    try:
        names = {2: "tree", 1: "commit", 3: "blob", 4: "tag"}
        [idx] = (repo.git_dir / "objects" / "pack").glob("*.idx")
        index = _pack.read_index(str(idx))
        packed = {index.id(i).hex() for i in range(len(index))}
        assert 6 in entry_kinds(repo)  # deltas to resolve
        loose_blob = git(repo, "rev-parse", f"main:{repo.path_for(loose.id)}").strip()
        assert reader.read(bytes.fromhex(loose_blob)) is None
        for oid in sorted(packed):
            found = reader.read(bytes.fromhex(oid))
            assert found is not None
            kind, raw = found
            assert git(repo, "cat-file", "-t", oid).strip() == names[kind]
            proc = subprocess.run(
                ["git", "--git-dir", str(repo.git_dir), "cat-file", names[kind], oid], capture_output=True
            )
            assert proc.stdout == raw
    finally:
        reader.close()


def test_two_hard_deletes_in_a_packed_repository(repo: Repository) -> None:
    """The second purge reads trees from the first one's pack and copies the first one's copies."""
    records = [Record.create(big_record(n), repo=repo) for n in range(4)]
    for n in range(8):
        records[n % 4]["fields"]["key2"] = f"v{n}"
        records[n % 4] = records[n % 4].commit()
    git(repo, "gc", "--quiet")
    blobs = {r.id: set(blob_history(repo, "main", repo.path_for(r.id))) for r in records}
    records[0].delete(force=True)
    records[2].delete(force=True)
    objects = all_objects(repo)
    assert not (blobs[records[0].id] | blobs[records[2].id]) & objects
    assert blobs[records[1].id] | blobs[records[3].id] <= objects
    assert git(repo, "show", "main:purged.txt").split() == sorted(str(records[i].id) for i in (0, 2))
    git(repo, "fsck", "--full", "--strict", "--no-progress")
    for idx in (repo.git_dir / "objects" / "pack").glob("*.idx"):
        git(repo, "verify-pack", str(idx))
    assert [r["fields"]["key2"] for r in list(Record.get_record(records[3].id, repo=repo).revisions)[1:]] == [
        "v3",
        "v7",
    ]


def test_the_pack_list_for_dumb_http_follows(repo: Repository) -> None:
    """objects/info/packs (git update-server-info) names the packs that replaced the old ones."""
    victim = Record.create({"title": "secret"}, repo=repo)
    Record.create({"title": "keep"}, repo=repo)
    git(repo, "gc", "--quiet")
    git(repo, "update-server-info")
    victim.delete(force=True)
    listed = {
        line.split()[1]
        for line in (repo.git_dir / "objects" / "info" / "packs").read_text().splitlines()
        if line
    }
    assert listed == packs(repo)


def test_purge_talks_to_git_through_the_git_module_only() -> None:
    """Only gitrecords/_git.py imports pygit2."""
    import ast

    import gitrecords.purge

    tree = ast.parse(Path(gitrecords.purge.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] == "pygit2"}


# -- every kind of ref: trees, blobs, linked worktrees, stashes, notes -------------------------------


def refs_and_objects(repo: Repository) -> tuple[str, set[str], set[str]]:
    """Every ref with its value, every object and every pack: what a refused hard delete keeps."""
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), all_objects(repo), packs(repo)


def test_refs_and_tags_to_trees_are_rewritten(repo: Repository) -> None:
    """A lightweight tag on the root tree, a ref on a subtree and an annotated tag on a tree keep
    the content reachable unless they are rewritten too (F4)."""
    victim = Record.create({"title": "secret"}, repo=repo)
    keep = Record.create({"title": "keep"}, repo=repo)
    path = repo.path_for(victim.id)
    blob = git(repo, "rev-parse", f"main:{path}").strip()
    git(repo, "tag", "root-tree", "main^{tree}")
    git(repo, "update-ref", "refs/trees/records", "main:records")
    git(repo, "update-ref", "refs/trees/leaf", f"main:{path.rsplit('/', 1)[0]}")
    annotated_tag(repo, "tree-tag", "the tree of release 1", "main^{tree}")
    tag_message = git(repo, "tag", "-l", "--format=%(contents)", "tree-tag")

    victim.delete(force=True)

    assert not exists(repo, blob)
    rewritten_tree = git(repo, "rev-parse", "main~1^{tree}").strip()  # the same commit, rewritten
    assert git(repo, "rev-parse", "root-tree").strip() == rewritten_tree
    assert path not in git(repo, "ls-tree", "-r", "--name-only", "root-tree")
    assert repo.path_for(keep.id) in git(repo, "ls-tree", "-r", "--name-only", "root-tree")
    for ref in ("refs/trees/records", "refs/trees/leaf"):
        assert git(repo, "cat-file", "-t", ref).strip() == "tree"
        assert str(victim.id) not in git(repo, "ls-tree", "-r", ref)
    assert str(keep.id) in git(repo, "ls-tree", "-r", "refs/trees/records")
    assert git(repo, "cat-file", "-t", "tree-tag").strip() == "tag"
    assert git(repo, "tag", "-l", "--format=%(contents)", "tree-tag") == tag_message
    assert git(repo, "rev-parse", "tree-tag^{tree}").strip() == rewritten_tree
    git(repo, "fsck", "--strict", "--full", "--no-progress")


@pytest.mark.parametrize("annotated", [False, True], ids=["tag", "annotated-tag"])
def test_a_ref_to_a_purged_blob_is_refused_and_nothing_changes(repo: Repository, annotated: bool) -> None:
    """A ref (or tag object) naming the record's blob itself cannot be rewritten: the hard delete
    refuses in one line, naming the ref, and leaves every ref and object as it was (F4)."""
    victim = Record.create({"title": "secret"}, repo=repo)
    Record.create({"title": "keep"}, repo=repo)
    blob = git(repo, "rev-parse", f"main:{repo.path_for(victim.id)}").strip()
    if annotated:
        annotated_tag(repo, "the-blob", "a blob", blob)
    else:
        git(repo, "tag", "the-blob", blob)
    before = refs_and_objects(repo)

    with pytest.raises(GitRecordsError, match="refs/tags/the-blob") as info:
        victim.delete(force=True)
    assert "\n" not in str(info.value)
    assert refs_and_objects(repo) == before
    assert Record.get_record(victim.id, repo=repo) == {"title": "secret"}
    git(repo, "tag", "-d", "the-blob")
    victim.delete(force=True)
    assert not exists(repo, blob)
    git(repo, "fsck", "--strict", "--full", "--no-progress")


def worktree_run(work: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="W", GIT_AUTHOR_EMAIL="w@example.org")
    env.update(GIT_COMMITTER_NAME="W", GIT_COMMITTER_EMAIL="w@example.org")
    proc = subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def test_linked_worktrees_are_rewritten(tmp_path: Path) -> None:
    """A linked worktree's detached HEAD, its index and its files hold the record too: HEAD moves
    to the rewritten commit, the file leaves the index and the folder (F4)."""
    work = tmp_path / "work"
    clone = Repository.init(work, bare=False)
    victim = Record.create({"title": "secret"}, repo=clone)
    keep = Record.create({"title": "keep"}, repo=clone)
    path = clone.path_for(victim.id)
    blob = git(clone, "rev-parse", f"main:{path}").strip()
    detached, on_branch = tmp_path / "detached", tmp_path / "on-branch"
    worktree_run(work, "worktree", "add", "--detach", str(detached), "main")
    worktree_run(work, "worktree", "add", "-b", "side", str(on_branch), "main")
    assert (detached / path).exists() and (on_branch / path).exists()

    victim.delete(force=True)

    assert not exists(clone, blob)
    for linked in (detached, on_branch):
        assert not (linked / path).exists()
        assert (linked / clone.path_for(keep.id)).exists()
        assert worktree_run(linked, "status", "--porcelain", "--untracked-files=all") == ""
        assert path not in worktree_run(linked, "ls-files")
    assert worktree_run(detached, "rev-parse", "HEAD") == worktree_run(work, "rev-parse", "main~1")
    assert worktree_run(on_branch, "rev-parse", "HEAD") == worktree_run(work, "rev-parse", "side")
    git(clone, "fsck", "--strict", "--full", "--no-progress")


def test_a_linked_worktree_of_a_bare_repository_on_the_branch(repo: Repository, tmp_path: Path) -> None:
    """A worktree with the data branch checked out gets the purge log (purged.txt) as well."""
    victim = Record.create({"title": "secret"}, repo=repo)
    Record.create({"title": "keep"}, repo=repo)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", str(linked), "main")
    victim.delete(force=True)
    assert not (linked / repo.path_for(victim.id)).exists()
    assert (linked / "purged.txt").read_text() == f"{victim.id}\n"
    assert worktree_run(linked, "status", "--porcelain", "--untracked-files=all") == ""
    git(repo, "fsck", "--strict", "--full", "--no-progress")


@pytest.mark.parametrize("change", ["edited", "staged", "missing"])
def test_a_linked_worktree_that_cannot_be_rewritten_is_refused(
    repo: Repository, tmp_path: Path, change: str
) -> None:
    """Local edits to the record in a linked worktree, or a worktree whose folder is gone: the hard
    delete refuses in one line naming the worktree, and changes nothing (F4)."""
    victim = Record.create({"title": "secret"}, repo=repo)
    Record.create({"title": "keep"}, repo=repo)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "--detach", str(linked), "main")
    file = linked / repo.path_for(victim.id)
    if change == "missing":
        import shutil

        shutil.rmtree(linked)
    else:
        file.write_text('{"title": "edited in the worktree"}\n')
        if change == "staged":
            worktree_run(linked, "add", repo.path_for(victim.id))
    before = refs_and_objects(repo)
    with pytest.raises(GitRecordsError, match=re.escape(str(linked))) as info:
        victim.delete(force=True)
    assert "\n" not in str(info.value)
    assert refs_and_objects(repo) == before
    assert Record.get_record(victim.id, repo=repo) == {"title": "secret"}
    if change != "missing":
        assert file.read_text() == '{"title": "edited in the worktree"}\n'


def test_stash_entries_survive_and_lose_the_record(tmp_path: Path) -> None:
    """The stash list is refs/stash's reflog: every entry stays, in order and with its message;
    the entries that held the record are rewritten without it (F5)."""
    work = tmp_path / "work"
    clone = Repository.init(work, bare=False)
    early = Record.create({"title": "early"}, repo=clone)
    early_file = work / clone.path_for(early.id)
    early_file.write_text('{"title": "stashed before the record existed"}\n')
    worktree_run(work, "stash", "push", "-m", "before the record")
    untouched = worktree_run(work, "rev-parse", "stash@{0}").strip()
    victim = Record.create({"title": "secret"}, repo=clone)
    path = clone.path_for(victim.id)
    victim_file = work / path
    early_file.write_text('{"title": "stashed edit of early"}\n')
    worktree_run(work, "stash", "push", "-m", "edit of early")
    victim_file.write_text('{"title": "stashed secret"}\n')
    worktree_run(work, "add", path)
    worktree_run(work, "stash", "push", "-m", "edit of the record")
    stashed_blob = worktree_run(work, "rev-parse", f"stash@{{0}}:{path}").strip()
    (work / "notes.txt").write_text("untracked\n")
    early_file.write_text('{"title": "with an untracked file"}\n')
    worktree_run(work, "stash", "push", "--include-untracked", "-m", "with untracked")
    before = worktree_run(work, "stash", "list", "--format=%gs").splitlines()
    assert len(before) == 4

    victim.delete(force=True)

    assert worktree_run(work, "stash", "list", "--format=%gs").splitlines() == before
    assert not exists(clone, stashed_blob)
    assert git(clone, "rev-list", "--all", "--reflog", "--objects").count(path) == 0
    assert worktree_run(work, "rev-parse", "stash@{3}").strip() == untouched
    for n in range(4):
        assert path not in worktree_run(work, "ls-tree", "-r", "--name-only", f"stash@{{{n}}}")
        assert path not in worktree_run(work, "ls-tree", "-r", "--name-only", f"stash@{{{n}}}^2")
    assert worktree_run(work, "stash", "show", "--name-only", "stash@{2}").split() == [
        clone.path_for(early.id)
    ]
    assert worktree_run(work, "show", "stash@{0}^3:notes.txt") == "untracked\n"
    git(clone, "fsck", "--strict", "--full", "--no-progress")
    worktree_run(work, "stash", "pop")
    assert early_file.read_text() == '{"title": "with an untracked file"}\n'
    assert (work / "notes.txt").read_text() == "untracked\n"


def fan_out_notes(repo: Repository, ref: str) -> None:
    """Store the notes of ``ref`` as git does when there are many: in folders named by the first
    two hex digits of the annotated object's id."""
    plumbing = ["git", "--git-dir", str(repo.git_dir)]
    folders: dict[str, list[str]] = {}
    for line in git(repo, "ls-tree", ref).splitlines():
        meta, name = line.split("\t")
        folders.setdefault(name[:2], []).append(f"{meta}\t{name[2:]}\n")
    top = ""
    for prefix, entries in sorted(folders.items()):
        sub = subprocess.run(
            [*plumbing, "mktree"], input="".join(entries), capture_output=True, text=True, check=True
        ).stdout.strip()
        top += f"040000 tree {sub}\t{prefix}\n"
    tree = subprocess.run(
        [*plumbing, "mktree"], input=top, capture_output=True, text=True, check=True
    ).stdout.strip()
    identity = ["-c", "user.name=N", "-c", "user.email=n@example.org"]
    commit = git(repo, *identity, "commit-tree", tree, "-p", ref, "-m", "fan out").strip()
    git(repo, "update-ref", ref, commit)


@pytest.mark.parametrize("fanned_out", [False, True], ids=["flat", "fan-out"])
def test_notes_follow_the_rewritten_commits(repo: Repository, fanned_out: bool) -> None:
    """git notes are keyed by commit id: they move to the rewritten commits; the notes of commits
    the hard delete drops go with them (F6)."""
    before_victim = Record.create({"title": "before"}, repo=repo)
    victim = Record.create({"title": "secret"}, repo=repo)
    victim_commit = git(repo, "rev-parse", "main").strip()
    keep = Record.create({"title": "keep"}, repo=repo)
    keep["title"] = "keep v1"
    keep.commit()
    identity = ["-c", "user.name=N", "-c", "user.email=n@example.org"]
    notes = {
        "main~3": "on the commit before",
        "main~2": "on the victim",
        "main~1": "on keep",
        "main": "on v1",
    }
    for rev, text in notes.items():
        git(repo, *identity, "notes", "add", "-m", text, rev)
    git(repo, *identity, "notes", "--ref", "review", "add", "-m", "reviewed", "main")
    git(repo, *identity, "notes", "--ref", "early", "add", "-m", "untouched", "main~3")
    early_notes = git(repo, "rev-parse", "refs/notes/early").strip()
    if fanned_out:
        fan_out_notes(repo, "refs/notes/commits")
    assert git(repo, "notes", "show", victim_commit) == "on the victim\n"
    first = git(repo, "rev-parse", "main~3").strip()

    victim.delete(force=True)

    # main~1 is now the rewritten "keep v1" commit; the victim's commit is gone with its note
    assert git(repo, "notes", "show", "main~1") == "on v1\n"
    assert git(repo, "notes", "show", "main~2") == "on keep\n"
    assert git(repo, "notes", "show", "main~3") == "on the commit before\n"
    assert git(repo, "rev-parse", "main~3").strip() == first
    assert git(repo, "notes", "--ref", "review", "show", "main~1") == "reviewed\n"
    assert git(repo, "rev-parse", "refs/notes/early").strip() == early_notes  # no note moved
    listed = [line.split()[1] for line in git(repo, "notes", "list").splitlines()]
    assert len(listed) == 3 and victim_commit not in listed
    assert all(exists(repo, oid) for oid in listed)
    assert Record.get_record(before_victim.id, repo=repo) == {"title": "before"}
    git(repo, "fsck", "--strict", "--full", "--no-progress")


def test_a_search_on_a_handle_whose_indexed_tip_was_pruned_rebuilds(repo: Repository) -> None:
    """A replica realigned after the primary's hard delete (a forced fetch, then gc): the search
    index is at a commit that is gone, which this handle's libgit2 cache still knows; the walk
    from it fails, and the index is built again instead of every search failing."""
    kept = Record.create({"title": "kept"}, repo=repo)
    start = repo.tip()
    Record.create({"title": "gone"}, repo=repo)
    assert repo.search("").total == 2
    tree = git(repo, "rev-parse", f"{start}^{{tree}}").strip()
    who = ("-c", "user.name=P", "-c", "user.email=p@example.org")
    rewritten = git(repo, *who, "commit-tree", tree, "-m", "history rewritten elsewhere").strip()
    git(repo, "update-ref", "refs/heads/main", rewritten)
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert repo.search("").ids == [kept.id]
    assert repo.search("gone").total == 0


def test_a_hard_delete_and_a_bulk_import_take_turns(tmp_path: Path) -> None:
    """An import prepares its records without the write lock, on the commit it started from; a
    hard delete beside it either kept the purged blob (reachable from the import's temporary
    ref while the purge looked) or deleted the import's base under it. Now a hard delete waits
    for running imports (and bulk edits), and imports wait for a running hard delete."""
    import sys
    import time

    from gitrecords import bulk
    from gitrecords.errors import RepositoryLockedError
    from gitrecords.writer import imports_excluded

    repo = Repository.init(tmp_path / "data.git")
    secret = Record.create({"title": "secret"}, repo=repo)
    blob = str(secret._blob)
    impatient = Repository(repo.path, lock_wait=0.3)
    with bulk.import_slot(repo):  # an import preparing its records
        with pytest.raises(RepositoryLockedError, match="bulk imports or bulk edits running"):
            Record.get_record(secret.id, repo=impatient).delete(force=True)
    assert has_object(repo, blob)

    # the other way round: an import that starts during a hard delete waits for it
    script = (
        "import sys; from gitrecords import Repository; r = Repository(sys.argv[1]);"
        " r.import_records([{'title': f'imported {n}'} for n in range(50)]); print('done', flush=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo.path)], stdout=subprocess.PIPE)
    try:
        with imports_excluded(repo.git_dir, 1.0):
            time.sleep(1.0)
            assert proc.poll() is None  # waiting for the slot
            base = repo.tip()
            # the hard delete takes the slot this thread holds (re-entrant), as it takes it alone
            Record.get_record(secret.id, repo=repo).delete(force=True)
            assert repo.tip() != base
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == b"done"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not has_object(repo, blob)
    assert repo.search("imported").total == 50
    fsck(repo)
    impatient.close()


def has_object(repo: Repository, oid: str) -> bool:
    return subprocess.run(["git", "--git-dir", str(repo.git_dir), "cat-file", "-e", oid]).returncode == 0
