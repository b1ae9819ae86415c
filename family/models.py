import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from plans.models import Pool, PoolMember


class PoolInvite(models.Model):
    """A single-use invitation to join a pool, by e-mail address or username. The link carries a
    random token; only its SHA-256 is stored."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        REVOKED = "revoked", _("Revoked")

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="invites")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="pool_invites"
    )
    role = models.CharField(max_length=16, choices=PoolMember.Role.choices, default=PoolMember.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "plans_poolinvite"  # moved from plans, table kept
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invite to {self.pool} for {self.email or self.user}"

    def is_open(self, at: dt.datetime) -> bool:
        return self.state == self.State.PENDING and at < self.expires_at
