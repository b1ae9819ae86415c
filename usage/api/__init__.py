"""The esimdash API, described at /api/v1/openapi.json (browsable at /api/v1/docs): usage
ingestion (scope `ingest`) and the operator's provisioning of lines, grants and orders (`provision`
to write, `read` or `provision` to read). Operators' systems authenticate with an integration
token; session cookies do not authorize it. Errors are problem details (usage.api.problems); every
write honours an Idempotency-Key (usage.api.idempotency). docs/api.md says it for people."""

from ninja import NinjaAPI

from usage.api import catalog, imports, ingest, lines, orders
from usage.api.auth import INGEST, INGEST_THROTTLE
from usage.api.problems import problems_install

# Kept importable from here (bench/run.py builds batches with it).
UsageBatch = ingest.UsageBatch

api = NinjaAPI(
    title="esimdash API",
    version="1",
    description=(
        "Usage ingestion and provisioning for operators' systems. Authenticate with "
        "`Authorization: Bearer <token>`; errors are `application/problem+json` (RFC 9457)."
    ),
    urls_namespace="api",
    auth=INGEST,
    throttle=[INGEST_THROTTLE],
)
problems_install(api)
api.add_router("", ingest.router)
api.add_router("", imports.router)
api.add_router("", lines.router)
api.add_router("", catalog.router)
api.add_router("", orders.router)
