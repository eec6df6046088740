"""E-mail over SMTP (STARTTLS when asked), to the recipient's address."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alerting.notifiers.base import Message, NotifyError, Recipient


class EmailConfig(BaseModel):
    """An SMTP server and the sender address."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None


class EmailNotifier:
    """Sends one plain-text mail per recipient."""

    channel = "email"

    def __init__(self, config: EmailConfig, timeout_s: float) -> None:
        self.config, self.timeout_s = config, timeout_s

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Mail the message to the recipient's address."""
        if recipient is None or not recipient.email:
            raise NotifyError("email: the recipient has no address", retryable=False)
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.config.sender, recipient.email, message.title
        mail.set_content(message.text)
        where = f"smtp {self.config.host}:{self.config.port}"
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.timeout_s) as smtp:
                if self.config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.config.username and self.config.password:
                    smtp.login(self.config.username, self.config.password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            # 4xx is a temporary refusal, 5xx a permanent one
            raise NotifyError(f"{where}: refused with {exc.smtp_code}",
                              retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused:
            raise NotifyError(f"{where}: recipient refused", retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"{where}: {type(exc).__name__}", retryable=True) from None
