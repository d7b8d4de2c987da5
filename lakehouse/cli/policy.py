"""``lakehouse policy apply``: apply the access policy to the shares now, and say what changed.

The ``policy_reconciliation`` sensor does the same on its next tick after a code location
reload; this is for a deployment step (or a host without the daemon) that wants the withdrawal
done, and shown, at once. Withdrawn hours are queued for re-masking; the sensor requests the
runs.
"""

from __future__ import annotations

import click


@click.group(name="policy")
def command() -> None:
    """Apply the access policy (policy.yaml) to data already shared."""


@command.command(name="apply")
def apply() -> None:
    """Withdraw what roles may no longer read or what was masked under an older policy."""
    # Imported here: `lakehouse --help` should not pay for pyarrow and DuckDB.
    from lakehouse.governance.policy import PolicyError, load_policy
    from lakehouse.governance.reconcile import reconcile
    from lakehouse.governance.state import pending_remasks
    from lakehouse.governance.versions import policy_snapshot
    from lakehouse.resources.catalog import CatalogResource
    from lakehouse.resources.storage import LakehouseStorage

    try:
        policy = load_policy()
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    storage = LakehouseStorage()
    report = reconcile(policy, storage, CatalogResource())
    for line in report.lines() or ["nothing to do: the shares already follow this policy"]:
        click.echo(line)
    versions = ", ".join(f"{r} {s.version}" for r, s in policy_snapshot(policy).items())
    click.echo(f"applied policy versions: {versions}")
    pending = pending_remasks(storage.warehouse())
    if pending:
        click.echo(
            f"{len(pending)} shared hour(s) wait to be re-masked; the policy_reconciliation "
            "sensor requests their runs (dagster-daemon or `dagster dev`)"
        )
