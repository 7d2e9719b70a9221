"""`chaosrunner results`: the results store - where it is, and uploading what this machine has."""

from __future__ import annotations

import click

from chaosrunner.cli.output import echo_json


@click.group()
def results() -> None:
    """The results store: finished runs' reports, shared across machines (CHAOSRUNNER_RESULTS_DSN)."""


@results.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(as_json: bool) -> None:
    """Where the store is (DSN redacted), its schema version, how many runs it holds."""
    import os

    from chaosrunner.results.schema import LATEST
    from chaosrunner.results.store import ENV_DSN, STORE_FILE, open_store, store_location
    from chaosrunner.statedir import state_dir

    state = state_dir()
    if not os.environ.get(ENV_DSN, "").strip() and not (state / STORE_FILE).exists():
        where = store_location(state)
        if as_json:
            echo_json(
                {
                    "store": where,
                    "exists": False,
                    "schema_version": None,
                    "code_schema_version": LATEST,
                    "runs": 0,
                }
            )
        else:
            click.echo(
                f"store: {where} (not created yet: the first finished run or `results sync` creates it)"
            )
        return
    with open_store(state) as store:
        version, runs = store.schema_version(), store.count()
        where = store.where
    if as_json:
        echo_json(
            {
                "store": where,
                "exists": True,
                "schema_version": version,
                "code_schema_version": LATEST,
                "runs": runs,
            }
        )
        return
    click.echo(f"store:          {where}")
    click.echo(f"schema version: {version}")
    click.echo(f"runs:           {runs}")


@results.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def sync(as_json: bool) -> None:
    """Upload every finished run of this state folder that the store lacks."""
    from chaosrunner.results.record import sync as sync_runs
    from chaosrunner.results.store import open_store
    from chaosrunner.statedir import state_dir

    with open_store(state_dir()) as store:
        counts = sync_runs(store)
        where, total = store.where, store.count()
    if as_json:
        echo_json({"store": where, **counts.__dict__, "runs_in_store": total})
    else:
        click.echo(f"store: {where}")
        click.echo(
            f"uploaded {counts.uploaded} run(s) ({counts.rendered} rendered from the journal), "
            f"{counts.already} already there, {counts.unfinished} unfinished skipped, "
            f"{len(counts.failed)} failed; the store holds {total} run(s)"
        )
        for run_id, why in counts.failed.items():
            click.echo(f"failed {run_id}: {why}", err=True)
    if counts.failed:
        raise SystemExit(1)
