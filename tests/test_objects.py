"""gitrecords._objects: refs and objects read without libgit2, byte for byte as git reads them.

Every object of real repositories (loose, packed after ``git gc`` and ``git gc --aggressive``,
several packs, REF_DELTA entries, packed refs) is read by :class:`GitDir` and compared with
``git cat-file --batch`` and with pygit2; repositories that are not plain are refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pygit2
import pytest
from helpers import git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitrecords import Record, Repository, layout
from gitrecords._objects import GitDir
from gitrecords._pack import BLOB, COMMIT, OFS_DELTA, REF_DELTA, TAG, TREE, inflate, parse_entry, read_index
from gitrecords.cli._common import State
from gitrecords.cli.get import fast_record

KINDS = {b"commit": COMMIT, b"tree": TREE, b"blob": BLOB, b"tag": TAG}


def all_objects(git_dir: Path) -> dict[bytes, tuple[int, bytes]]:
    """Every object of the repository, as ``git cat-file --batch`` prints it: id -> (type, content)."""
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    objects: dict[bytes, tuple[int, bytes]] = {}
    at = 0
    while at < len(out):
        end = out.index(b"\n", at)
        oid, kind, size = out[at:end].split()
        at = end + 1
        objects[bytes.fromhex(oid.decode())] = (KINDS[kind], out[at : at + int(size)])
        at += int(size) + 1
    return objects


def assert_reads_like_git(git_dir: Path) -> dict[bytes, tuple[int, bytes]]:
    objects = all_objects(git_dir)
    assert objects
    libgit2 = pygit2.Repository(str(git_dir))
    with GitDir(str(git_dir)) as reader, GitDir(str(git_dir), mapped=False) as unmapped:
        for oid, expected in objects.items():
            assert reader.read(oid) == expected, oid.hex()
            assert unmapped.read(oid) == expected, oid.hex()
            kind, data = libgit2.odb.read(pygit2.Oid(raw=oid))
            assert (int(kind), data) == expected
    libgit2.free()
    return objects


def pack_stats(git_dir: Path) -> tuple[int, int, int]:
    """(packs, entries stored as deltas, loose objects)."""
    packs = sorted((git_dir / "objects" / "pack").glob("pack-*.idx"))
    deltas = 0
    for idx in packs:
        out = git(git_dir, "verify-pack", "-v", str(idx))
        deltas += sum(1 for line in out.splitlines() if len(line.split()) == 7 and len(line.split()[0]) == 40)
    loose = sum(1 for d in (git_dir / "objects").glob("[0-9a-f][0-9a-f]") for _ in d.iterdir())
    return len(packs), deltas, loose


def many_revisions(tmp_path: Path, revisions: int = 40, records: int = 5) -> tuple[Repository, list[Record]]:
    """A repository whose records were each written ``revisions`` times, a long text growing
    a little each time: git stores most versions as deltas."""
    repo = Repository.init(tmp_path / "data.git")
    text = " ".join(f"word{i}" for i in range(400))
    with repo:
        saved = [
            Record.create({"title": f"record {n}", "text": text}, pid_minters=[]) for n in range(records)
        ]
        for revision in range(revisions):
            with repo.transaction(message=f"revision {revision}"):
                for n, record in enumerate(saved):
                    record["text"] = f"{text} change {revision} of {n}"
                    record["count"] = revision
                    record.commit()
    return repo, saved


def check_records(repo: Repository, records: list[Record]) -> None:
    """The CLI's reader gives the bytes libgit2 gives for every record file and ref."""
    with GitDir(str(repo.git_dir)) as reader:
        tip = reader.ref(f"refs/heads/{repo.branch}")
        assert tip is not None
        assert tip.hex() == git(repo, "rev-parse", repo.branch).strip()
        tree = reader.commit_tree(tip)
        assert tree is not None
        for record in records:
            path = repo.path_for(record.id)
            assert reader.blob_at(tree, path) == git(repo, "show", f"{repo.branch}:{path}").encode()
        assert reader.blob_at(tree, "records/no/such.json") is None
        assert reader.blob_at(tree, "records") is None  # a tree, not a blob


def test_loose_objects(tmp_path: Path) -> None:
    repo, records = many_revisions(tmp_path, revisions=3)
    _packs, _deltas, loose = pack_stats(repo.git_dir)
    assert loose > 0
    assert_reads_like_git(repo.git_dir)
    check_records(repo, records)


@pytest.mark.parametrize("aggressive", [False, True])
def test_packed_objects_and_delta_chains(tmp_path: Path, aggressive: bool) -> None:
    repo, records = many_revisions(tmp_path)
    git(repo, "gc", "--quiet", *(["--aggressive"] if aggressive else []))
    packs, deltas, loose = pack_stats(repo.git_dir)
    assert (packs, loose) == (1, 0)
    assert deltas > 100
    assert_reads_like_git(repo.git_dir)
    check_records(repo, records)


def test_several_packs_ref_deltas_and_loose_objects(tmp_path: Path) -> None:
    """Three packs (one with REF_DELTA entries, whose base is named by id) and loose objects."""
    repo, records = many_revisions(tmp_path, revisions=10)
    git(repo, "-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-a", "-d")
    idx = next((repo.git_dir / "objects" / "pack").glob("pack-*.idx"))
    pack = idx.with_suffix(".pack").read_bytes()
    kinds = [parse_entry(pack, offset)[0] for offset in read_index(str(idx)).offsets]
    assert kinds.count(REF_DELTA) > 10
    assert OFS_DELTA not in kinds
    with repo:
        for record in records:
            record["count"] = 100
            record.commit()
    git(repo, "repack", "-q")  # a second pack, of the new objects only
    with repo:
        for record in records:
            record["count"] = 200
            record.commit()
    packs, deltas, loose = pack_stats(repo.git_dir)
    assert packs == 2
    assert deltas > 0
    assert loose > 0
    objects = assert_reads_like_git(repo.git_dir)
    assert len(objects) > 100
    check_records(repo, records)


def test_packed_refs(tmp_path: Path) -> None:
    repo, records = many_revisions(tmp_path, revisions=2)
    git(repo, "branch", "other", repo.branch)
    git(repo, "pack-refs", "--all")
    assert not (repo.git_dir / "refs" / "heads" / repo.branch).exists()
    with GitDir(str(repo.git_dir)) as reader:
        assert reader.head_branch() == repo.branch
        for branch in (repo.branch, "other"):
            assert reader.ref(f"refs/heads/{branch}") == bytes.fromhex(git(repo, "rev-parse", branch).strip())
        assert reader.ref("refs/heads/missing") is None
        assert reader.ref("refs/heads/../../config") is None
        assert reader.ref("refs/tags/x") is None
    check_records(repo, records)
    with repo:  # the branch moves: its loose file wins over packed-refs
        records[0]["count"] = 1000
        records[0].commit()
    check_records(repo, records)


#: what the random file versions are made of: text, binary bytes, a long run git copies
PIECES = [b"alpha ", b"beta\n", b"\x00\xff", b"{}", b"gamma " * 30]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    versions=st.lists(
        st.lists(
            st.sampled_from([b"alpha ", b"beta\n", b"\x00\xff", b"{}", b"gamma " * 30]), max_size=60
        ).map(b"".join),
        min_size=1,
        max_size=12,
    )
)
def test_random_versions_of_a_file_read_back_exactly(
    tmp_path_factory: pytest.TempPathFactory, versions
) -> None:
    """Random versions of one file, committed in turn and packed with long delta chains."""
    git_dir = tmp_path_factory.mktemp("random") / "r.git"
    git(git_dir.parent, "init", "-q", "--bare", str(git_dir))
    stream = bytearray()
    for number, data in enumerate(versions):
        stream += b"commit refs/heads/main\ncommitter A <a@example.org> %d +0000\ndata 0\n" % number
        stream += b"M 100644 inline records/f.json\ndata %d\n%s\n" % (len(data), data)
    subprocess.run(
        ["git", "--git-dir", str(git_dir), "fast-import", "--quiet"], input=bytes(stream), check=True
    )
    git(git_dir, "repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=50")
    assert_reads_like_git(git_dir)
    with GitDir(str(git_dir)) as reader:
        tip = reader.ref("refs/heads/main")
        assert tip is not None
        tree = reader.commit_tree(tip)
        assert tree is not None
        assert reader.blob_at(tree, "records/f.json") == versions[-1]


def test_inflate_reads_a_badly_compressed_entry() -> None:
    """A zlib stream longer than its content (level 0: stored blocks) is read whole."""
    import zlib

    data = os.urandom(200_000)
    stream = b"xx" + zlib.compress(data, 0) + b"tail"
    assert inflate(stream, 2, len(data)) == data
    with pytest.raises(ValueError):
        inflate(stream, 2, len(data) - 1)
    with pytest.raises(ValueError):
        inflate(stream[:1000], 2, len(data))
    # a stream of many small blocks, much longer than the chunk read first
    small = b"a short file, flushed after every byte of it"
    compressor = zlib.compressobj()
    padded = b"".join(compressor.compress(bytes([b])) + compressor.flush(zlib.Z_SYNC_FLUSH) for b in small)
    padded += compressor.flush()
    assert len(padded) > len(small) + 64 + 100
    assert inflate(b"xx" + padded + b"tail", 2, len(small)) == small
    with pytest.raises(ValueError):
        inflate(b"xx" + padded, 2, len(small) + 1)


def test_a_ref_delta_chain_longer_than_python_recursion_goes(tmp_path: Path) -> None:
    """REF_DELTA entries name their base by id; a chain of hundreds of them (git allows 4095)
    is followed in a loop: a recursive reader ran past Python's recursion limit."""
    git_dir = tmp_path / "deep.git"
    git(tmp_path, "init", "-q", "--bare", str(git_dir))
    lines = [f"line {j}" for j in range(200)]
    stream = bytearray()
    for number in range(1500):
        lines[number % 200] = f"line {number % 200} version {number}"
        data = "\n".join(lines).encode()
        stream += b"commit refs/heads/main\ncommitter A <a@example.org> %d +0000\ndata 0\n" % number
        stream += b"M 100644 inline f\ndata %d\n%s\n" % (len(data), data)
    subprocess.run(["git", "--git-dir", str(git_dir), "fast-import", "--quiet"], input=stream, check=True)
    # REF_DELTA entries; one thread (each thread's share of the objects starts a chain of its own)
    no_offsets = ("-c", "repack.useDeltaBaseOffset=false", "-c", "pack.threads=1")
    git(git_dir, *no_offsets, "repack", "-q", "-a", "-d", "-f", "--depth=4000", "--window=2")
    idx = next((git_dir / "objects" / "pack").glob("pack-*.idx"))
    chains = [line.split() for line in git(git_dir, "verify-pack", "-v", str(idx)).splitlines()]
    depth = {fields[0]: int(fields[5]) for fields in chains if len(fields) == 7}
    deepest = max(depth, key=depth.__getitem__)
    assert depth[deepest] > 500
    expected = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "blob", deepest], capture_output=True, check=True
    ).stdout
    for mapped in (True, False):
        with GitDir(str(git_dir), mapped=mapped) as reader:
            assert reader.read(bytes.fromhex(deepest)) == (BLOB, expected)


def test_packs_read_without_mapping_them_give_large_objects_whole(tmp_path: Path) -> None:
    """``mapped=False`` reads a pack through a buffer: an entry much larger than the buffer
    (random bytes, stored about as large as they are) and the small entries around it."""
    git_dir = tmp_path / "large.git"
    git(tmp_path, "init", "-q", "--bare", str(git_dir))
    files = [os.urandom(300_000), b"small", json.dumps({"n": list(range(5000))}).encode()]
    stream = b"commit refs/heads/main\ncommitter A <a@example.org> 0 +0000\ndata 0\n"
    for number, data in enumerate(files):
        stream += b"M 100644 inline f%d\ndata %d\n%s\n" % (number, len(data), data)
    subprocess.run(["git", "--git-dir", str(git_dir), "fast-import", "--quiet"], input=stream, check=True)
    git(git_dir, "repack", "-q", "-a", "-d")
    assert pack_stats(git_dir)[0] == 1
    assert_reads_like_git(git_dir)
    with GitDir(str(git_dir), mapped=False) as reader:
        tree = reader.commit_tree(reader.ref("refs/heads/main") or b"")
        assert tree is not None
        assert [reader.blob_at(tree, f"f{number}") for number in range(3)] == files


# -- what GitDir refuses; the CLI reads those through libgit2 ----------------------------------


def plain_repo(tmp_path: Path) -> tuple[Repository, Record]:
    repo = Repository.init(tmp_path / "data.git")
    with repo:
        record = Record.create({"title": "Plain"}, pid_minters=[])
    return repo, record


def test_a_plain_repository_is_read_without_libgit2(tmp_path: Path, gr) -> None:
    repo, record = plain_repo(tmp_path)
    expected = layout.dumps({"title": "Plain"}).decode()
    assert fast_record(State(repo_path=str(repo.git_dir)), record.id) == expected
    assert fast_record(State(repo_path=str(repo.git_dir), branch=repo.branch), record.id) == expected
    assert fast_record(State(repo_path=str(repo.git_dir), branch="other"), record.id) is None
    assert gr(repo, "get", str(record.id)).stdout == expected


def _alternates(repo: Repository, tmp_path: Path) -> None:
    other = tmp_path / "other.git"
    git(tmp_path, "init", "-q", "--bare", str(other))
    (repo.git_dir / "objects" / "info").mkdir(exist_ok=True)
    (repo.git_dir / "objects" / "info" / "alternates").write_text(str(other / "objects") + "\n")


def _grafts(repo: Repository, tmp_path: Path) -> None:
    (repo.git_dir / "info").mkdir(exist_ok=True)
    (repo.git_dir / "info" / "grafts").write_text("")


def _replace_ref(repo: Repository, tmp_path: Path) -> None:
    blobs = [
        subprocess.run(
            ["git", "--git-dir", str(repo.git_dir), "hash-object", "-w", "--stdin"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for text in ("one", "two")
    ]
    git(repo, "replace", *blobs)


def _packed_replace_ref(repo: Repository, tmp_path: Path) -> None:
    _replace_ref(repo, tmp_path)
    git(repo, "pack-refs", "--all")


def _extension(repo: Repository, tmp_path: Path) -> None:
    git(repo, "config", "extensions.worktreeConfig", "true")


def _detached_head(repo: Repository, tmp_path: Path) -> None:
    git(repo, "update-ref", "--no-deref", "HEAD", git(repo, "rev-parse", repo.branch).strip())


def _missing_object(repo: Repository, tmp_path: Path) -> None:
    """The record's blob is neither loose nor packed: libgit2 reports it."""
    for folder in (repo.git_dir / "objects").glob("[0-9a-f][0-9a-f]"):
        for name in folder.iterdir():
            if git(repo, "cat-file", "-t", folder.name + name.name).strip() == "blob":
                data = git(repo, "cat-file", "blob", folder.name + name.name)
                if "Plain" in data:
                    name.unlink()


def _shallow(repo: Repository, tmp_path: Path) -> None:
    (repo.git_dir / "shallow").write_text(git(repo, "rev-parse", repo.branch))


def _another_owner(repo: Repository, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a folder to another user")
    os.chown(repo.git_dir, os.geteuid() + 1, -1)


@pytest.mark.parametrize(
    "make", [_alternates, _grafts, _replace_ref, _packed_replace_ref, _extension, _shallow, _another_owner]
)
def test_repositories_that_are_not_plain_are_refused(tmp_path: Path, make) -> None:
    repo, _record = plain_repo(tmp_path)
    assert GitDir.open(str(repo.git_dir)) is not None
    make(repo, tmp_path)
    assert GitDir.open(str(repo.git_dir)) is None


def test_what_a_plain_repository_may_still_hold_is_refused_by_the_reads(tmp_path: Path) -> None:
    """A detached HEAD, a symbolic branch, a missing object: None, for libgit2 to answer."""
    repo, record = plain_repo(tmp_path)
    git(repo, "symbolic-ref", "refs/heads/alias", f"refs/heads/{repo.branch}")
    blob = git(repo, "rev-parse", f"{repo.branch}:{repo.path_for(record.id)}").strip()
    with GitDir(str(repo.git_dir)) as reader:
        assert reader.ref("refs/heads/alias") is None
        assert reader.read(bytes.fromhex(blob)) is not None
    (repo.git_dir / "objects" / blob[:2] / blob[2:]).unlink()
    _detached_head(repo, tmp_path)
    with GitDir(str(repo.git_dir)) as reader:
        assert reader.head_branch() is None
        assert reader.read(bytes.fromhex(blob)) is None


@pytest.mark.parametrize(
    "make",
    [_alternates, _grafts, _replace_ref, _packed_replace_ref, _extension, _detached_head],
)
def test_unusual_repositories_are_left_to_libgit2(tmp_path: Path, gr, make) -> None:
    repo, record = plain_repo(tmp_path)
    make(repo, tmp_path)
    assert fast_record(State(repo_path=str(repo.git_dir)), record.id) is None
    result = gr(repo, "get", str(record.id))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"title": "Plain"}


def test_a_symbolic_branch_is_left_to_libgit2(tmp_path: Path) -> None:
    repo, record = plain_repo(tmp_path)
    git(repo, "symbolic-ref", "refs/heads/alias", f"refs/heads/{repo.branch}")
    assert fast_record(State(repo_path=str(repo.git_dir), branch="alias"), record.id) is None


def test_a_missing_object_is_reported_by_libgit2(tmp_path: Path) -> None:
    repo, record = plain_repo(tmp_path)
    _missing_object(repo, tmp_path)
    assert fast_record(State(repo_path=str(repo.git_dir)), record.id) is None
    from click.testing import CliRunner

    from gitrecords.cli import cli

    result = CliRunner().invoke(cli, ["--repo", str(repo.git_dir), "get", str(record.id)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")


def test_a_worktree_is_left_to_libgit2(tmp_path: Path, gr) -> None:
    repo = Repository.init(tmp_path / "clone", bare=False)
    with repo:
        record = Record.create({"title": "Plain"}, pid_minters=[])
    subprocess.run(
        ["git", "-C", str(tmp_path / "clone"), "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt")],
        check=True,
    )
    assert (tmp_path / "wt" / ".git").is_file()
    assert fast_record(State(repo_path=str(tmp_path / "wt"), branch=repo.branch), record.id) is None
    expected = layout.dumps({"title": "Plain"}).decode()
    assert fast_record(State(repo_path=str(tmp_path / "clone")), record.id) == expected
    result = gr(tmp_path / "wt", "--branch", repo.branch, "get", str(record.id))
    assert result.stdout == expected


def test_deleted_missing_and_broken_records_are_left_to_the_repository(tmp_path: Path, gr) -> None:
    repo, _record = plain_repo(tmp_path)
    state = State(repo_path=str(repo.git_dir))
    with repo:
        other = Record.create({"title": "Other"}, pid_minters=[])
        other.delete()
    assert fast_record(state, other.id) is None
    assert fast_record(state, layout.normalize_id("deadbeef-9fe4-43d3-a08f-38c2b309afba")) is None
    result = gr(repo, "get", str(other.id))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: record {other.id} is deleted (use --with-deleted to show it)\n",
    )
    result = gr(repo, "get", "--with-deleted", str(other.id))
    assert (result.stdout, result.stderr) == ("{}\n", f"record {other.id} is deleted\n")


# -- the CLI's fast get gives what the repository gives -----------------------------------------


def both_ways(gr, monkeypatch, repo: Repository, *args: str) -> tuple[str, str]:
    """stdout of ``gitrecords get ARGS`` through the fast path and through the repository
    (the fast path switched off)."""
    import gitrecords.cli.get

    fast = gr(repo, "get", *args)
    with monkeypatch.context() as patch:
        patch.setattr(gitrecords.cli.get, "fast_record", lambda *a, **k: None)
        full = gr(repo, "get", *args)
    assert (fast.exit_code, fast.stderr) == (full.exit_code, full.stderr)
    return fast.stdout, full.stdout


@pytest.mark.parametrize("packed", [False, True])
def test_get_and_get_json_give_what_the_repository_gives(
    tmp_path: Path, gr, monkeypatch, packed: bool
) -> None:
    repo, records = many_revisions(tmp_path, revisions=6, records=3)
    with repo:
        records[2].delete()
    if packed:
        git(repo, "gc", "--quiet")
    state = State(repo_path=str(repo.git_dir))
    for record in records[:2]:
        assert fast_record(state, record.id) is not None
        assert fast_record(state, record.id, as_json=True) is not None
        for args in ((), ("--json",), ("--with-deleted",), ("--json", "--with-deleted")):
            fast, full = both_ways(gr, monkeypatch, repo, *args, str(record.id))
            assert fast == full
        assert json.loads(fast)["revision_id"] == 6
    deleted = str(records[2].id)
    for args in ((), ("--json",), ("--with-deleted",), ("--json", "--with-deleted")):
        fast, full = both_ways(gr, monkeypatch, repo, *args, deleted)
        assert fast == full


def test_get_json_of_a_tip_the_index_has_not_seen_is_left_to_the_repository(
    tmp_path: Path, gr, monkeypatch, curator_identity
) -> None:
    """A commit made with plain git: the index must catch up, which the repository does."""
    repo, record = plain_repo(tmp_path)
    path = repo.path_for(record.id)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.git_dir), str(clone)], check=True)
    (clone / path).write_text(layout.dumps({"title": "Changed by git"}).decode())
    subprocess.run(["git", "-C", str(clone), "commit", "-q", "-am", "by git"], check=True)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", f"HEAD:{repo.branch}"], check=True)
    state = State(repo_path=str(repo.git_dir))
    assert fast_record(state, record.id) == layout.dumps({"title": "Changed by git"}).decode()
    assert fast_record(state, record.id, as_json=True) is None
    fast, full = both_ways(gr, monkeypatch, repo, "--json", str(record.id))
    assert fast == full
    assert json.loads(fast)["revision_id"] == 1
    assert fast_record(state, record.id, as_json=True) == fast  # the repository caught the index up
    (repo.git_dir / "gitrecords" / f"index-{repo.branch}.sqlite").unlink()
    assert fast_record(state, record.id, as_json=True) is None
