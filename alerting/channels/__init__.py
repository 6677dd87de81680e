"""Notification channels: turn a channel kind and target (as a subscription stores them) into a sender.

Why a factory: the notify task holds plain data (kind, target, secret) and must not know channel classes;
adding a channel (chat, ...) means one module here and one branch below.

Usage::

    channel = build_channel("webhook", "https://soc.example/hook", secret, allow_private=False, smtp=None)
    result = channel.send(event, event_id=event["event_id"])
"""

from __future__ import annotations

from alerting.channels.base import Channel, DeliveryResult
from alerting.channels.email import EmailChannel, SmtpConfig
from alerting.channels.slack import SlackChannel
from alerting.channels.webhook import WebhookChannel
from core.errors import BadInput

__all__ = [
    "CHANNEL_KINDS",
    "Channel",
    "DeliveryResult",
    "EmailChannel",
    "SlackChannel",
    "SmtpConfig",
    "WebhookChannel",
    "build_channel",
]

CHANNEL_KINDS = ("webhook", "email", "slack")


def build_channel(
    kind: str, target: str, secret: str | None, *, allow_private: bool, smtp: SmtpConfig | None
) -> Channel:
    """The channel for a subscription; ``BadInput`` for an unknown kind or missing configuration."""
    if kind == "webhook":
        if not secret:
            raise BadInput("a webhook subscription needs a signing secret")
        return WebhookChannel(target, secret, allow_private=allow_private)
    if kind == "email":
        if smtp is None:
            raise BadInput("email delivery needs SMTP settings")
        return EmailChannel(target, smtp)
    if kind == "slack":  # the incoming-webhook URL is the credential: no signing secret
        return SlackChannel(target, allow_private=allow_private)
    raise BadInput(f"unknown channel kind {kind!r} (expected one of: {', '.join(CHANNEL_KINDS)})")
