"""Solve files of gradcalc problems with Dask: on this machine's processes, or on a cluster.

    pip install "gradcalc[dask]"    # dask.bag and dask.distributed
    python examples/dask_batch.py problems.txt --at A=2 > results.jsonl
    python examples/dask_batch.py 'parts/*.txt' --out results --local-cluster 2
    python examples/dask_batch.py 'parts/*.txt' --out results --scheduler tcp://host:8786

Each input file is one partition: its lines keep their numbers, and its results keep its order.
With ``--out``, the results are written as one JSON Lines file per input file (``part-00000.jsonl``,
``part-00001.jsonl``, ... in the order of the input paths), by the workers themselves, so
nothing passes through this process; without it, they go to standard output, in order.
``--scheduler`` connects to a running ``dask.distributed`` scheduler (a cluster: the input and
output paths must then be ones the workers can reach, such as a shared disk or ``s3://``),
``--local-cluster N`` starts one with N worker processes here; otherwise Dask's own
``processes`` scheduler runs. The code is the same in every case: ``gradcalc.solve_line`` is a
plain, picklable function, and each worker process keeps its own cache of shapes, so lines of
a repeated shape are answered from their compiled plan on every worker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dask
import dask.bag as db

from gradcalc import solve_line


def numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) for the problems of one file: blank and # lines skipped."""
    for number, text in enumerate(lines, 1):
        text = text.rstrip("\r\n").lstrip("\ufeff")
        if text.strip() and not text.lstrip().startswith("#"):
            yield number, text


def solve_partition(lines: Iterable[str], at: dict[str, float] | None = None,
                    wrt: Sequence[str] | None = None, of: str | None = None
                    ) -> list[dict[str, Any]]:
    """The results of one file's lines, in order (run on a worker)."""
    return [solve_line(text, at=at, wrt=wrt, of=of, line=number)
            for number, text in numbered(lines)]


def solve_files(paths: str | list[str], at: dict[str, float] | None = None,
                wrt: Sequence[str] | None = None, of: str | None = None) -> db.Bag:
    """A bag of the results of every problem in ``paths`` (a path, a glob or a list), one
    partition per file, each in its file's order."""
    # blocksize=None keeps each file in one partition, so line numbers stay exact.
    lines = db.read_text(paths, blocksize=None)
    return lines.map_partitions(solve_partition, at=at, wrt=wrt, of=of)


def solve_file(path: str, at: dict[str, float] | None = None,
               scheduler: str = "processes") -> list[dict[str, Any]]:
    """Every problem of the file at ``path``, solved by Dask, in input order."""
    return solve_files(path, at).compute(scheduler=scheduler)


def json_line(result: dict[str, Any]) -> str:
    """A result as ``gradcalc --batch --format jsonl`` writes it on a UTF-8 output."""
    return json.dumps(result, ensure_ascii=False)


def write_files(results: db.Bag, folder: str, scheduler: str | None = None) -> bool:
    """Write one JSON Lines file per partition into ``folder`` (``part-00000.jsonl``, ...,
    written by the workers); returns whether any line failed. One pass over the problems."""
    writes = results.map(json_line).to_textfiles(
        f"{folder.rstrip('/')}/part-*.jsonl", name_function=_part_name, last_endline=True,
        compute=False)
    failed = results.map(_failed).any()
    _, any_failed = dask.compute(writes, failed, scheduler=scheduler)
    return bool(any_failed)


def _part_name(index: int) -> str:
    return f"{index:05d}"


def _failed(result: dict[str, Any]) -> bool:
    return result["error"] is not None


def _values(items: list[str]) -> dict[str, float]:
    at = {}
    for item in (part for given in items for part in given.split(",") if part.strip()):
        name, _, value = item.partition("=")
        at[name.strip()] = float(value)
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="files or globs of problems, one per line")
    parser.add_argument("--at", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--wrt", default=None, help="names, separated by commas")
    parser.add_argument("--of", default=None)
    parser.add_argument("--out", default=None, help="a folder for the JSON Lines files")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a dask.distributed scheduler, e.g. tcp://host:8786")
    where.add_argument("--local-cluster", type=int, default=None, metavar="N",
                       help="start a dask.distributed cluster of N worker processes here")
    args = parser.parse_args()
    wrt = [n.strip() for n in args.wrt.split(",")] if args.wrt else None
    results = solve_files(args.paths if len(args.paths) > 1 else args.paths[0],
                          _values(args.at), wrt, args.of)
    with contextlib.ExitStack() as stack:
        if args.scheduler or args.local_cluster:
            from dask.distributed import Client, LocalCluster

            cluster = args.scheduler or stack.enter_context(LocalCluster(
                n_workers=args.local_cluster, threads_per_worker=1, dashboard_address=None))
            stack.enter_context(Client(cluster))
            scheduler = None  # the client's
        else:
            scheduler = "processes"
        if args.out:
            sys.exit(1 if write_files(results, args.out, scheduler) else 0)
        solved = results.compute(scheduler=scheduler)
    for result in solved:
        sys.stdout.write(json_line(result) + "\n")
    sys.exit(1 if any(r["error"] for r in solved) else 0)


if __name__ == "__main__":
    main()
