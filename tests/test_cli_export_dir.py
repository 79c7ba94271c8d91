"""CLI: ``export --dir`` writes a complete copy that ``init --from`` makes into a repository again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import SAMPLE_REPO, TITLE_SCHEMA, git

from gitrecords import Repository, layout
from gitrecords.errors import BatchValidationError, InitValidationError
from gitrecords.schema import INLINE_SCHEMAS_REFUSED


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


# -- init --from checks the schemas ----------------------------------------------

SUBSET = "https://schemas.gitrecords.org/datacite/datacite-v4.5-subset.json"


def sample_without_the_subset(tmp_path: Path) -> Path:
    """sample-repo/ with common-v1.json but without the schema every record names."""
    source = tmp_path / "partial"
    shutil.copytree(SAMPLE_REPO, source)
    (source / "schemas" / "datacite" / "datacite-v4.5-subset.json").unlink()
    return source


def test_init_from_refuses_records_whose_schema_is_missing(gr, tmp_path):
    source = sample_without_the_subset(tmp_path)
    target = tmp_path / "copy.git"
    result = gr(None, "init", "--from", str(source), str(target))
    assert result.exit_code == 1
    ids = sorted(p.stem for p in (SAMPLE_REPO / "records").rglob("*.json"))
    lines = result.stderr.splitlines()
    assert sorted(lines[:-1]) == [
        f"record {i}: /$schema: schema '{SUBSET}' is not in the schema store (schemas/)" for i in ids
    ]
    assert lines[-1] == (
        f"Error: 60 records name a schema that is not in the schema store of {source}; nothing was "
        "created: add the schema files there, or use --allow-missing-schemas to import the records anyway"
    )
    assert not target.exists()

    result = gr(None, "init", "--from", str(source), "--allow-missing-schemas", str(target))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert sorted(lines[:-1]) == [
        f"warning: record {i}: /$schema: schema '{SUBSET}' is not in the schema store (schemas/)" for i in ids
    ]
    assert lines[-1] == f"Initialised bare data repository in {target} (branch main, 60 records)"
    assert len(git(target, "ls-tree", "-r", "--name-only", "main", "records").split()) == 60
    result = gr(target, "validate")
    assert result.exit_code == 1
    assert result.stderr == "Error: 60 problems in 60 of 60 records\n"


def test_init_from_names_each_record_and_its_schema(gr, tmp_path):
    """$schema by path or by $id, the default schema, inline schemas; only the missing ones are refused."""
    source = tmp_path / "tree"
    (source / "schemas").mkdir(parents=True)
    (source / "schemas" / "title.json").write_text(json.dumps({**TITLE_SCHEMA, "$id": "https://ex.org/t"}))
    (source / "gitrecords.json").write_text(json.dumps({"default_schema": "gone.json"}))
    records = {
        "11111111-1111-4111-8111-111111111111": {"$schema": "title.json", "title": "by path"},
        "22222222-2222-4222-8222-222222222222": {"$schema": "https://ex.org/t", "title": "by $id"},
        "33333333-3333-4333-8333-333333333333": {"$schema": {"type": "object"}, "title": "inline"},
        "44444444-4444-4444-8444-444444444444": {"$schema": "nope.json", "title": "missing"},
        "55555555-5555-4555-8555-555555555555": {"title": "default schema, missing"},
    }
    for record_id, data in records.items():
        file = source / "records" / f"{record_id}.json"  # not yet at its canonical path
        file.parent.mkdir(exist_ok=True)
        file.write_text(json.dumps(data))
    result = gr(None, "init", "--from", str(source), str(tmp_path / "t.git"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:-1] == [
        "record 44444444-4444-4444-8444-444444444444: /$schema: "
        "schema 'nope.json' is not in the schema store (schemas/)",
        "record 55555555-5555-4555-8555-555555555555: /: "
        "default_schema 'gone.json' is not in the schema store (schemas/)",
    ]
    assert result.stderr.splitlines()[-1].startswith("Error: 2 records name a schema that is not in")
    assert not (tmp_path / "t.git").exists()
    # the same in Python
    with pytest.raises(BatchValidationError) as caught:
        Repository.init(tmp_path / "t.git", from_dir=source)
    assert [(p[1], p[2]) for p in caught.value.problems] == [
        ("44444444-4444-4444-8444-444444444444", "/$schema"),
        ("55555555-5555-4555-8555-555555555555", "/"),
    ]
    assert str(caught.value) == "2 problems in 2 of 5 records; nothing was written"
    assert not (tmp_path / "t.git").exists()
    repo = Repository.init(tmp_path / "t.git", from_dir=source, allow_missing_schemas=True)
    assert sum(1 for _ in repo.ids()) == 5
    # inline schemas refused by the settings are reported too
    (source / "gitrecords.json").write_text(json.dumps({"inline_schemas": False}))
    result = gr(None, "init", "--from", str(source), str(tmp_path / "u.git"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:-1] == [
        f"record 33333333-3333-4333-8333-333333333333: /$schema: {INLINE_SCHEMAS_REFUSED}",
        "record 44444444-4444-4444-8444-444444444444: /$schema: "
        "schema 'nope.json' is not in the schema store (schemas/)",
    ]


def test_init_from_checks_every_record_as_every_write_does(gr, tmp_path):
    """init --from committed records that every other write refuses (one PID in two records, a
    file over max_record_bytes, the reserved key, data its schema refuses); validate found them
    afterwards. They are refused now, each named, and nothing is created."""
    source = tmp_path / "bad"
    shutil.copytree(SAMPLE_REPO, source)
    files = sorted((source / "records").rglob("*.json"))
    first, second, third = (json.loads(f.read_text()) for f in files[:3])
    second["control_number"] = first["control_number"]
    third["publicationYear"] = 12
    files[1].write_text(json.dumps(second))
    files[2].write_text(json.dumps(third))
    result = gr(None, "init", "--from", str(source), str(tmp_path / "t.git"))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"/control_number: PID recid:{first['control_number']} is also used by record" in result.stderr
    assert "/publicationYear: 12 is not of type 'string'" in result.stderr
    assert lines[-1].startswith("Error: ") and "nothing was created" in lines[-1]
    assert not (tmp_path / "t.git").exists()
    with pytest.raises(InitValidationError) as caught:
        Repository.init(tmp_path / "t.git", from_dir=source)
    assert {p[2] for p in caught.value.problems} >= {"/control_number", "/publicationYear"}
    assert not (tmp_path / "t.git").exists()
    (tmp_path / "empty").mkdir()  # an empty folder given stays, empty
    with pytest.raises(InitValidationError):
        Repository.init(tmp_path / "empty", from_dir=source)
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_allow_missing_schemas_goes_with_from(gr, tmp_path):
    result = gr(None, "init", "--allow-missing-schemas", str(tmp_path / "x.git"))
    assert result.exit_code == 2
    assert result.stderr == "Error: --allow-missing-schemas goes with --from DIRECTORY\n"
    assert not (tmp_path / "x.git").exists()


def test_a_copy_keeps_the_pids_of_hard_deleted_records_reserved(gr, tmp_path):
    """purged.txt goes into the export too: a copy must not mint a purged record's number again."""
    source = Repository.init(tmp_path / "source.git", config={"mint": ["recid"]})
    first = gr(source, "create", input='[{"title": "kept"}, {"title": "purged"}]').stdout.split()
    assert gr(source, "delete", "--force", "--yes", "-i", first[1]).exit_code == 0
    snapshot = tmp_path / "snapshot"
    result = gr(source, "export", "--dir", str(snapshot))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith("with gitrecords.json and 0 schema files and purged.txt\n")
    copy = tmp_path / "copy.git"
    assert gr(None, "init", "--from", str(snapshot), str(copy)).exit_code == 0
    new = gr(copy, "create", "--json", input='{"title": "new"}')
    assert json.loads(new.stdout)["records"][0]["pids"] == {"recid": "3"}  # not 2: it was purged
