"""Generate rulesets/calendars/cn.yaml (PRC working calendar) from the `holidays` package.

    .venv/bin/python scripts/import_cn_calendar.py            # (re)write rulesets/calendars/cn.yaml
    .venv/bin/python scripts/import_cn_calendar.py --check    # exit 1 if the file is out of date

Which years: every year for which `holidays.China` knows at least one official make-up working day (调休,
`weekend_workdays`) is *confirmed*: the package has transcribed its State Council notice. The file declares
`confirmed_through: <last day of the last confirmed year>`. The year after it (or `--through-year`) is kept
too, *unconfirmed*: only the days off that follow from the law alone (the statutory festivals incl. 除夕, and
their 补假 when one falls on a weekend); its make-up working days are unknown, so the service marks every
deadline computed past `confirmed_through` as provisional. Weekday hours are Mon–Fri 09:00–12:00 and
13:00–18:00; make-up days are worked with the same hours.

Holidays are every date the package lists as a public day off in those years: the statutory days, their
observed (补假) days and the extra golden-week days swapped against make-up days (休息日（由 … 调休）).
Some fall on weekends; they are kept with their names although a weekend is non-working anyway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "rulesets" / "calendars" / "cn.yaml"
sys.path.insert(0, str(ROOT))

from rulesvc.sla.calendar_file import load_calendar  # noqa: E402  (needs ROOT on sys.path)
from rulesvc.sla.cn_holidays import COMMAND, build  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the output file is out of date")
    parser.add_argument(
        "--through-year", type=int, default=None, help="keep unconfirmed years up to this one"
    )
    args = parser.parse_args(argv)
    text, years = build(args.through_year)

    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date; run: {COMMAND}", file=sys.stderr)
            return 1
        load_calendar(output)
        print(f"{output} is up to date ({years[0]}–{years[-1]})")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    calendar = load_calendar(output)  # the file must load with the service's own loader
    print(
        f"wrote {output}: years {years[0]}–{years[-1]} ({len(years)}), "
        f"{len(calendar.holidays)} holidays, {len(calendar.workdays)} make-up days"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
