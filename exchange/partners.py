"""Partner clinics: FHIR servers Puente pushes referrals to, each bound to one of Puente's Organizations.

A partner is registered with `puente partners add` (exchange/partners_cli.py): its FHIR base URL,
its token endpoint, the client id Puente was given there, the file holding Puente's private key for
it, and the Organization whose referrals go to it (`ServiceRequest.performer` or `Task.owner` =
`Organization/<id>`). Puente acts at the partner, and on what it brings back from it, as that
Organization's clinic would (`Partner.principal`): what is pushed is what the clinic could pull
itself, and its Task updates are held to the lifecycle rules as the owner clinic's.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from exchange.matching import epoch_ms
from exchange.partner_tables import partner_outbox, partners
from exchange.tokens import KeyFileError, SigningKey, load_key
from fhir_mappings.ids import RELATIVE_REFERENCE
from storage.database import transaction

# What Puente asks the clinic's token endpoint for: to create (conditionally: search too) the
# referral's resources, and to search the Tasks whose updates it brings back.
DEFAULT_SCOPE = ("system/Patient.crs system/ServiceRequest.crs system/Task.crs system/Observation.crs "
                 "system/Condition.crs")
# How far back the first look for the clinic's Task updates goes (clocks differ between servers).
FIRST_PULL_MARGIN = timedelta(minutes=10)
_NAME = re.compile(r"^\S(.{0,198}\S)?$")
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_SCOPE_WORD = re.compile(r"^[\x21-\x7e]+$")


class PartnerError(Exception):
    """Bad input for a partner (the message says which option and why), or no such partner."""


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    organization: str
    base_url: str
    token_url: str
    client_id: str
    key_file: str
    scope: str

    @property
    def principal(self) -> Principal:
        """Puente acting for the partner: the Organization's clinic, reading and updating its Tasks."""
        return Principal(subject=f"partner:{self.id}", scopes=frozenset({"system/*.rs", "system/Task.u"}),
                         organization=self.organization, name=f"partner clinic {self.name}")

    def public_view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "organization": self.organization, "base_url": self.base_url,
                "token_url": self.token_url, "client_id": self.client_id, "key_file": self.key_file,
                "scope": self.scope}

    @classmethod
    def from_row(cls, row: Any) -> Partner:
        return cls(row.id, row.name, row.organization, row.base_url, row.token_url, row.client_id, row.key_file,
                   row.scope)


def check_url(url: str, option: str) -> str:
    """An absolute https URL (http only on a loopback address, for tests and local trials), no fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PartnerError(f"{option} must be an absolute https URL, not {url!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise PartnerError(f"{option} must be https (plain http only on a loopback address): {url!r}")
    if parts.fragment or parts.username or parts.password:
        raise PartnerError(f"{option} may carry no fragment and no credentials: {url!r}")
    try:
        _ = parts.port
    except ValueError:
        raise PartnerError(f"{option} has a bad port: {url!r}") from None
    return url.strip().rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(
    *, name: str, base_url: str, token_url: str, client_id: str, key_file: str | Path, organization: str,
    scope: str = DEFAULT_SCOPE,
) -> tuple[dict[str, str], SigningKey]:
    """The columns of a partner from the CLI's options, and its key; PartnerError naming what is wrong."""
    if not _NAME.match(name or ""):
        raise PartnerError("--name must be 1 to 200 characters, not starting or ending with a space")
    if not _CLIENT_ID.match(client_id or ""):
        raise PartnerError("--client-id must be 1 to 200 printable characters without spaces")
    m = RELATIVE_REFERENCE.match(organization or "")
    if m is None or m["type"] != "Organization":
        raise PartnerError(f"--organization must look like Organization/ID, not {organization!r}")
    words = (scope or "").split()
    if not words or not all(_SCOPE_WORD.match(w) for w in words):
        raise PartnerError("--scope must be space-separated scopes, e.g. 'system/ServiceRequest.crs'")
    values = {"name": name, "organization": organization, "base_url": check_url(base_url, "--base-url"),
              "token_url": check_url(token_url, "--token-url"), "client_id": client_id, "scope": " ".join(words)}
    path = Path(key_file).expanduser()
    try:
        key = load_key(path)
    except KeyFileError as exc:
        raise PartnerError(f"--key-file: {exc}") from None
    values["key_file"] = str(path.resolve())
    return values, key


async def add(engine: AsyncEngine, **options: Any) -> tuple[Partner, SigningKey]:
    """Register a partner (see `check` for the options); PartnerError if its name or Organization is taken."""
    values, key = check(**options)
    now = epoch_ms()
    first_pull = datetime.now(UTC) - FIRST_PULL_MARGIN
    row = {**values, "id": str(uuid.uuid4()), "created_at": now, "next_event": 0, "next_pull_at": now,
           "pull_cursor": first_pull.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           "pull_lease_until": None, "pull_lease_owner": None, "last_error": None}
    async with transaction(engine, write=True) as connection:
        taken = (await connection.execute(select(partners.c.name, partners.c.organization).where(
            or_(partners.c.name == values["name"], partners.c.organization == values["organization"])))).first()
        if taken is not None:
            what = "name" if taken.name == values["name"] else "organization"
            raise PartnerError(f"a partner with this {what} is registered already ({taken.name}, "
                               f"{taken.organization}); remove it first or use `puente partners update`")
        try:
            await connection.execute(insert(partners).values(**row))
        except IntegrityError:
            raise PartnerError("a partner with this name or organization is registered already") from None
    return Partner.from_row(_Row(row)), key


async def change(engine: AsyncEngine, which: str, **changes: Any) -> tuple[Partner, SigningKey]:
    """Change a partner's connection (a corrected client id, a new key file, a moved server). What is
    waiting in its outbox stays, and goes with the new settings."""
    current = await find(engine, which)
    options = {**current.public_view(), **{k: v for k, v in changes.items() if v is not None}}
    options.pop("id")
    values, key = check(**options)
    values.pop("name"), values.pop("organization")  # who the partner is does not change
    async with transaction(engine, write=True) as connection:
        await connection.execute(update(partners).where(partners.c.id == current.id)
                                 .values(**values, last_error=None, next_pull_at=epoch_ms()))
    return await find(engine, current.id), key


async def find(engine: AsyncEngine, which: str) -> Partner:
    """The partner with this id or name; PartnerError if none."""
    async with transaction(engine, write=False) as connection:
        row = (await connection.execute(select(partners).where(
            or_(partners.c.id == which, partners.c.name == which)))).first()
    if row is None:
        raise PartnerError(f"no partner {which!r} (give its id or its name; `puente partners list` shows them)")
    return Partner.from_row(row)


async def listed(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every partner with what is waiting for it and its latest failure (never a key)."""
    o = partner_outbox
    async with transaction(engine, write=False) as connection:
        rows = (await connection.execute(select(partners).order_by(partners.c.name))).all()
        counts: dict[str, int] = dict((await connection.execute(
            select(o.c.partner_id, func.count()).where(o.c.state == "pending").group_by(o.c.partner_id))).all())
    return [{**Partner.from_row(row).public_view(), "pending": counts.get(row.id, 0),
             "pull_cursor": row.pull_cursor, "last_error": row.last_error} for row in rows]


async def remove(engine: AsyncEngine, which: str) -> tuple[Partner, int]:
    """Unregister a partner; what was still waiting for it is given up (and says so). Its attempts stay."""
    current = await find(engine, which)
    o = partner_outbox
    async with transaction(engine, write=True) as connection:
        dropped = (await connection.execute(
            update(o).where(o.c.partner_id == current.id, o.c.state == "pending")
            .values(state="gave-up", done_at=epoch_ms(), lease_until=None, lease_owner=None).returning(o.c.pk)
        )).all()
        await connection.execute(delete(partners).where(partners.c.id == current.id))
    return current, len(dropped)


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
