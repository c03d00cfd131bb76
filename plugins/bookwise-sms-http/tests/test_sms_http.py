"""The SMS channel against a fake gateway on loopback, and STOP replies through the endpoint."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from bookwise_sms_http import signature
from sqlalchemy import select

from bookwise.notifications.models import Notification, SmsOptOut
from bookwise.testing import Receiver, RunningInstance, book, http_receiver, make_instance

TOKEN = "secret-token-123"
PATIENT = {
    "phone": "+33612345678",
    "date_of_birth": "1980-02-03",
    "reason": "Check-up",
}


@pytest.fixture
def gateway() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        receiver.status = 201
        receiver.answer = b'{"sid": "SM0001", "status": "queued"}'
        yield receiver


def instance_with(tmp_path: Path, gateway: Receiver, **extra: object) -> RunningInstance:
    settings = {
        "api_url": gateway.url,
        "account": "AC42",
        "token": TOKEN,
        "from_number": "+33700000000",
        **extra,
    }
    return make_instance(tmp_path, plugins={"enabled": ["sms_http"], "sms_http": settings})


def sms_rows(bw: RunningInstance) -> list[Notification]:
    with bw.database.sessions() as session:
        query = select(Notification).where(
            Notification.channel == "sms", Notification.event == "confirmed"
        )
        return list(session.scalars(query))


def book_visit(bw: RunningInstance) -> None:
    book(bw, "clinique-des-lilas", "patient-visit", PATIENT, staff="dr-moreau", sms_opt_in=True)


def test_a_confirmation_is_posted_in_the_gateways_shape(tmp_path: Path, gateway: Receiver) -> None:
    bw = instance_with(tmp_path, gateway)
    book_visit(bw)
    bw.send_due()
    (call,) = gateway.requests
    assert call.path == "/2010-04-01/Accounts/AC42/Messages.json"
    assert (
        call.headers["Authorization"]
        == "Basic " + base64.b64encode(b"AC42:" + TOKEN.encode()).decode()
    )
    form = dict(urllib.parse.parse_qsl(call.body.decode()))
    assert form["To"] == "+33612345678" and form["From"] == "+33700000000"
    assert "(Consultation)" in form["Body"] and "/manage/" in form["Body"]
    (row,) = sms_rows(bw)
    assert (row.state, row.provider_message_id) == ("sent", "SM0001")


@pytest.mark.parametrize(("status", "state"), [(400, "dead"), (503, "failed"), (429, "failed")])
def test_gateway_refusals(tmp_path: Path, gateway: Receiver, status: int, state: str) -> None:
    bw = instance_with(tmp_path, gateway)
    gateway.status, gateway.answer = status, b'{"message": "The To number is not valid"}'
    book_visit(bw)
    bw.send_due()
    (row,) = sms_rows(bw)
    assert row.state == state
    assert f"answered {status}: The To number is not valid" in (row.last_error or "")


def test_dry_run_writes_instead_of_posting(tmp_path: Path, gateway: Receiver) -> None:
    bw = instance_with(tmp_path, gateway, dry_run=True)
    book_visit(bw)
    bw.send_due()
    assert gateway.requests == []
    assert "+33612345678" in (bw.settings.instance_dir / "messages.log").read_text()


def test_stop_replies_record_the_opt_out(tmp_path: Path, gateway: Receiver) -> None:
    bw = instance_with(tmp_path, gateway)
    client = bw.app().test_client()
    params = {"From": "+33612345678", "Body": " stop ", "MessageSid": "SM9"}
    url = bw.settings.base_url + "/plugins/sms_http/inbound"
    forged = client.post(url, data=params, headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403
    strange = client.post(url, data=params, headers={"X-Twilio-Signature": "é€"})
    assert strange.status_code == 403  # not a 500
    signed = {"X-Twilio-Signature": signature(TOKEN, url, params)}
    answer = client.post(url, data=params, headers=signed)
    assert answer.status_code == 200 and answer.mimetype == "application/xml"
    with bw.database.sessions() as session:
        (opt_out,) = session.scalars(select(SmsOptOut))
        assert (opt_out.phone, opt_out.source) == ("+33612345678", "sms_http")
    # The next booking's text message is skipped, with the reason.
    book_visit(bw)
    bw.send_due()
    assert gateway.requests == []
    (row,) = sms_rows(bw)
    assert row.state == "skipped" and "STOP" in (row.last_error or "")


def test_missing_settings_are_reported(tmp_path: Path) -> None:
    from bookwise.plugins.host import load_plugins

    bw = make_instance(tmp_path, plugins={"enabled": ["sms_http"], "sms_http": {"account": "x"}})
    host = load_plugins(bw.settings)
    assert host.plugins["sms_http"].state == "failed"
    assert "api_url" in host.problems()[0]
