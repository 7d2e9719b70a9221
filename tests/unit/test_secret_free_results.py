"""Text that leaves a run other than through the journal is scrubbed too: the run's result
(printed, logged by the scheduler, posted to webhooks), error messages, exported scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.errors import ServiceUnreachable
from chaosrunner.faults.inprocess import ACTIVE_FLAGS
from chaosrunner.schedule.export_secrets import literal_secret
from tests.unit.test_runner import healthy_metrics, make_runner, scenario_file

SECRET = "s3cr3tPassw0rd"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_STATE_DIR", str(tmp_path / "state"))
    ACTIVE_FLAGS.clear()


def test_the_runs_result_detail_carries_no_credential(tmp_path: Path) -> None:
    runner, _ = make_runner(scenario_file(tmp_path), healthy_metrics())

    def abort_quoting_a_dsn(event: dict) -> None:
        if event["type"] == "fault_injected":
            runner.request_abort("error", f"lost postgresql://app:{SECRET}@db/shop")

    runner.listeners.append(abort_quoting_a_dsn)
    result = runner.run()
    assert "postgresql://app:" in result.detail and SECRET not in result.detail


def test_an_error_shown_to_a_person_carries_no_credential() -> None:
    shown = ServiceUnreachable(f"Prometheus at https://admin:{SECRET}@prom did not answer").show()
    assert shown.startswith("error: Prometheus at https://admin:") and SECRET not in shown


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.example.com/hooks/xj3k9qz81mdbbt7c4x5y6w",  # Mattermost incoming webhook
        "https://acme.webhook.office.com/webhookb2/abc-123/IncomingWebhook/def/ghi",  # Teams
    ],
)
def test_the_export_refuses_every_webhook_shape_the_logs_hide(url: str) -> None:
    assert literal_secret(url) is not None
