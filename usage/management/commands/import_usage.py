import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from usage.csv_import import MAX_REPORTED, ImportRefused, ImportSummary, usage_csv_import
from usage.imports import upload_store, usage_import_create, usage_import_summary
from usage.models import UsageImport

# How often --wait reads the import's progress.
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Imports usage records from a carrier CSV export (plain or gzip). The columns are documented in "
        "docs/csv-import.md. By default nothing is imported when any row is invalid; with --queue a worker "
        "imports the file (CSV or NDJSON) in the background."
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
        mode.add_argument(
            "--queue",
            action="store_true",
            help="store the file in the background, as POST /api/v1/usage/imports does: a worker imports "
            "the valid rows and reports the invalid ones by line; prints the import's id",
        )
        parser.add_argument(
            "--reject-file", type=Path, help="where invalid rows go (default: FILE.rejects.csv)"
        )
        parser.add_argument(
            "--format",
            choices=[UsageImport.Format.CSV, UsageImport.Format.NDJSON],
            help="with --queue: the file's format (default: ndjson for .ndjson/.jsonl[.gz] files, else csv)",
        )
        parser.add_argument(
            "--wait", action="store_true", help="with --queue: follow the import's progress until it ends"
        )

    def handle(self, *args, file: Path, check: bool, skip_invalid: bool, reject_file: Path | None, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        if options["queue"]:
            self._queue(file, file_format=options["format"] or _format_of(file), wait=options["wait"])
            return
        if options["wait"] or options["format"]:
            raise CommandError("--wait and --format go with --queue.")
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

    def _queue(self, file: Path, *, file_format: str, wait: bool) -> None:
        """Copies the file into USAGE_IMPORT_DIR (hashing it: the same file again is the same
        import) and queues its import; with `wait`, shows its progress until it ends."""
        with file.open("rb") as source:
            upload = upload_store(source, suffix=file_format, max_bytes=None)
        usage_import, created = usage_import_create(token=None, format=file_format, upload=upload)
        already = "" if created else f" (this file was queued before: {usage_import.status})"
        self.stdout.write(f"Import {usage_import.pk}{already}")
        if wait:
            self._follow(usage_import)

    def _follow(self, usage_import: UsageImport) -> None:
        with tqdm(total=usage_import.bytes_total, unit="B", unit_scale=True, file=self.stderr) as bar:
            while usage_import.status not in (UsageImport.Status.DONE, UsageImport.Status.FAILED):
                time.sleep(POLL_SECONDS)
                usage_import.refresh_from_db()
                bar.update(usage_import.bytes_done - bar.n)
        self._report(usage_import_summary(usage_import), checked_only=False)
        if usage_import.status == UsageImport.Status.FAILED:
            raise CommandError(usage_import.failure)


def _format_of(file: Path) -> str:
    name = file.name.lower().removesuffix(".gz")
    ndjson = name.endswith((".ndjson", ".jsonl"))
    return UsageImport.Format.NDJSON if ndjson else UsageImport.Format.CSV
