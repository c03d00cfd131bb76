"""Encryption at rest of the clients' answers: a keyring of Fernet keys and a JSON column type that
stores ``{"$fernet": "<token>"}`` and gives the code a plain dict.

Keys, first match wins: ``BOOKWISE_ENCRYPTION_KEYS`` (comma-separated), ``privacy.encryption_keys``
in config.yaml, else the instance's generated key (``instance/encryption_key``, readable by its
owner only, made when a new instance starts: :func:`check_keyring`). The first key encrypts;
every key decrypts, so that keys can be rotated (``bookwise keys rotate``, docs/deployment.md).

The keyring rides on the engine's dialect (:func:`attach_keyring`, called by
:func:`bookwise.database.open_database`), so each database of a process has its own. Rows written
before encryption (plain JSON) still read; an engine without a keyring (one made by hand, without
``open_database``) writes plain JSON and refuses to read encrypted answers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, column, select, table, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from bookwise.config import Settings
from bookwise.db import JSONType
from bookwise.errors import ConfigError

log = logging.getLogger(__name__)

# The one key of an encrypted value: a plain answers dict never has it (field ids are
# identifiers, see bookwise.workflows.language).
MARK = "$fernet"
KEY_FILE = "encryption_key"
WHAT_TO_SET = (
    "set privacy.encryption_keys in the configuration or BOOKWISE_ENCRYPTION_KEYS "
    "(comma-separated, the key that encrypted them among them), or put back the instance's key "
    "file (instance/encryption_key) from its backup"
)


class EncryptionKeyError(ConfigError):
    """The keys at hand cannot read the data (missing, wrong or malformed): say what to set."""


def generate_key() -> str:
    """A new random key (32 bytes, URL-safe base64), as Fernet wants it."""
    return Fernet.generate_key().decode("ascii")


class Keyring:
    """The instance's Fernet keys: the first encrypts, all decrypt.

    ``keys``: the configured keys; when empty, ``key_file`` (the instance's generated key) is read,
    and made on the first encryption when it does not exist yet.
    """

    def __init__(self, keys: Sequence[str] = (), key_file: Path | None = None) -> None:
        self.configured = tuple(keys)
        self.key_file = key_file
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()
        if self.configured:
            self._fernet = _multi(self.configured, "privacy.encryption_keys")

    @property
    def source(self) -> str:
        """Where the keys come from, for messages."""
        if self.configured:
            return "privacy.encryption_keys (or BOOKWISE_ENCRYPTION_KEYS)"
        return str(self.key_file)

    def _keys(self, create: bool) -> MultiFernet | None:
        if self._fernet is not None:
            return self._fernet
        if self.key_file is None:
            return None
        with self._lock:
            if self._fernet is None:
                keys = _read_key_file(self.key_file)
                if not keys and create:
                    keys = [_create_key_file(self.key_file)]
                if keys:
                    self._fernet = _multi(keys, str(self.key_file))
        return self._fernet

    def ensure(self) -> None:
        """Make the instance's key now when there is none (at start, so that a folder Bookwise
        cannot write to is said at once, not when the first client books)."""
        self._keys(create=True)

    def has_keys(self) -> bool:
        """Whether a key is at hand (configured, or the instance's key file exists)."""
        return self._keys(create=False) is not None

    def encrypt(self, data: bytes) -> str:
        """``data`` encrypted with the first key (the instance key is made when missing)."""
        fernet = self._keys(create=True)
        if fernet is None:  # pragma: no cover - create=True always gives keys or raises
            raise EncryptionKeyError(f"no encryption key: {WHAT_TO_SET}")
        return fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        """The data of ``token``; :class:`EncryptionKeyError` when no key at hand opens it."""
        fernet = self._keys(create=False)
        if fernet is None:
            raise EncryptionKeyError(
                f"the answers in the database are encrypted and no encryption key is at hand "
                f"(none configured, and {self.key_file} does not exist): {WHAT_TO_SET}"
            )
        try:
            return fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            raise EncryptionKeyError(
                f"the answers in the database were encrypted with a key that is not among the "
                f"keys of {self.source}: {WHAT_TO_SET}"
            ) from None

    def rotate(self, token: str) -> str:
        """``token`` encrypted again with the first key (its data unchanged)."""
        fernet = self._keys(create=False)
        if fernet is None:
            raise EncryptionKeyError(f"no encryption key at hand: {WHAT_TO_SET}")
        try:
            return fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError, UnicodeEncodeError):
            raise EncryptionKeyError(
                f"a row was encrypted with a key that is not among the keys of {self.source}: "
                f"{WHAT_TO_SET}"
            ) from None

    def seal(self, value: Any) -> dict[str, str]:
        """A JSON value as stored: ``{"$fernet": token}``."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return {MARK: self.encrypt(text.encode("utf-8"))}

    def open(self, stored: dict[str, str]) -> Any:
        """The JSON value of a sealed one."""
        return json.loads(self.decrypt(stored[MARK]).decode("utf-8"))


def is_sealed(value: Any) -> bool:
    """Whether a stored JSON value is an encrypted one."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(MARK), str)


def keyring_for(settings: Settings) -> Keyring:
    """The keyring of an instance: its configured keys, else its generated key file."""
    return Keyring(settings.encryption_keys, settings.instance_dir / KEY_FILE)


def attach_keyring(engine: Engine, keyring: Keyring) -> None:
    """Make ``engine``'s encrypted columns use ``keyring``."""
    engine.dialect.bookwise_keyring = keyring  # type: ignore[attr-defined]


def keyring_of(dialect: Dialect) -> Keyring | None:
    return getattr(dialect, "bookwise_keyring", None)


class EncryptedJSON(TypeDecorator[Any]):
    """JSON encrypted as a whole with the engine's keyring: stored as ``{"$fernet": token}``
    (still JSON, so that no migration was needed and plain rows of before still read)."""

    impl = JSONType
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        keyring = keyring_of(dialect)
        if keyring is None or is_sealed(value):
            return value
        return keyring.seal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if not is_sealed(value):
            return value
        keyring = keyring_of(dialect)
        if keyring is None:
            raise EncryptionKeyError(
                "the answers are encrypted and this database connection has no keyring: open "
                "the database with bookwise.database.open_database"
            )
        return keyring.open(value)


# --- start-up check and rotation -----------------------------------------------------------------

# The bookings' answers as stored, without the decrypting type: rotation and the start-up check
# read and write the sealed values themselves.
_RAW = table("bookings", column("id"), column("answers", JSONType))
# The waitlist's entries keep answers the same way (rotated with the bookings').
_RAW_WAITLIST = table("waitlist_entries", column("id"), column("answers", JSONType))
# The API's idempotency keys keep the response they replay (a manage token, a client's name and
# e-mail address) the same way (bookwise.bookings.idempotency).
_RAW_IDEMPOTENCY = table("idempotency_keys", column("id"), column("response_body", JSONType))
# The calendars' webhook secrets (bookwise.notifications.webhooks), rotated with the answers.
_RAW_WEBHOOKS = table("webhook_endpoints", column("id"), column("secrets", JSONType))


def check_keyring(engine: Engine, sample: int = 20, has_table: bool = True) -> None:
    """At start: :class:`EncryptionKeyError` saying what to set when the keys at hand cannot read
    the newest encrypted answers (a missing or wrong key is found here, not on a page); else,
    for an instance without a key yet, its key is made now. ``has_table``: whether the bookings
    table exists yet (not before ``bookwise init``)."""
    keyring = keyring_of(engine.dialect)
    if keyring is None:
        return
    if has_table:
        with engine.connect() as connection:
            rows = connection.execute(
                select(_RAW.c.answers).order_by(_RAW.c.id.desc()).limit(sample)
            ).scalars()
            for stored in rows:
                if is_sealed(stored):
                    keyring.open(stored)
    keyring.ensure()


@dataclass
class RotationReport:
    rotated: int = 0  # encrypted again with the first key
    encrypted: int = 0  # plain until now, encrypted
    total: int = 0
    waitlist_entries: int = 0  # of which rows of the waitlist (not in ``total``)
    idempotency_keys: int = 0  # of which the API's stored responses (not in ``total``)
    webhook_endpoints: int = 0  # webhook endpoints whose secrets were sealed again (idem)


def rotate_answers(engine: Engine, batch: int = 500) -> RotationReport:
    """Encrypt every row's answers again with the first key (plain ones too; the waitlist's
    answers and the API's stored responses of idempotency keys likewise), ``batch`` rows a
    transaction, so that a long rotation never holds the table; running it again is harmless.
    :class:`EncryptionKeyError` when a row cannot be read with the keys at hand (the rows before
    it stay rotated)."""
    keyring = keyring_of(engine.dialect)
    if keyring is None:
        raise EncryptionKeyError("this database connection has no keyring")
    report = RotationReport()
    report.total = _rotate_table(engine, keyring, batch, report, _RAW)
    report.waitlist_entries = _rotate_table(engine, keyring, batch, report, _RAW_WAITLIST)
    report.idempotency_keys = _rotate_table(
        engine, keyring, batch, report, _RAW_IDEMPOTENCY, "response_body"
    )
    report.webhook_endpoints = _rotate_table(
        engine, keyring, batch, report, _RAW_WEBHOOKS, "secrets"
    )
    return report


def _rotate_table(
    engine: Engine,
    keyring: Keyring,
    batch: int,
    report: RotationReport,
    raw: Any,
    name: str = "answers",
) -> int:
    """Encrypt again every row's column ``name`` of the table ``raw`` (an id and that column,
    read without the decrypting type), ``batch`` rows a transaction; the rows seen."""
    last = seen = 0
    data = raw.c[name]
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(raw.c.id, data).where(raw.c.id > last).order_by(raw.c.id).limit(batch)
            ).all()
            for row_id, stored in rows:
                if stored is None:
                    continue
                if is_sealed(stored):
                    new = {MARK: keyring.rotate(stored[MARK])}
                    report.rotated += 1
                else:
                    new = keyring.seal(stored)
                    report.encrypted += 1
                connection.execute(update(raw).where(raw.c.id == row_id).values({data: new}))
        if not rows:
            return seen
        seen += len(rows)
        last = rows[-1][0]


# --- keys ----------------------------------------------------------------------------------------


def _multi(keys: Sequence[str], where: str) -> MultiFernet:
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise EncryptionKeyError(
                f"{where}: key {number} is not a Fernet key (32 bytes in URL-safe base64, 44 "
                "characters); make one with: bookwise keys generate"
            ) from None
    return MultiFernet(fernets)


def _read_key_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise EncryptionKeyError(f"cannot read the encryption key file {path}: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _create_key_file(path: Path) -> str:
    """A new key written to ``path`` (owner only), or the one another process wrote first."""
    key = generate_key()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
    except FileExistsError:
        # Another process made it first: use theirs, once they have written it.
        for _attempt in range(50):
            keys = _read_key_file(path)
            if keys:
                return keys[0]
            time.sleep(0.02)
        raise EncryptionKeyError(
            f"the encryption key file {path} is empty: remove it to have a key generated "
            "(only if no answer was encrypted with it), or put the key back from its backup"
        ) from None
    except OSError as exc:
        raise EncryptionKeyError(
            f"cannot write the generated encryption key to {path}: {exc.strerror}; "
            "set privacy.encryption_keys in the configuration or BOOKWISE_ENCRYPTION_KEYS"
        ) from None
    log.info("generated the instance's encryption key in %s: back it up", path)
    return key
