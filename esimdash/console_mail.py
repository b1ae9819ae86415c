"""The local default mail backend: each mail printed as a person reads it. Django's console backend
prints the MIME source, where Chinese and Japanese text is base64 and a sign-up link cannot be read."""

from django.core.mail.backends import console

HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date")


class EmailBackend(console.EmailBackend):
    def write_message(self, message):
        mime = message.message()
        for header in HEADERS:
            if mime[header]:
                self.stream.write(f"{header}: {mime[header]}\n")  # decoded: the mail API's default policy
        self.stream.write(f"\n{message.body}\n")
        for attachment in message.attachments:
            self.stream.write(f"[attachment: {attachment.filename or attachment.mimetype}]\n")
        self.stream.write("-" * 79 + "\n")
