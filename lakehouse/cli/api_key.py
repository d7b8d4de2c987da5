"""``lakehouse api-key``: create, list and revoke the data service's API keys.

A key is printed once, on stdout, and only its salted hash is stored (``data/api_keys.json`` or
``$LAKEHOUSE_API_KEYS_PATH``). A running server sees changes at its next request.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click


def _store():
    from lakehouse.service.keys import KeyStore
    from lakehouse.service.settings import ServiceSettings

    return KeyStore(ServiceSettings().resolved_keys_path())


@click.group(name="api-key")
def command() -> None:
    """Manage the API keys of `lakehouse serve` (each key belongs to a role of policy.yaml)."""


@command.command(name="create")
@click.option("--role", required=True, help="A role of the access policy.")
@click.option("--name", default=None, help="A name to list and revoke it by (default: generated).")
@click.option("--expires", type=click.IntRange(min=1), default=None, help="Days until it expires.")
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Requests per second for this key (default: the server's, 50).",
)  # fmt: skip
@click.option(
    "--burst", type=click.IntRange(min=1), default=None,
    help="Burst for this key (default: the server's, 100).",
)  # fmt: skip
def create(
    role: str, name: str | None, expires: int | None, rate: float | None, burst: int | None
) -> None:
    """Create a key for ROLE and print it once (stdout); store only its salted hash."""
    from lakehouse.governance.policy import PolicyError, load_policy
    from lakehouse.service.keys import KeyFileError

    try:
        policy = load_policy()
        if role not in policy.roles:
            raise click.BadParameter(
                f"no role {role!r} in the access policy; roles: {', '.join(sorted(policy.roles))}",
                param_hint="--role",
            )
        store = _store()
        record, key = store.create(role, name, expires, rate, burst)
    except (PolicyError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from None
    until = f", expires {record.expires}" if record.expires else ""
    click.echo(
        f"created API key {record.name!r} for role {role!r}{until} in {store.path}; "
        "it is shown once, keep it secret:",
        err=True,
    )
    click.echo(key)


@command.command(name="list")
def list_keys() -> None:
    """List keys: name, role, status, created, expires (never the keys)."""
    from lakehouse.service.keys import KeyFileError

    try:
        keys = _store().load()
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    if not keys:
        click.echo("no API keys; create one with `lakehouse api-key create --role ROLE`")
        return
    now = datetime.now(UTC)
    rows = [("NAME", "ROLE", "STATUS", "CREATED", "EXPIRES", "RATE")]
    for k in keys:
        rate = f"{k.rate_limit:g}/s burst {k.rate_burst}" if k.rate_limit or k.rate_burst else "-"
        rows.append((k.name, k.role, k.status(now), k.created, k.expires or "-", rate))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@command.command(name="revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the key NAME: refused from the server's next request on."""
    from lakehouse.service.keys import KeyFileError

    try:
        record = _store().revoke(name)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked API key {record.name!r} (role {record.role!r}) at {record.revoked}")
