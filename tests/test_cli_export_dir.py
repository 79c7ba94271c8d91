"""CLI: ``export --dir`` writes a complete copy that ``init --from`` makes into a repository again."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import TITLE_SCHEMA, git

from gitrecords import Repository, layout


def test_export_dir_round_trips_the_sample(gr, sample_repo, tmp_path):
    snapshot = tmp_path / "snapshot"
    result = gr(sample_repo, "export", "--dir", str(snapshot))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Exported 60 records to {snapshot} with gitrecords.json and 2 schema files\n"
    # gitrecords.json and the schema store, byte for byte as the repository holds them
    schema_paths = git(sample_repo, "ls-tree", "-r", "--name-only", "main", "schemas").split()
    assert len(schema_paths) == 2
    for path in ["gitrecords.json", *schema_paths]:
        assert (snapshot / path).read_bytes() == git(sample_repo, "show", f"main:{path}").encode("utf-8")
    exported = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    records = git(sample_repo, "ls-tree", "-r", "--name-only", "main", "records").split()
    assert exported == sorted(["gitrecords.json", *schema_paths, *records])

    copy = tmp_path / "copy.git"
    result = gr(None, "init", "--from", str(snapshot), str(copy))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Initialised bare data repository in {copy} (branch main, 60 records)\n"
    # the same settings, schemas and records: the same git trees
    for path in ("gitrecords.json", "schemas", "records"):
        assert git(copy, "rev-parse", f"main:{path}") == git(sample_repo, "rev-parse", f"main:{path}")
    result = gr(copy, "validate", "--json")
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert (report["valid"], report["checked"], report["invalid"], report["problems"]) == (True, 60, 0, [])


def test_export_dir_with_other_folders(gr, tmp_path):
    """A repository whose records and schemas live elsewhere (gitrecords.json says where)."""
    settings = {"records": "data", "schemas": "meta", "default_schema": "title.json"}
    source = Repository.init(tmp_path / "source.git", config=settings)
    source.put_schema("title.json", TITLE_SCHEMA)
    (note := tmp_path / "note.json").write_text('{"type": "object", "required": ["note"]}')
    assert gr(source, "schema", "add", str(note), "--path", "notes/note-v1.json").exit_code == 0
    ids = gr(source, "create", input='[{"title": "a"}, {"$schema": "notes/note-v1.json", "note": "b"}]')
    assert ids.exit_code == 0, ids.stderr
    deleted = gr(source, "create", input='{"title": "gone"}').stdout.strip()
    assert gr(source, "delete", "-i", deleted).exit_code == 0

    snapshot = tmp_path / "snapshot"
    result = gr(source, "export", "--dir", str(snapshot))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Exported 2 records to {snapshot} with gitrecords.json and 2 schema files\n"
    assert json.loads((snapshot / "gitrecords.json").read_bytes()) == source.config
    for path in ("meta/title.json", "meta/notes/note-v1.json"):
        assert (snapshot / path).read_bytes() == git(source, "show", f"main:{path}").encode("utf-8")
    for record_id in ids.stdout.split():
        assert (snapshot / layout.path_for(record_id, "data")).exists()

    copy = tmp_path / "copy.git"
    assert gr(None, "init", "--from", str(snapshot), str(copy)).exit_code == 0
    result = gr(copy, "validate")
    assert result.exit_code == 0, result.stdout
    assert result.stderr == "2 records valid\n"
    assert git(copy, "rev-parse", "main:meta") == git(source, "rev-parse", "main:meta")


def test_export_dir_refuses_a_directory_that_is_not_empty(gr, sample_repo, tmp_path: Path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = gr(sample_repo, "export", "--dir", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {target} already exists and is not empty\n"
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
