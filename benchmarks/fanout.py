"""Measure what one single-record commit costs under three directory layouts.

    python benchmarks/fanout.py [--sizes 1000,10000,100000,1000000]

For each layout (flat folder, one level of 256, two levels of 256 = format 1)
and each repository size N, it builds a tree of N record files with pygit2,
then writes 20 single-record commits the way gitrecords does (path-copying
with TreeBuilder) and reports the bytes of new tree objects per commit and the
median commit time. Record blobs are shared (their size does not depend on
the layout), so the figures isolate the cost of the trees.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gitrecords import _git


def path_flat(name: str) -> str:
    return f"records/{name}.json"


def path_one(name: str) -> str:
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"records/{h[:2]}/{name}.json"


def path_two(name: str) -> str:
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"records/{h[:2]}/{h[2:4]}/{name}.json"


LAYOUTS = {"flat": path_flat, "1x256": path_one, "2x256 (format 1)": path_two}


def build(repo: pygit2.Repository, paths: list[str], blob: pygit2.Oid) -> pygit2.Oid:
    nested: dict = {}
    for path in paths:
        node = nested
        *dirs, leaf = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = blob

    def write(node: dict) -> pygit2.Oid:
        builder = repo.TreeBuilder()
        for name, value in node.items():
            if isinstance(value, dict):
                builder.insert(name, write(value), pygit2.enums.FileMode.TREE)
            else:
                builder.insert(name, value, pygit2.enums.FileMode.BLOB)
        return builder.write()

    return write(nested)


def tree_bytes(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> tuple[int, int]:
    """Raw and zlib-compressed size of the tree objects the commit added."""
    added: list[pygit2.Oid] = []

    def walk(old_id: pygit2.Oid | None, new_id: pygit2.Oid) -> None:
        if old_id == new_id:
            return
        added.append(new_id)
        old_tree = repo[old_id] if old_id is not None else None
        for entry in repo[new_id]:
            if entry.type != pygit2.enums.ObjectType.TREE:
                continue
            previous = None
            if old_tree is not None and entry.name in old_tree:
                previous = old_tree[entry.name].id
            walk(previous, entry.id)

    walk(old, new)
    raw = sum(len(repo[o].read_raw()) for o in added)
    packed = sum(len(zlib.compress(repo[o].read_raw())) for o in added)
    return raw, packed


def measure(n: int, layout: str, commits: int = 20) -> tuple[float, float, float]:
    make_path = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        repo = pygit2.init_repository(tmp, bare=True, initial_head="main")
        blob = repo.create_blob(b'{\n  "title": "x"\n}\n')
        names = [str(uuid.UUID(int=i, version=4)) for i in range(n)]
        tree = build(repo, [make_path(x) for x in names], blob)
        sig = pygit2.Signature("bench", "bench@localhost")
        tip = repo.create_commit("refs/heads/main", sig, sig, "import", tree, [])
        sizes, compressed, times = [], [], []
        for i in range(commits):
            new_blob = repo.create_blob(f'{{\n  "title": "{i}"\n}}\n'.encode())
            started = time.perf_counter()
            base_tree = repo[tip].tree
            new_tree = _git.build_tree(repo, base_tree, {make_path(names[i * 7919 % n]): new_blob})
            tip = repo.create_commit("refs/heads/main", sig, sig, f"update {i}", new_tree, [tip])
            times.append(time.perf_counter() - started)
            raw, packed = tree_bytes(repo, base_tree.id, new_tree)
            sizes.append(raw)
            compressed.append(packed)
        return statistics.median(sizes), statistics.median(compressed), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'layout':<18} {'records':>9} {'new tree bytes':>15} {'zlib bytes':>11} {'commit ms':>10}")
    for layout in LAYOUTS:
        for n in sizes:
            raw, packed, seconds = measure(n, layout)
            print(f"{layout:<18} {n:>9,} {raw:>15,.0f} {packed:>11,.0f} {seconds * 1000:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
