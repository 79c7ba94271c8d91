"""invenio-records 6.1 on file SQLite, the reference system, doing the same work.

Runs in a worker process of an interpreter that has the ``bench`` extra
(``--invenio-python``). The set-up is the one the reference notes describe: a
Flask app with InvenioDB and InvenioRecords, an SQLite file, ``db.create_all()``,
``Record.create(...)`` then ``db.session.commit()``. SQLite keeps its defaults
(rollback journal, ``synchronous=FULL``): every commit is durable. The
DataCite-lite schema is served from a local store (``InvenioRefResolver``), so
every create and commit validates the record, as gitrecords does.

The fixtures (N records; N records plus 10k single-record updates with
SQLAlchemy-Continuum version rows) are written with plain SQL, the way the git
fixtures are written with ``git fast-import``: building them through the ORM
would take longer than the whole benchmark. The worker checks them through the
invenio API before measuring.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import data
from .measure import Result, budgeted, partial_note, timed_each, timed_once, timed_within

warnings.simplefilter("ignore")  # SAWarnings and jsonschema's RefResolver deprecation, on every call

from flask import Flask  # noqa: E402
from invenio_db import InvenioDB, db  # noqa: E402
from invenio_records import InvenioRecords  # noqa: E402
from invenio_records.api import Record  # noqa: E402


def make_app(db_path: Path) -> Flask:
    app = Flask("gitrecords-bench")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{db_path}",
        RECORDS_REFRESOLVER_CLS="invenio_records.resolver.InvenioRefResolver",
        RECORDS_REFRESOLVER_STORE={data.SCHEMA_ID: data.schema()},
    )
    InvenioDB(app)
    InvenioRecords(app)
    return app


def run(op: str, spec: dict[str, Any]) -> Result:
    n = spec["n"]
    target = Path(spec["target"])
    app = make_app(target)
    with app.app_context():
        if op == "import":
            db.create_all()
            return _import(spec, n)
        return _run(op, spec, n)


def _import(spec: dict[str, Any], n: int) -> Result:
    budget = spec["bulk_budget"]

    def create_all() -> int:
        deadline = time.perf_counter() + budget
        done = 0
        with open(spec["tsv"], "rb") as stream:
            for line in stream:
                record_id, _, payload = line.rstrip(b"\n").partition(b"\t")
                Record.create(json.loads(payload), id_=uuid.UUID(record_id.decode()))
                done += 1
                if done % 100 == 0 and time.perf_counter() > deadline:
                    break
        db.session.commit()
        return done

    result = timed_once(create_all)
    result.note = "one transaction"
    if result.ops < n:
        result.note += "; " + partial_note(result.ops, n, budget)
    return result


def _run(op: str, spec: dict[str, Any], n: int) -> Result:
    budget = spec["budget"]
    ops = spec["ops"]
    session = db.session
    if op == "create":
        new = [(data.record_id(n + j), data.record(n + j)) for j in range(ops)]

        def create(item: Any) -> None:
            Record.create(item[1], id_=item[0])
            session.commit()

        return timed_each(budgeted(new, budget), create)
    if op == "get":
        ids = [data.record_id(i) for i in data.sample(n, ops, "get", exclude_hot=False)]
        return timed_each(budgeted(ids, budget), lambda i: Record.get_record(i))
    if op == "update":
        ids = [data.record_id(i) for i in data.sample(n, ops, "update")]

        def update(record_id: Any) -> None:
            record = Record.get_record(record_id)
            record["version"] = "3.0"
            record.commit()
            session.commit()

        return timed_each(budgeted(ids, budget), update)
    if op == "soft_delete":
        ids = [data.record_id(i) for i in data.sample(n, ops, "delete")]

        def delete(record_id: Any) -> None:
            Record.get_record(record_id).delete()
            session.commit()

        return timed_each(budgeted(ids, budget), delete)
    hot = data.record_id(data.HOT)
    if op == "revisions":
        record = Record.get_record(hot)
        expected = spec["hot_revisions"]

        def listing(_: int) -> None:
            revisions = list(record.revisions)
            if len(revisions) != expected:
                raise AssertionError(f"{len(revisions)} revisions, expected {expected}")

        return timed_each(budgeted(list(range(ops)), budget), listing)
    if op == "revert":
        state = {"record": Record.get_record(hot)}

        def revert(j: int) -> None:
            state["record"] = state["record"].revert(j % 2)
            session.commit()

        return timed_each(budgeted(list(range(ops)), budget), revert)
    if op == "hard_delete":
        record = Record.get_record(hot)

        def hard_delete() -> None:
            record.delete(force=True)
            session.commit()

        result = timed_once(hard_delete)
        result.note = f"{spec['commits']:,} versions in the table"
        return result
    if op == "validate":
        ids = [data.record_id(i) for i in range(n)]

        def validate_all() -> int:
            deadline = time.perf_counter() + budget
            done = 0
            for start in range(0, n, 500):
                for record in Record.get_records(ids[start : start + 500]):
                    record.validate()
                    done += 1
                session.expunge_all()
                if time.perf_counter() > deadline:
                    break
            return done

        return timed_within(validate_all, n, budget)
    raise ValueError(f"unknown operation {op!r}")


# -- fixtures ----------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_base(base: Path, tsv: Path) -> str:
    """An invenio database at ``base`` holding the records of ``tsv`` (plain SQL, one
    transaction); returns the time stamp the rows carry."""
    app = make_app(base)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    con = sqlite3.connect(base, isolation_level=None)
    now = _now()
    con.execute("BEGIN")
    con.execute('INSERT INTO "transaction" (id, remote_addr, issued_at) VALUES (1, NULL, ?)', (now,))
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        con.executemany("INSERT INTO records_metadata VALUES (?, ?, 1, ?, ?)", [b[:4] for b in batch])
        con.executemany(
            "INSERT INTO records_metadata_version VALUES (?, ?, 1, ?, ?, 1, NULL, 0)", [b[:4] for b in batch]
        )
        batch.clear()

    with open(tsv, "rb") as stream:
        for line in stream:
            record_id, _, payload = line.rstrip(b"\n").partition(b"\t")
            text = json.dumps(json.loads(payload))
            batch.append((uuid.UUID(record_id.decode()).bytes, text, now, now))
            if len(batch) >= 5000:
                flush()
    flush()
    con.execute("COMMIT")
    con.close()
    return now


def prepare(spec: dict[str, Any]) -> Result:
    """inv-base.db (N records, one transaction) and inv-history.db (plus the updates)."""
    n = spec["n"]
    base, history = Path(spec["base"]), Path(spec["history"])
    started = time.perf_counter()
    now = write_base(base, Path(spec["tsv"]))
    shutil.copyfile(base, history)
    con = sqlite3.connect(history, isolation_level=None)
    con.execute("BEGIN")
    state: dict[int, tuple[int, int]] = {}
    for j, (index, revision) in enumerate(data.history_plan(n, spec["commits"], spec["hot_revisions"])):
        tx = 2 + j
        key = data.record_id(index).bytes
        version, previous_tx = state.get(index, (1, 1))
        text = json.dumps(data.revised(data.record(index), revision))
        stamp = _now()
        con.execute('INSERT INTO "transaction" (id, remote_addr, issued_at) VALUES (?, NULL, ?)', (tx, stamp))
        con.execute(
            "UPDATE records_metadata_version SET end_transaction_id=? WHERE id=? AND transaction_id=?",
            (tx, key, previous_tx),
        )
        con.execute(
            "INSERT INTO records_metadata_version VALUES (?, ?, ?, ?, ?, ?, NULL, 1)",
            (key, text, version + 1, now, stamp, tx),
        )
        con.execute(
            "UPDATE records_metadata SET json=?, version_id=?, updated=? WHERE id=?",
            (text, version + 1, stamp, key),
        )
        state[index] = (version + 1, tx)
    con.execute("COMMIT")
    con.close()
    seconds = time.perf_counter() - started
    _check(history, spec)
    return Result(ops=n, seconds=seconds, note="fixture")


def _check(path: Path, spec: dict[str, Any]) -> None:
    """The SQL-built fixture reads back through the invenio API as if invenio had written it."""
    app = make_app(path)
    with app.app_context():
        record = Record.get_record(data.record_id(data.HOT))
        expected = spec["hot_revisions"]
        revisions = list(record.revisions)
        if record.revision_id != expected - 1 or len(revisions) != expected:
            raise AssertionError(
                f"invenio fixture: {len(revisions)} revisions, revision_id {record.revision_id}"
            )
        if dict(revisions[1]) != data.revised(data.record(data.HOT), 1) or dict(revisions[0]) != data.record(
            data.HOT
        ):
            raise AssertionError("invenio fixture: revision data differ")
        record.validate()
        other = Record.get_record(data.record_id(spec["n"] - 1))
        if other.revision_id is None:
            raise AssertionError("invenio fixture: record n-1 missing")
