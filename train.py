#!/usr/bin/env python3
"""Data-team entry point: train a routing bundle on your own tickets and get an evaluation report.

    python train.py --data tickets.csv [--eval test.csv] --out models/NAME [--promote]

The file is CSV (UTF-8, with a header) or JSONL with columns title, content, category[, department]; category is
one of the 15 first-level classes. The bundle and report.md/report.json are written to --out.
"""

from __future__ import annotations

import argparse
import sys

from triage.errors import TriageError
from triage.logs import configure_logging
from triage.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, action="append", help="training tickets (CSV or JSONL); repeat to combine files")
    parser.add_argument("--eval", dest="eval_data", help="labelled file to evaluate the new bundle on")
    parser.add_argument("--out", required=True, help="new bundle directory, e.g. models/city-2026.11")
    parser.add_argument("--taxonomy", help="category tree CSV (level1, level2, level3); default: the shared one")
    parser.add_argument("--no-corpora", action="store_true", help="do not add our authored petitions")
    parser.add_argument("--no-risk", action="store_true", help="do not train the risk detector")
    parser.add_argument("--promote", action="store_true", help="promote the bundle when done")
    args = parser.parse_args(argv)

    configure_logging("WARNING")
    from triage import bundle as bundles
    from triage.training import train_bundle

    try:
        path, report = train_bundle(
            args.data,
            args.out,
            eval_data=args.eval_data,
            settings=get_settings(),
            use_corpora=not args.no_corpora,
            with_risk=not args.no_risk,
            taxonomy=args.taxonomy,
        )
        if args.promote:
            bundles.promote(path.parent, path.name)
    except TriageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"bundle written: {path}")
    if "eval" in report:
        ev = report["eval"]
        print(f"macro-F1 {ev['macro_f1']:.4f}  accuracy {ev['accuracy']:.4f}  ECE {ev['ece']:.4f}  report: {path / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
