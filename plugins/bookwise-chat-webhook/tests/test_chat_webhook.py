"""The chat channel against a loopback webhook receiver, in both formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bookwise_chat_webhook import slack_payload, teams_payload
from sqlalchemy import select

from bookwise.notifications.models import Notification
from bookwise.plugins import OutgoingMessage
from bookwise.testing import ROOT, book, http_receiver, make_instance

HR = {"position": "dev", "cv_url": "https://example.org/cv.pdf"}


def workflows(tmp_path: Path) -> str:
    """The demo's workflows, the HR interview also telling staff on the chat."""
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    hr = folder / "hr-interview.yaml"
    text = hr.read_text(encoding="utf-8")
    rule = "  - {on: requested, to: staff, channel: email}"
    assert rule in text
    hr.write_text(text.replace(rule, "  - {on: requested, to: staff, channel: [email, chat]}"))
    return str(folder)


@pytest.mark.parametrize("format", ["slack", "teams"])
def test_staff_notices_reach_the_team_channel(tmp_path: Path, format: str) -> None:
    with http_receiver() as receiver:
        plugins = {
            "enabled": ["chat_webhook"],
            "chat_webhook": {"url": receiver.url + "/hook", "format": format},
        }
        bw = make_instance(tmp_path, plugins=plugins, workflows=workflows(tmp_path))
        book(bw, "northwind-hr", "hr-interview", HR)
        bw.send_due()
        assert receiver.requests, "nothing was posted"
        call = receiver.requests[0]
        assert call.path == "/hook" and call.headers["Content-Type"] == "application/json"
        with bw.database.sessions() as session:
            uids = set(session.scalars(select(Notification.message_uid)))
        assert {k.lower(): v for k, v in call.headers.items()}["webhook-id"] in uids
        post = json.loads(call.body)
        if format == "slack":
            assert post["text"].startswith("*") and "_for " in post["text"]
        else:
            assert post["@type"] == "MessageCard" and post["title"]
    with bw.database.sessions() as session:
        rows = session.scalars(select(Notification).where(Notification.channel == "chat"))
        assert {row.state for row in rows} == {"sent"}


def test_a_refusal_is_dead_and_a_server_error_retried(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        plugins = {"enabled": ["chat_webhook"], "chat_webhook": {"url": receiver.url}}
        bw = make_instance(tmp_path, plugins=plugins, workflows=workflows(tmp_path))
        receiver.status = 404
        book(bw, "northwind-hr", "hr-interview", HR)
        bw.send_due()
        with bw.database.sessions() as session:
            rows = list(session.scalars(select(Notification).where(Notification.channel == "chat")))
        assert rows and {r.state for r in rows} == {"dead"}
        assert "answered 404" in (rows[0].last_error or "")


def test_formats_escape_and_break_lines() -> None:
    message = OutgoingMessage(
        "chat", "ana@example.org", "Line 1 <b>\nLine 2", subject="New & urgent"
    )
    assert (
        slack_payload(message)["text"]
        == "*New &amp; urgent*\nLine 1 &lt;b&gt;\nLine 2\n_for ana@example.org_"
    )
    assert "Line 1 <b>  \nLine 2" in teams_payload(message)["text"]
