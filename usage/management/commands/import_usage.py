from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from usage.csv_import import MAX_REPORTED, ImportRefused, ImportSummary, usage_csv_import


class Command(BaseCommand):
    help = (
        "Imports usage records from a carrier CSV export (plain or gzip). The columns are documented in "
        "docs/csv-import.md. By default nothing is imported when any row is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--check",
            action="store_true",
            help="check every row as an import would, and write nothing",
        )
        mode.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows; write the invalid ones to a reject file",
        )
        parser.add_argument(
            "--reject-file", type=Path, help="where invalid rows go (default: FILE.rejects.csv)"
        )

    def handle(self, *args, file: Path, check: bool, skip_invalid: bool, reject_file: Path | None, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        reject_file = reject_file or file.with_name(file.name + ".rejects.csv")
        rejects = reject_file if skip_invalid else None
        size = file.stat().st_size
        try:
            with tqdm(total=size, unit="B", unit_scale=True, desc=file.name, file=self.stderr) as bar:
                summary = usage_csv_import(
                    file,
                    skip_invalid=skip_invalid,
                    reject_path=rejects,
                    progress=bar.update,
                    check_only=check,
                )
        except ImportRefused as refused:
            if refused.summary:
                self._report(refused.summary, checked_only=check)
            raise CommandError(str(refused)) from refused
        self._report(summary, checked_only=check)
        if skip_invalid and summary.invalid:
            self.stdout.write(f"Invalid rows written to {reject_file}")

    def _report(self, summary: ImportSummary, *, checked_only: bool) -> None:
        for error in summary.errors:
            self.stderr.write(f"line {error.line_number}: {error.field}: {error.message}")
        if summary.invalid > len(summary.errors):
            self.stderr.write(f"(only the first {MAX_REPORTED} problems are listed)")
        if checked_only:
            valid = summary.read - summary.invalid
            self.stdout.write(
                f"read {summary.read}, valid {valid}, invalid {summary.invalid}; nothing was written"
            )
            return
        self.stdout.write(
            f"read {summary.read}, new {summary.new}, duplicate {summary.duplicate}, "
            f"invalid {summary.invalid}"
        )
