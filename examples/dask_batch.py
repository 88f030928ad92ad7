"""Solve a batch file of gradcalc problems with Dask, beyond one machine's processes.

    pip install "gradcalc[dask]"
    python examples/dask_batch.py problems.txt --at A=2 > results.jsonl

`gradcalc.solve_line` is a plain, picklable function from one problem to one JSON-ready
result, so a `dask.bag` maps it over the lines like any other function; the same works with
a distributed cluster (`dask.distributed.Client`). Output: JSON Lines, in input order.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

import dask.bag as db

from gradcalc import solve_line


def numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) for the problems of one file partition: blank and # lines skipped."""
    for number, text in enumerate(lines, 1):
        text = text.rstrip("\r\n").lstrip("\ufeff")
        if text.strip() and not text.lstrip().startswith("#"):
            yield number, text


def solve_file(path: str, at: dict[str, float] | None = None,
               scheduler: str = "processes") -> list[dict]:
    """Every problem of the file at ``path``, solved by Dask, in input order."""
    # blocksize=None keeps each file in one partition, so line numbers stay exact.
    bag = db.read_text(path, blocksize=None).map_partitions(lambda part: list(numbered(part)))
    solved = bag.map(lambda item: solve_line(item[1], at=at, line=item[0]))
    return solved.compute(scheduler=scheduler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--at", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--scheduler", default="processes",
                        choices=["processes", "threads", "synchronous"])
    args = parser.parse_args()
    at = {}
    for item in (part for given in args.at for part in given.split(",") if part.strip()):
        name, _, value = item.partition("=")
        at[name.strip()] = float(value)
    results = solve_file(args.path, at, args.scheduler)
    for result in results:
        sys.stdout.write(json.dumps(result) + "\n")
    sys.exit(1 if any(r["error"] for r in results) else 0)


if __name__ == "__main__":
    main()
