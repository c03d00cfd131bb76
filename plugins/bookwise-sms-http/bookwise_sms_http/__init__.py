"""Text messages through an HTTP gateway with the Twilio request shape, and STOP replies.

Sending: ``POST {api_url}/2010-04-01/Accounts/{account}/Messages.json`` with form data ``To``,
``From``, ``Body`` and HTTP basic authentication (account, token); the answer's ``sid`` is the
message id. Replies: the gateway posts each inbound message (form data ``From``, ``Body``) to
``/plugins/sms_http/inbound``, signed in ``X-Twilio-Signature`` (HMAC-SHA1 with the token of
the full URL followed by the sorted parameters); a STOP word records the opt-out in Bookwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, request

from bookwise.plugins import Channel, OutgoingMessage, PluginContext, hookimpl, post

BOOKWISE_API = "1.0"
__version__ = "1.0.0"

# The opt-out words carriers and gateways honour (English, and French "ARRET").
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT"}
MAX_BODY = 1600  # characters: the gateways' limit for one (multi-part) message

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["api_url", "account", "token", "from_number"],
    "properties": {
        "api_url": {
            "type": "string",
            "pattern": "^https?://[^\\s]+$",
            "x-error": "api_url must be the gateway's http(s) address, got {value!r}",
        },
        "account": {"type": "string", "minLength": 1},
        "token": {"type": "string", "minLength": 8},
        "from_number": {
            "type": "string",
            "pattern": "^\\+[1-9][0-9]{6,14}$",
            "x-error": "from_number must be in international format, like +33612345678",
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        "dry_run": {
            "type": "boolean",
            "description": "Write each request to instance/messages.log instead of sending it.",
        },
    },
}


def signature(token: str, url: str, params: dict[str, str] | list[tuple[str, str]]) -> str:
    """The gateway's signature of a request to ``url`` with form ``params`` (every value of a
    repeated key counts): the URL, then each key and value, sorted, signed with HMAC-SHA1."""
    pairs = sorted(params.items() if isinstance(params, dict) else params)
    payload = url + "".join(key + value for key, value in pairs)
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class HttpSmsChannel(Channel):
    name = "sms"
    settings_schema = SETTINGS_SCHEMA

    def __init__(
        self,
        api_url: str,
        account: str,
        token: str,
        from_number: str,
        timeout: float = 10,
        dry_run: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.endpoint = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        self.account, self.token, self.from_number = account, token, from_number
        self.timeout, self.dry_run, self.log_file = timeout, dry_run, log_file

    @classmethod
    def from_settings(cls, context: PluginContext) -> Channel:
        return cls(**context.settings, log_file=context.instance_dir / "messages.log")

    def send(self, message: OutgoingMessage) -> str:
        form = {"To": message.recipient, "From": self.from_number, "Body": message.text[:MAX_BODY]}
        if self.dry_run:
            return self._write(form)
        credentials = base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        data = urllib.parse.urlencode(form).encode()
        answer = post(self.endpoint, data, headers, self.timeout, "the SMS gateway", True)
        try:
            return str(json.loads(answer.body or b"{}").get("sid") or "accepted")
        except ValueError:
            return "accepted"  # delivered; the gateway's answer is not JSON

    def _write(self, form: dict[str, str]) -> str:
        identifier = "dry-run-" + hashlib.sha256(json.dumps(form).encode()).hexdigest()[:16]
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a", encoding="utf-8") as handle:
                line = {"id": identifier, "channel": "sms", "to": form["To"], "text": form["Body"]}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return identifier


def inbound_blueprint(context: PluginContext) -> Blueprint:
    blueprint = Blueprint("sms_http", __name__)
    token = str(context.settings.get("token", ""))

    @blueprint.post("/inbound")
    def inbound() -> Response:
        params = list(request.form.items(multi=True))
        url = context.base_url + request.full_path.rstrip("?")
        given = request.headers.get("X-Twilio-Signature", "").encode("utf-8", "replace")
        if not token or not hmac.compare_digest(given, signature(token, url, params).encode()):
            abort(403)
        sender = request.form.get("From", "")
        word = request.form.get("Body", "").strip().upper()
        if sender.startswith("+") and word in STOP_WORDS:
            context.record_sms_stop(sender, "sms_http")
        # An empty answer: no automatic reply (the gateway confirms the opt-out itself).
        return Response("<Response></Response>", mimetype="application/xml")

    return blueprint


@hookimpl
def bookwise_register_channels() -> list[type[Channel]]:
    return [HttpSmsChannel]


@hookimpl
def bookwise_register_blueprints(context: PluginContext) -> list[Blueprint]:
    return [inbound_blueprint(context)]
