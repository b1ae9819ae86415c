"""esimdash settings. Every value that differs between machines is read from the environment here,
and only here; the README lists each variable with its default."""

import base64
import binascii
import datetime as dt
import re
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; a local (DEBUG) run keeps a generated one in var/."""
    if value := env.str("SECRET_KEY", default=""):
        return value
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "esimdash.accounts.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "esimdash.accounts",
    "plans",
    "usage",
    "alerts",
    "family",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Sees the response after every view and middleware inside it (docs/security.md, "Caching").
    "esimdash.accounts.middleware.PrivateCacheControlMiddleware",
    "esimdash.accounts.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "esimdash.accounts.middleware.SessionIdleTimeoutMiddleware",
    # allauth: turns "reauthentication required" into the confirm-it-is-you page, and remembers
    # each signed-in session (its device and address) for the list of one's sessions.
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "esimdash.urls"
WSGI_APPLICATION = "esimdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"data_units": "esimdash.units", "places": "esimdash.places"},
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'esimdash.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the Celery worker, beat and the simulator write at once. WAL lets readers
    # run beside the writer; IMMEDIATE takes the write lock at BEGIN so a transaction waits for
    # it (up to the timeout) instead of failing with "database is locked" when it upgrades.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # A file, not memory, so that a Celery worker started by a test can open the test database.
    # TEST_SQLITE_PATH lets two checkouts (or two people) run the suite side by side.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_SQLITE_PATH", default=str(VAR_DIR / "test-esimdash.sqlite3"))
    }
# Server-side binding lets psycopg prepare a query on its fifth run on a connection: PostgreSQL then
# no longer parses and plans it (the polls' version query: 0.42 ms of planning against 0.23 ms of
# running). A transaction-mode PgBouncer without max_prepared_statements cannot carry prepared
# statements: DATABASE_PREPARE_THRESHOLD=off there (docs/deploy.md). The PostgreSQL test run uses
# these options too.
_PREPARE_THRESHOLD = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
POSTGRESQL_OPTIONS = {
    "server_side_binding": _PREPARE_THRESHOLD != "off",
    "prepare_threshold": None if _PREPARE_THRESHOLD == "off" else int(_PREPARE_THRESHOLD),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = {**POSTGRESQL_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # An index's INCLUDE columns (usage.DailyUsage) are PostgreSQL's; SQLite builds the index
    # without them, which is all a single machine needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# Each web and worker process keeps its connection between requests (and checks it is alive before
# reusing it) instead of opening one per request: a new PostgreSQL connection is a new server
# process, with empty catalog caches, so its first queries are planned slowly. 0 closes the
# connection after each request, as Django does by default.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "usage:home"
LOGOUT_REDIRECT_URL = "account_login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security (docs/security.md) ----------------------------------------------------------------------
# Sign-in attempts are counted by django-axes (in the database). Five failures for one username, from
# anywhere, or from one address, for any usernames, pause signing in for that username or address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The pause lasts its length from the failure that started it: attempts during it are not counted,
# so "try again in 15 minutes" stays true and a guesser cannot keep someone locked out for ever.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# The sign-in and sign-out log (axes.AccessLog) is pruned daily past this age.
SIGN_IN_LOG_RETENTION_DAYS = env.int("SIGN_IN_LOG_RETENTION_DAYS", default=90)
AXES_LOCKOUT_CALLABLE = "esimdash.accounts.views.locked_out"
# allauth's sign-in form names its field "login" (a username or an e-mail address).
AXES_USERNAME_CALLABLE = "esimdash.accounts.views.sign_in_name"
# Behind reverse proxies (PROXY_COUNT of them, each appending to X-Forwarded-For and setting
# X-Forwarded-Proto), the client's address and scheme come from their headers; with none, from the socket.
PROXY_COUNT = env.int("PROXY_COUNT", default=0)
if PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    AXES_IPWARE_PROXY_COUNT = PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    # allauth's rate limits count per client address the same way.
    ALLAUTH_TRUSTED_PROXY_COUNT = PROXY_COUNT

# A session unused this long is signed out; the dashboard's own polls do not count as use.
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
# A session ends this long after it signed in, however busy it was (the idle timeout ends it sooner).
SESSION_ABSOLUTE_LIFETIME = env.int("SESSION_ABSOLUTE_LIFETIME", default=12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_LIFETIME
# Changing the e-mail address, password or second factors, or creating an API token, asks to confirm
# it is you again (password, passkey or code) unless that was done this recently.
REAUTHENTICATION_VALID_SECONDS = env.int("REAUTHENTICATION_VALID_SECONDS", default=5 * 60)

# --- django-allauth (docs/security.md, "Accounts") --------------------------------------------------
# Sign-up asks for an e-mail address and a password; the username is made from the address and can
# be changed in settings. Nobody signs in until the address is confirmed, so sign-up can answer the
# same whether or not the address already has an account: its owner is told by e-mail instead.
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_SIGNUP_FORM_CLASS = "esimdash.accounts.signup.SignUpPreferencesForm"
ACCOUNT_ADAPTER = "esimdash.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"reset_password": "esimdash.accounts.forms.ConfirmedResetPasswordForm"}
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 1
ACCOUNT_EMAIL_SUBJECT_PREFIX = "esimdash: "
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Adding or changing an e-mail address asks to confirm it is you first (a password change asks for
# the current password on its own form).
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = REAUTHENTICATION_VALID_SECONDS
ACCOUNT_PASSWORD_MIN_LENGTH = 12
# Mail-sending and guessable endpoints, per client address (ip), per target address or username
# (key) and per signed-in user (user). Counted in CACHES["default"]: Redis where it is configured,
# so every web process shares the counts.
ACCOUNT_RATE_LIMITS = {
    "signup": env.str("SIGNUP_RATE", default="10/h/ip"),
    "login": "30/m/ip",
    # Wrong passwords are django-axes' to count (above), which pauses signing in after 5; allauth
    # counts the same action per name, and wrong second-factor codes per user: a password thief may
    # try 20 codes in 15 minutes, not a million.
    "login_failed": "20/15m/key",
    "confirm_email": env.str("CONFIRMATION_MAIL_RATE", default="1/3m/key,3/h/key"),
    "reset_password": env.str("PASSWORD_RESET_RATE", default="10/h/ip,3/h/key"),
    "reset_password_from_key": "20/m/ip",
    "manage_email": env.str("EMAIL_CHANGE_RATE", default="5/h/user"),
    "change_password": "5/m/user",
    "reauthenticate": "10/m/user",
}
# Second factors: passkeys (which also sign in on their own, with no password), an authenticator
# app's codes (TOTP) and recovery codes. Staff must have one before /admin opens.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "esimdash"
MFA_FORMS = {
    "add_webauthn": "esimdash.accounts.forms.NamedAddWebAuthnForm",
    "edit_webauthn": "esimdash.accounts.forms.NamedEditWebAuthnForm",
}
# The list of one's sessions records each at sign-in; polls and pages do not write to it.
USERSESSIONS_TRACK_ACTIVITY = False

# HTTPS: on wherever DEBUG is off. `make run` (DEBUG=true) serves plain http://127.0.0.1 with every
# other protection below; HTTPS=false does the same without DEBUG (the test suite's live servers).
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Links in allauth's mails; passkeys need a secure origin, but plain-HTTP runs (make run, the tests'
# live servers) are on this machine.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if HTTPS else "http"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not HTTPS
# A load balancer probes each node directly, over plain HTTP: its health check is not redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", default=365 * 24 * 3600) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=True)
# Lax, not Strict: an invitation link opened from a mail client must find the user signed in.
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = LANGUAGE_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = LANGUAGE_COOKIE_HTTPONLY = True
# Pages send the CSRF token from the template (forms and hx-headers); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Invitation and gift-code links carry secrets in their URLs: no other site is told which page sent a visitor.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts and styles come from our own static files, or carry the request's nonce; nothing inline runs
# otherwise, and htmx is configured (base.html) to need neither eval nor inline styles.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Language and time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "esimdash" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_USER_TIME_ZONE = env.str("DEFAULT_USER_TIME_ZONE", default="Asia/Tokyo")

# --- Static files --------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "esimdash" / "static"]
# Without DEBUG, `collectstatic` writes each file under a name with its content's hash, plus gzip and
# Brotli copies, and WhiteNoise serves them with a far-future Cache-Control (docs/deploy.md). With DEBUG
# (`make run`) the files are served as they are from the source, with no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- E-mail ------------------------------------------------------------------------------------------
# EMAIL_BACKEND: "console" (prints mail; the local default), "file" (into EMAIL_FILE_PATH) or "smtp".
_MAIL_BACKENDS = {
    "console": "esimdash.console_mail.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}
_mail_backend = env.str("EMAIL_BACKEND", default="console" if DEBUG else "smtp")
if _mail_backend not in _MAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND must be one of {', '.join(_MAIL_BACKENDS)}, not {_mail_backend!r}."
    )
_mail_options: dict[str, object] = {
    "console": {},
    "file": {"file_path": env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))},
    "smtp": {
        "host": env.str("EMAIL_HOST", default="localhost"),
        "port": env.int("EMAIL_PORT", default=25),
        "username": env.str("EMAIL_HOST_USER", default=""),
        "password": env.str("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env.bool("EMAIL_USE_TLS", default=False),
    },
}[_mail_backend]
MAILERS = {"default": {"BACKEND": _MAIL_BACKENDS[_mail_backend], "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="esimdash <noreply@localhost>")

# --- Celery ----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# With no broker configured, an embedded one: kombu's SQLAlchemy transport on a SQLite file of
# its own (apart from the main database, so queue polling never waits on application writes).
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_IGNORE_RESULT = True
CELERY_IMPORTS = ["esimdash.health"]  # its heartbeat task: esimdash is not an app, so autodiscovery misses it
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 4 * 60
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Background imports have a queue of their own, which every worker (started without -Q) takes too,
# turn about with the default one: each ingested batch queues an evaluation of its lines, and under
# a steady feed an import would otherwise wait behind all of them.
CELERY_TASK_QUEUES = (
    # Each with its own routing key: bound by the same key, every message went to both.
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue("imports", Exchange("celery"), routing_key="imports"),
)
CELERY_TASK_ROUTES = {"usage.tasks.usage_import_run": {"queue": "imports"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "lines-roll-over": {"task": "usage.tasks.lines_roll_over", "schedule": 60.0},
    "prune-raw-usage": {"task": "usage.tasks.prune_raw_usage", "schedule": 24 * 3600.0},
    "settle-carry-overs": {"task": "usage.tasks.settle_carry_overs", "schedule": 24 * 3600.0},
    "expire-idempotency-keys": {"task": "usage.tasks.idempotency_keys_expire", "schedule": 3600.0},
    "prune-sign-in-logs": {"task": "esimdash.accounts.tasks.sign_in_logs_prune", "schedule": 24 * 3600.0},
    "alerts-sweep": {"task": "alerts.tasks.alerts_sweep", "schedule": 60.0},
    "reminders-send": {"task": "alerts.tasks.reminders_send", "schedule": 3600.0},
    "gift-codes-expire": {"task": "family.tasks.gift_codes_expire", "schedule": 60.0},
    "health-heartbeat": {"task": "esimdash.health.heartbeat", "schedule": 30.0},
    "usage-imports-resume": {"task": "usage.tasks.usage_imports_resume", "schedule": 60.0},
}

# --- The demo usage simulator --------------------------------------------------------------------------
SIMULATOR_ENABLED = env.bool("SIMULATOR_ENABLED", default=False)
SIMULATOR_SEED = env.int("SIMULATOR_SEED", default=2026)
if SIMULATOR_ENABLED:
    CELERY_BEAT_SCHEDULE["simulate-usage"] = {"task": "usage.tasks.simulate_usage", "schedule": 60.0}

# --- Cache (rate limits) -----------------------------------------------------------------------------
# Shared by every web process: Redis when there is one, else a cache directory under var/ (one
# machine's processes), whose add() and incr() esimdash.cache makes atomic. Rate-limit counters of
# expired windows are dropped first when it is full; past 10,000 live ones, live ones too.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {
        "BACKEND": "esimdash.cache.FileBasedCache",
        "LOCATION": env.str("CACHE_DIR", default=str(VAR_DIR / "cache")),
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
    # The cards each web process drew, under the state they were drawn from, until they go stale
    # (usage.views._drawn_cards): in the process's own memory, emptied when it restarts, as a deploy
    # that changes the card's template does. About 4 KB a card.
    "cards": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "cards",
        "OPTIONS": {"MAX_ENTRIES": env.int("CARD_CACHE_ENTRIES", default=5_000)},
    },
}

# --- Gifts (mineo's packet gifts: 10 MB units up to 9,990 MB, codes valid about 2 days) ---------------
GIFT_UNIT_BYTES = env.int("GIFT_UNIT_BYTES", default=10 * 10**6)
GIFT_MIN_BYTES = env.int("GIFT_MIN_BYTES", default=100 * 10**6)
GIFT_MAX_BYTES = env.int("GIFT_MAX_BYTES", default=9_990 * 10**6)
GIFT_MONTHLY_COUNT = env.int("GIFT_MONTHLY_COUNT", default=10)
GIFT_MONTHLY_BYTES = env.int("GIFT_MONTHLY_BYTES", default=20 * 10**9)
GIFT_SENDER_KEEPS_BYTES = env.int("GIFT_SENDER_KEEPS_BYTES", default=10 * 10**6)
GIFT_CODE_VALID_HOURS = env.int("GIFT_CODE_VALID_HOURS", default=48)
# Per user: attempts to redeem a code, and searches for a recipient by username or phone number
# (each one tells whether someone has a line). Written as 10/h, 30/h, 5/10m (esimdash.ratelimit).
GIFT_REDEEM_RATE = env.str("GIFT_REDEEM_RATE", default="10/h")
GIFT_RECIPIENT_SEARCH_RATE = env.str("GIFT_RECIPIENT_SEARCH_RATE", default="30/h")

# --- Adding a line (claiming one the operator provisioned: docs/lines.md) ------------------------------
# Attempts per user, and per ICCID tried by anyone: an activation code cannot be guessed by trying
# many, from one account or from many.
LINE_CLAIM_RATE = env.str("LINE_CLAIM_RATE", default="10/h")
LINE_CLAIM_PER_LINE_RATE = env.str("LINE_CLAIM_PER_LINE_RATE", default="5/h")
# The largest photo of a QR code the add-a-line form takes (a phone's photo is 2-8 MB).
LINE_CLAIM_PHOTO_MAX_BYTES = env.int("LINE_CLAIM_PHOTO_MAX_BYTES", default=15 * 1024 * 1024)

# --- Usage ingestion -----------------------------------------------------------------------------------
INGEST_MAX_RECORDS = env.int("INGEST_MAX_RECORDS", default=5_000)
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
INGEST_MAX_PERIOD_SECONDS = env.int("INGEST_MAX_PERIOD_SECONDS", default=3_600)
INGEST_FUTURE_TOLERANCE_SECONDS = env.int("INGEST_FUTURE_TOLERANCE_SECONDS", default=300)
INGEST_LATE_WINDOW_DAYS = env.int("INGEST_LATE_WINDOW_DAYS", default=35)
INGEST_RATE_LIMIT = env.str("INGEST_RATE_LIMIT", default="600/m")
# Background imports (POST /api/v1/usage/imports, `import_usage --queue`): the files wait in this
# directory, shared by the web and worker processes, until their import ends.
USAGE_IMPORT_DIR = Path(env.str("USAGE_IMPORT_DIR", default=str(VAR_DIR / "imports")))
USAGE_IMPORT_MAX_BYTES = env.int("USAGE_IMPORT_MAX_BYTES", default=5 * 1024**3)
# A worker stores chunks for this long, then queues the rest as a new task (under the task time limit).
USAGE_IMPORT_SLICE_SECONDS = env.int("USAGE_IMPORT_SLICE_SECONDS", default=120)
# A running import with no chunk stored for this long lost its worker: the minute sweep resumes it.
USAGE_IMPORT_STALE_SECONDS = env.int("USAGE_IMPORT_STALE_SECONDS", default=600)
# --- Provisioning API (docs/api.md) ---
PROVISION_RATE_LIMIT = env.str("PROVISION_RATE_LIMIT", default="600/m")
# An Idempotency-Key's stored answer is kept this long (swept by usage.tasks.idempotency_keys_expire).
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)
# Raw records are kept this long (the rollups for ever); it must exceed the late window.
USAGE_RAW_RETENTION_DAYS = env.int("USAGE_RAW_RETENTION_DAYS", default=400)
if USAGE_RAW_RETENTION_DAYS <= INGEST_LATE_WINDOW_DAYS:
    raise ImproperlyConfigured("USAGE_RAW_RETENTION_DAYS must be longer than INGEST_LATE_WINDOW_DAYS.")

# --- Product ---------------------------------------------------------------------------------------------
DASHBOARD_REFRESH_SECONDS = env.int("DASHBOARD_REFRESH_SECONDS", default=5)

# Where links in e-mails point: the address users reach the site at.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Alerts ------------------------------------------------------------------------------------------
# Usage abroad is usage outside this country (the lines are Japanese eSIMs).
HOME_COUNTRY = env.str("HOME_COUNTRY", default="JP")
# A background leak needs at least this much in the hour, so a quiet app does not fire on a few KB.
ALERT_LEAK_FLOOR_BYTES = env.int("ALERT_LEAK_FLOOR_BYTES", default=20 * 10**6)
# E-mails and user webhooks are tried this many times (backing off exponentially, with jitter)
# before they are recorded as failed; the operator's provisioning webhook is retried until it answers.
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=6)
# A line marked for evaluation this long ago lost its task (broker down): the minute sweep takes it.
ALERT_LOST_EVALUATION_SECONDS = env.int("ALERT_LOST_EVALUATION_SECONDS", default=60)
# Lines per task of the minute sweep: 500 lines with their plans, grants and rules are a few MB
# and a second or two of work, so the sweep spreads over every worker in short tasks.
ALERT_SWEEP_BATCH_LINES = env.int("ALERT_SWEEP_BATCH_LINES", default=500)
# The operator's provisioning system: told when a rule slows, cuts off or resumes a line.
PROVISIONING_WEBHOOK_URL = env.str("PROVISIONING_WEBHOOK_URL", default="")


def _webhook_secrets(name: str) -> list[str]:
    """Secrets in the Standard Webhooks form (whsec_ and base64 of at least 16 bytes), separated by
    commas or spaces; anything else is refused here rather than at the first delivery."""
    found = [secret for secret in re.split(r"[,\s]+", env.str(name, default="")) if secret]
    for number, secret in enumerate(found, start=1):
        key = secret.removeprefix("whsec_")
        try:
            key_bytes = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
        except binascii.Error:
            key_bytes = b""
        if key == secret or len(key_bytes) < 16:
            raise ImproperlyConfigured(
                f"{name}: secret number {number} is not whsec_ followed by at least 16 bytes in base64 "
                "(make one with: echo whsec_$(openssl rand -base64 32))."
            )
    return found


# Its secrets: every one signs each delivery, so the operator rotates by adding the new secret, then
# removing the old once their system verifies with the new.
PROVISIONING_WEBHOOK_SECRET = _webhook_secrets("PROVISIONING_WEBHOOK_SECRET")
if PROVISIONING_WEBHOOK_URL and not PROVISIONING_WEBHOOK_SECRET:
    raise ImproperlyConfigured("PROVISIONING_WEBHOOK_URL is set: PROVISIONING_WEBHOOK_SECRET must be too.")
# After a user rotates a webhook's secret, the old one signs beside the new for this long.
WEBHOOK_SECRET_OVERLAP_HOURS = env.int("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)
# The demo billing backend: every order a person places is confirmed at once by a worker task, the
# way an operator's billing confirms through the API (`make run` turns it on; docs/operations.md).
BILLING_DEMO_CONFIRMS = env.bool("BILLING_DEMO_CONFIRMS", default=False)
# Webhooks to http:// and to loopback or private addresses: for local development and tests only.
WEBHOOK_ALLOW_LOCAL = env.bool("WEBHOOK_ALLOW_LOCAL", default=False)

# --- Logging ---------------------------------------------------------------------------------------------
# Warnings and errors (a 500's traceback among them) to standard error, whatever DEBUG is, and one
# line per request. LOG_FORMAT: "plain" (for people; the default) or "json" (one object a line,
# for a log collector; production). The web process, the Celery worker and beat log alike.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "esimdash.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["asctime", "levelname", "name", "message", "request_id"],
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="WARNING")},
    # The request lines are INFO, so that LOG_LEVEL=WARNING keeps them and drops the chatter.
    "loggers": {"esimdash.requests": {"level": "INFO"}},
}
# Celery would replace the root logger's handlers with its own (plain) ones.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Outermost, so that its duration covers every other middleware and its id every line they log.
MIDDLEWARE.insert(0, "esimdash.logs.RequestLogMiddleware")

# The health endpoint's worker check fails when no worker has run the heartbeat (sent by beat
# every 30 s) for this long: three missed beats, so one slow task does not flap it.
HEALTH_WORKER_MAX_AGE_SECONDS = env.int("HEALTH_WORKER_MAX_AGE_SECONDS", default=90)
