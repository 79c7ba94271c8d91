"""A probe of another embedded search engine for the search index: tantivy (Rust, through its
Python binding), on the benchmark's records (docs/performance.md, "Another engine, measured").

    pip install tantivy==0.27.0        # not a dependency of gitrecords
    python -m benchmarks.tantivy_probe [--records 100000] [--folder DIR]

One text field holds every scalar value of a record (as the search index's full-text column
does), with a record number and the publication year beside it. The documents are made before
the clock starts; the build is tantivy's writer (2 threads, 200 MB heap) and its commit; a query
is parsed, ranked (BM25, top 25) and counted, and its 25 record numbers read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

from . import data

QUERIES = ("glacier", "malaria", '"coral reefs"', '"sea ice"', "lovelace")


def texts(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            texts(item, out)
    elif isinstance(value, list):
        for item in value:
            texts(item, out)
    elif isinstance(value, str):
        out.append(value)
    elif value is not None and not isinstance(value, bool):
        out.append(str(value))


def main() -> None:
    import tantivy

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="tantivy-probe-")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("doc", stored=True, indexed=True, fast=True)
    builder.add_text_field("body", stored=False, tokenizer_name="default")
    builder.add_integer_field("year", indexed=True, fast=True)
    index = tantivy.Index(builder.build(), path=folder)
    documents = []
    for n in range(args.records):
        record = data.record(n)
        found: list[str] = []
        texts(record, found)
        documents.append((n, " . ".join(found), int(record.get("publicationYear") or 0)))
    started = time.perf_counter()
    writer = index.writer(heap_size=200_000_000, num_threads=2)
    for n, body, year in documents:
        writer.add_document(tantivy.Document(doc=n, body=body, year=year))
    writer.commit()
    writer.wait_merging_threads()
    build = time.perf_counter() - started
    index.reload()
    searcher = index.searcher()
    print(
        f"{args.records:,} records: build {build:.2f} s ({args.records / build:,.0f} records/s);"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    for text in QUERIES:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            result = searcher.search(index.parse_query(text, ["body"]), 25, count=True)
            [searcher.doc(address)["doc"][0] for _score, address in result.hits]
            times.append(time.perf_counter() - started)
        print(f"  {text}: first page p50 {statistics.median(times) * 1000:.2f} ms, {result.count:,} hits")
    size = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
    print(f"  size on disk {size / 1e6:.0f} MB")
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
