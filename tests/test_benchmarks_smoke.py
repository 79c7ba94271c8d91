"""The benchmark suite (benchmarks/) still runs: every code path at a tiny size, no timing asserted."""

from __future__ import annotations

from pathlib import Path

from benchmarks import data
from benchmarks.run import OPS, Settings, render, run_all
from gitrecords import layout


def test_benchmark_records_follow_format_1() -> None:
    record_id = data.record_id(7)
    assert data.record_path(record_id) == layout.path_for(record_id)
    assert data.canonical(data.record(7)) == layout.dumps(data.record(7))
    assert data.record(7) == data.record(7)  # deterministic


def test_benchmark_suite_runs(tmp_path: Path) -> None:
    settings = Settings(
        sizes=[50],
        ops=list(OPS),
        systems=["api", "api-nondurable", "cli", "raw", "scan", "floor"],
        workdir=tmp_path,
        invenio_python=None,
        commits=40,
        hot_revisions=5,
        counts={op: 5 for op in OPS},
        cli_ops=1,
        budget=5,
        bulk_budget=5,
        validate_budget=5,
        inprocess=True,
        calibrate=False,
        quiet=True,
    )
    report = run_all(settings)
    rows = report["sizes"][0]["rows"]
    assert set(rows) == set(OPS)
    for op, results in rows.items():
        for system, result in results.items():
            assert "error" not in result, (op, system, result.get("error"))
            assert result["skipped"] or result["ops"] > 0, (op, system)
    assert rows["import"]["api"]["ops"] == 50
    assert rows["validate"]["raw"]["ops"] == 50
    # the search index, the old linear scan and the bare SQLite floor find the same records
    for kind, found in rows["search"]["api"]["extra"]["kinds"].items():
        assert found["hits"] == rows["search"]["scan"]["extra"]["kinds"][kind]["hits"], kind
        assert found["hits"] == rows["search"]["floor"]["extra"]["kinds"][kind]["hits"], kind
    text = render(report, settings)
    assert "bulk import" in text and "raw git" in text and "linear scan" in text
    assert rows["search_commit"]["api"]["extra"]["index_update_p50_ms"] > 0
    assert "in an update of a record" in text
    assert "| operation |" in render(report, settings, markdown=True)


def test_bulk_change_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/bulk_edit.py end to end on a few records: every step, the table and the verdicts."""
    from benchmarks import bulk_edit

    out = tmp_path / "edit.md"
    bulk_edit.main(["--sizes", "300", "--workdir", str(tmp_path / "work"), "--markdown", str(out)])
    text = out.read_text()
    for step in ("| import | 300 |", "| index | 300 |", "| edit | 300 |", "| undo | 300 |"):
        assert step in text
    assert "peak RSS under 500 MB" in text


def test_bulk_change_benchmark_in_chunks(tmp_path: Path) -> None:
    """With --chunk, the edit makes one commit per chunk and the undo restores every record."""
    from benchmarks import bulk_edit

    out = tmp_path / "edit.md"
    argv = ["--sizes", "250", "--chunk", "100", "--workdir", str(tmp_path / "work"), "--markdown", str(out)]
    bulk_edit.main(argv)
    text = out.read_text()
    assert "N = 250, commits of 100 records" in text
    assert "| edit | 250 |" in text and "| undo | 250 |" in text


def test_serving_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/serving.py end to end: gunicorn with one worker, every row, the verdict; no timing."""
    import pytest

    pytest.importorskip("gunicorn")
    from benchmarks import serving

    out = tmp_path / "serving.md"
    argv = ["--records", "200", "--seconds", "1", "--workers", "1", "--clients", "4", "--quiet"]
    report = serving.main([*argv, "--workdir", str(tmp_path / "work"), "--markdown", str(out)])
    rows = {r["row"]: r for r in report["rows"]}
    expected = {"hello (bare Flask)", "GET by id", "PUT (durable update)", *(n for n, _ in serving.SEARCHES)}
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["errors"] == 0, (name, row["first_error"])
        assert row["requests"] > 0, name
    text = out.read_text()
    assert "| 1 | GET by id |" in text and "GET by id >= 50% of the hello floor" in text


def test_group_commit_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/group_commit.py end to end on a few records: writers of this checkout and of
    a baseline revision, each run's figures and the table."""
    from benchmarks import group_commit

    out = tmp_path / "group.md"
    args = ["--records", "50", "--writers", "2", "--ops", "4", "--repeat", "1", "--baseline", "HEAD"]
    group_commit.main(
        [*args, "--systems", "baseline,gitrecords", "--workdir", str(tmp_path), "--markdown", str(out)]
    )
    text = out.read_text()
    assert "| gitrecords, group commit |" in text
    assert "| gitrecords HEAD (one flush per write) |" in text
