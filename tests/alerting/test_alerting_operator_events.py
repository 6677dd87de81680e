"""Operator events (a source unhealthy or recovered) reach the operators by signed webhook and by email."""

from __future__ import annotations

import email
from typing import Any

from aiosmtpd.controller import Controller

from alerting.signing import verify
from alerting.tasks import deliver_operator_event
from core.db import open_database
from core.models import OperatorEvent
from core.redis_embedded import free_port
from core.settings import load_settings
from leaksentinel.sim import WebhookReceiver


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def test_operator_event_by_webhook_and_email() -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with WebhookReceiver() as receiver:
            settings = load_settings(
                operator_webhook=receiver.url,
                operator_webhook_secret="ops",
                operator_email="noc@ops.example",
                smtp_port=port,
                smtp_starttls="never",
            )
            db = open_database(settings)
            with db.session() as sess:
                row = OperatorEvent(
                    kind="source.unhealthy",
                    message="source pastes (pastebin): failed 3 runs in a row",
                    event_id="op-1",
                )
                sess.add(row)
                sess.flush()
                event_id = row.id
            assert deliver_operator_event(settings, event_id) == "sent"
            assert deliver_operator_event(settings, event_id) == "sent"  # already sent: not again
            (hit,) = receiver.received
            assert verify("ops", hit.body, hit.headers["x-leaksentinel-signature"])
            (raw,) = inbox.messages
            msg = email.message_from_bytes(raw)
            assert "operator" in msg["Subject"] and "failed 3 runs" in msg["Subject"]
            assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}
    finally:
        controller.stop()


def test_without_operator_channels_events_are_marked_unrouted() -> None:
    settings = load_settings()
    db = open_database(settings)
    with db.session() as sess:
        row = OperatorEvent(kind="source.recovered", message="source x: recovered", event_id="op-2")
        sess.add(row)
        sess.flush()
        event_id = row.id
    assert deliver_operator_event(settings, event_id) == "unrouted"
