"""`python -m overparam.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR]`: rebuild a sweep's report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from overparam.report import report_exit_code, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overparam.report",
                                     description="Rebuild a sweep's report from its result files.")
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep folder(s) holding result.json files")
    parser.add_argument("--out", type=Path, help="where to write the report (default: the first sweep folder)")
    args = parser.parse_args(argv)
    for sweep_dir in args.sweep_dirs:
        if not sweep_dir.is_dir():
            parser.error(f"SWEEP_DIR {sweep_dir} is not a directory")
    rows = write_report(*args.sweep_dirs, out=args.out)
    return report_exit_code(rows)


if __name__ == "__main__":
    sys.exit(main())
