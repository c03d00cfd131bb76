"""Staff notices in a team chat: a channel named ``chat`` that posts each message to an
incoming webhook, formatted for Slack (mrkdwn ``text``) or Microsoft Teams (a MessageCard).

The recipient of a message (a staff member's address) is named in the post, since one webhook
serves a whole team channel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bookwise.plugins import Channel, OutgoingMessage, PluginContext, hookimpl, post

BOOKWISE_API = "1.0"
__version__ = "1.0.0"


def slack_payload(message: OutgoingMessage) -> dict[str, Any]:
    # Slack's mrkdwn: *bold*; &, < and > must be escaped in text.
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [f"*{escape(message.subject)}*"] if message.subject else []
    lines.append(escape(message.text))
    lines.append(f"_for {escape(message.recipient)}_")
    return {"text": "\n".join(lines)}


def teams_payload(message: OutgoingMessage) -> dict[str, Any]:
    # Teams renders a MessageCard's text as Markdown, where a lone newline is not a line break.
    body = message.text.replace("\n", "  \n")
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": message.subject or message.text[:80],
        "title": message.subject,
        "text": f"{body}  \n\n_for {message.recipient}_",
    }


FORMATS = {"slack": slack_payload, "teams": teams_payload}


class ChatWebhookChannel(Channel):
    name = "chat"
    settings_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://[^\\s]+$",
                "x-error": "url must be the incoming webhook's http(s) address, got {value!r}",
            },
            "format": {"enum": ["slack", "teams"]},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            "dry_run": {"type": "boolean"},
        },
    }

    def __init__(
        self,
        url: str,
        format: str = "slack",
        timeout: float = 10,
        dry_run: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.url, self.format, self.timeout = url, format, timeout
        self.dry_run, self.log_file = dry_run, log_file

    @classmethod
    def from_settings(cls, context: PluginContext) -> Channel:
        return cls(**context.settings, log_file=context.instance_dir / "messages.log")

    def send(self, message: OutgoingMessage) -> str:
        body = json.dumps(FORMATS[self.format](message), ensure_ascii=False).encode()
        if self.dry_run:
            if self.log_file is not None:
                with self.log_file.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"channel": "chat", "post": body.decode()}) + "\n")
            return "dry-run"
        headers = {"Content-Type": "application/json"}
        if message.message_uid:
            # The same on every attempt: a receiver that keeps the ids it handled drops a
            # message sent twice after a crash (Slack and Teams ignore it).
            headers["webhook-id"] = message.message_uid
        answer = post(self.url, body, headers, self.timeout, "the chat webhook")
        return f"{self.format}-{answer.status}"


@hookimpl
def bookwise_register_channels() -> list[type[Channel]]:
    return [ChatWebhookChannel]
