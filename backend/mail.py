"""Email through SMTP (aiosmtplib): the password reset and invitation links.

Configured by the `SMTP_*` settings and PUBLIC_BASE_URL; without SMTP_HOST or
PUBLIC_BASE_URL there is no mailer (`mailer_for` returns None) and the features that send
mail say they are unavailable. Nothing is queued: a message is sent while its request (or,
for a password reset, the request's background task) runs, and a failure is logged.
"""

import logging
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from backend.config import Settings

log = logging.getLogger(__name__)


class MailError(Exception):
    """The SMTP server could not be reached or refused the message; says why in one line."""


class Mailer:
    """Sends plain-text messages through the configured SMTP server."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None and settings.public_base_url is not None
        self.settings = settings
        self.public_base_url = settings.public_base_url

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        """A plain-text message from SMTP_FROM to `to`."""
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="tablestack")
        message.set_content(body)
        return message

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the SMTP server; MailError when it cannot be delivered there."""
        settings = self.settings
        password = settings.smtp_password
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password.get_secret_value() if password is not None else None,
                use_tls=settings.smtp_tls,
                start_tls=settings.smtp_starttls and not settings.smtp_tls,
                timeout=settings.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            raise MailError(f"cannot send mail through {where}: {exc}") from exc

    async def send_logged(self, message: EmailMessage) -> None:
        """`send`, logging a failure instead of raising it (for a background task, whose
        failure nobody waits for)."""
        try:
            await self.send(message)
        except MailError as exc:
            log.error("%s (message %r to %s)", exc, message["Subject"], message["To"])


def mailer_for(settings: Settings) -> Mailer | None:
    """The mailer of `settings`, or None when mail is not configured."""
    return Mailer(settings) if settings.mail_enabled else None
