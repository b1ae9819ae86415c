import os
import subprocess
import sys

from django.conf import settings

LOAD_SETTINGS = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS],
        env={**clean, "DJANGO_SETTINGS_MODULE": "esimdash.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_debug_a_secret_key_is_required():
    result = _run({"DEBUG": "false"})
    assert result.returncode == 1
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_a_local_debug_run_generates_and_keeps_a_secret_key():
    first, second = _run({"DEBUG": "true"}), _run({"DEBUG": "true"})
    assert first.returncode == 0
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout


def test_the_suite_runs_on_the_database_it_was_asked_for(request, db):
    from django.db import connection

    assert connection.vendor == request.config.getoption("--database")


def test_every_task_beat_schedules_is_a_registered_task(db):
    from esimdash.celery import app

    # What a worker does at start: Django's checks (they ask the database), then each app's tasks.
    app.loader.import_default_modules()
    scheduled = sorted(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())
    assert "esimdash.accounts.tasks.sign_in_logs_prune" in scheduled
    assert [name for name in scheduled if name not in app.tasks] == []
