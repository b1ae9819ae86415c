from axes.handlers.proxy import AxesProxyHandler
from celery import shared_task
from django.conf import settings


@shared_task
def sign_in_logs_prune() -> int:
    """Beat, daily: django-axes writes a row for every sign-in and sign-out (`axes.AccessLog`, seen
    in the admin), and would keep them for ever. Rows older than SIGN_IN_LOG_RETENTION_DAYS go;
    returns how many."""
    return AxesProxyHandler.reset_logs(age_days=settings.SIGN_IN_LOG_RETENTION_DAYS)
