from django.core.management.base import BaseCommand, CommandError

from usage.models import IntegrationToken
from usage.tokens import integration_token_create, integration_token_revoke


class Command(BaseCommand):
    help = "Creates, lists or revokes integration API tokens."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a token and print it (shown this once)")
        create.add_argument("name", help="what the token is for, e.g. 'docomo CDR feed'")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=IntegrationToken.Scope.values,
            help="what it may do; repeat for several (default: ingest)",
        )
        actions.add_parser("list", help="list tokens (never their secrets)")
        revoke = actions.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options):
        if action == "create":
            token, text = integration_token_create(
                name=options["name"], scopes=options["scopes"] or [IntegrationToken.Scope.INGEST]
            )
            scopes = ", ".join(token.scopes)
            self.stdout.write(
                f"Token for {token.name} (prefix {token.prefix}, scopes {scopes}); "
                "copy it now, it is not shown again:"
            )
            self.stdout.write(text)
        elif action == "list":
            for token in IntegrationToken.objects.order_by("created_at"):
                state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                self.stdout.write(f"{token.prefix}  {','.join(token.scopes):22}  {state:18}  {token.name}")
        elif not integration_token_revoke(prefix=options["prefix"]):
            raise CommandError(f"No active token has the prefix {options['prefix']!r}.")
        else:
            self.stdout.write(f"Revoked {options['prefix']}.")
