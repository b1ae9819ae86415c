"""POST /api/v1/usage: usage records from operators' systems (token scope `ingest`)."""

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from ninja.decorators import decorate_view
from pydantic import BaseModel, ConfigDict, Field

from usage.api.auth import INGEST, INGEST_THROTTLE
from usage.api.idempotency import idempotent
from usage.api.problems import problems, validation_problem
from usage.services import UsageTotalTooLarge, usage_payloads_ingest
from usage.validation import UsageRecordPayload

router = Router(auth=INGEST, throttle=[INGEST_THROTTLE], tags=["ingestion"])


# A plain pydantic model, not a ninja Schema: a Schema that forbids extra fields validates its
# input twice (once as given, once through ninja's attribute getter), and for 1,000 records the
# second pass cost as much as the first. (A docstring here would become the OpenAPI description.)
class UsageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[UsageRecordPayload] = Field(min_length=1, max_length=settings.INGEST_MAX_RECORDS)


class IngestSummary(Schema):
    new: int = Field(description="records stored now")
    duplicate: int = Field(description="records already stored (same source and external_id): ignored")


@router.post(
    "/usage", response={200: IngestSummary, **problems(422)}, summary="Send a batch of usage records"
)
@decorate_view(idempotent)
def ingest_usage(request: HttpRequest, batch: UsageBatch):
    """Stores a batch of up to INGEST_MAX_RECORDS records, all or nothing. A record whose source and
    external_id were seen before is accepted and changes nothing."""
    try:
        outcome = usage_payloads_ingest(batch.records, now=timezone.now())
    except UsageTotalTooLarge as refused:
        error = {"index": refused.index, "field": refused.field, "message": refused.message}
        raise validation_problem([error], what="nothing was stored") from refused
    if outcome.errors:
        raise validation_problem(outcome.errors, what="nothing was stored")
    return {"new": outcome.result.new, "duplicate": outcome.result.duplicate}
