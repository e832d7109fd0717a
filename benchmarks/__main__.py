"""``python -m benchmarks`` (``make bench``): run the benchmark suite (:mod:`benchmarks.suite`) and print
one JSON document on stdout; everything else the run prints (Lightning, worker processes) goes to stderr.

Usage: python -m benchmarks [--threads 2] [--seed 0] [--quick] [--no-alerts] [--work DIR] [--out FILE.json]
       [--markdown FILE.md]
       python -m benchmarks --table-from FILE.json      (the Markdown table of a saved run)

``--quick`` runs small sizes (a smoke test of the suite, about 3 minutes; figures are noisier);
``--markdown`` also writes the summary rows as the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

QUICK = {
    "ingest_n": 500,
    "galaxies": 10,
    "triplets": 1200,
    "train_seconds": 15.0,
    "augment_seconds": 0.5,
    "score_rounds": 1,
    "score_seconds": 0.5,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every section")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the suite")
    parser.add_argument("--no-alerts", action="store_true", help="skip the alerts section")
    parser.add_argument("--work", type=Path, help="keep the simulated data, store and model here")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--markdown", type=Path, help="write the summary as a Markdown table here")
    parser.add_argument(
        "--table-from", type=Path, help="only print the Markdown table of a saved suite JSON (no run)"
    )
    args = parser.parse_args(argv)
    if args.table_from:
        from benchmarks.suite import markdown_table, summary_rows

        result = json.loads(args.table_from.read_text())
        result["summary"] = summary_rows(result)
        print(markdown_table(result), end="")
        return 0

    # Keep stdout for the JSON alone: anything printed meanwhile (also by child processes) goes to stderr.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        from benchmarks.suite import markdown_table, run

        sizes = QUICK if args.quick else {}
        result = run(
            threads=args.threads, seed=args.seed, with_alerts=not args.no_alerts, work=args.work, **sizes
        )
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(markdown_table(result))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
