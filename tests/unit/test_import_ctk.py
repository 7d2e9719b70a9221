"""`chaosrunner import ctk`: the corpus of experiments in the shapes public Chaos Toolkit repositories use.

Each experiment either imports to a scenario the loader accepts (checked by
the same loader `chaosrunner validate` uses) with the faults, checks and
timings its method implies, or is refused naming the activity, its provider
and its place - with exit code 2 and never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chaosrunner.cli import cli
from chaosrunner.errors import ScenarioError
from chaosrunner.importers.ctk_experiment import import_experiment
from chaosrunner.importers.scenario_text import render_scenario
from chaosrunner.importers.validation import validate_text
from chaosrunner.scenario.http_check import HttpSteadyStateCheck
from chaosrunner.scenario.loader import load_scenario
from chaosrunner.scenario.models import Scenario

CORPUS = Path(__file__).parents[1] / "corpus" / "ctk"
ENV = {"CTK_CORPUS_SEARCH_URL": "http://127.0.0.1:9200", "PATH": "/usr/bin"}


def imported(name: str, **options: object) -> tuple[str, Scenario]:
    result = import_experiment(CORPUS / name, environ=ENV, **options)  # type: ignore[arg-type]
    text = render_scenario(result)
    return text, validate_text(text, name)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["import", *args], env=env)


def http_checks(scenario: Scenario) -> list[HttpSteadyStateCheck]:
    return scenario.http_checks


def test_pod_kill_with_prometheus_and_http_probes() -> None:
    text, scenario = imported("k8s-pod-kill-prometheus-http.json")
    (fault,) = scenario.faults
    assert fault.kind == "kubernetes.pod-kill"
    assert fault.selector is not None
    assert fault.selector.model_dump()["label_selector"] == "app=checkout"
    assert fault.selector.model_dump()["namespace"] == "shop"  # ${namespace} from configuration
    assert fault.blast_radius.mode.value == "one" and fault.blast_radius.maximum == 1
    assert fault.duration is not None and fault.duration.total_seconds() == 20  # its pause after
    assert scenario.target.prometheus == "http://127.0.0.1:19090"
    assert scenario.target.kubernetes is not None
    assert scenario.target.kubernetes.allowed_namespaces == ["shop"]
    (http,) = http_checks(scenario)
    assert http.http.url == "http://127.0.0.1:8080/health"  # env entry's default: variable unset
    assert http.http.expect_status == [200]
    promql = {check.name: check.describe() for check in scenario.steady_state}
    assert promql["prometheus-is-up"] == 'min(up{job="prometheus"}) == 1'
    assert promql["error-ratio-is-low-max"].endswith("<= 0.05")
    assert "We always revert" in text
    assert "method probe 'read-checkout-logs'" in text  # a probe that changes nothing, said out loud
    assert "hypothesis: Checkout answers and Prometheus scrapes it" in text


def test_node_drain_absorbs_its_uncordon_rollback() -> None:
    text, scenario = imported("k8s-node-drain.yaml")
    (fault,) = scenario.faults
    assert fault.kind == "kubernetes.node-drain"
    assert fault.blast_radius.mode.value == "count" and fault.blast_radius.count == 1
    assert vars(fault.params)["eviction_timeout"].total_seconds() == 120
    assert fault.duration is not None and fault.duration.total_seconds() == 60
    (http,) = http_checks(scenario)
    assert http.http.expect_json is not None and http.http.expect_json.equals == "UP"
    assert http.http.timeout.total_seconds() == 5  # connect 2 + read 3
    assert (
        "rollback 'uncordon-the-worker' (uncordon_node) is what our revert does for drain-one-worker"
        in " ".join(text.split()).replace("# ", "")
    )


def test_process_load_becomes_command_faults_with_the_rollback_as_revert() -> None:
    text, scenario = imported("process-load-rollback.json")
    burn, warm = scenario.faults
    assert (burn.kind, warm.kind) == ("command.run", "command.run")
    burn_params, warm_params = burn.params.model_dump(), warm.params.model_dump()
    assert burn_params["inject"] == ["stress-ng", "--cpu", "2", "--timeout", "60s"]  # split, never a shell
    assert burn_params["background"] is True
    assert burn_params["revert"] == ["pkill", "-f", "stress-ng"]
    assert warm_params["inject"] == ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8080/warm"]
    assert vars(warm.params)["deadline"].total_seconds() == 10
    # Timings follow the method: warm-cache waits 5 s, then the method runs 30 s more.
    assert (burn.start.total_seconds(), burn.duration.total_seconds()) == (0, 35)  # type: ignore[union-attr]
    assert (warm.start.total_seconds(), warm.duration.total_seconds()) == (5, 30)  # type: ignore[union-attr]
    assert http_checks(scenario)[0].http.expect_status == [200, 204]
    assert "runtime.rollbacks.strategy 'always' does not apply: we always revert" in " ".join(text.split())


def test_safeguards_become_abort_conditions_that_fire_when_the_tolerance_breaks() -> None:
    _, scenario = imported("safeguards.json")
    conditions = {
        condition.name: (condition.comparator.value, condition.threshold)
        for condition in scenario.abort_conditions
    }
    assert conditions == {
        "error-rate-below-one-percent-min": ("<", 0.0),
        "error-rate-below-one-percent-max": (">", 0.01),
        "no-crashloop-alert": ("!=", 0.0),
    }
    (fault,) = scenario.faults
    assert fault.blast_radius.mode.value == "percent" and fault.blast_radius.percent == 50
    assert fault.start.total_seconds() == 10  # its pause before


def test_interactive_controls_network_policy_scaling_and_ref() -> None:
    text, scenario = imported("interactive-controls.yaml")
    partition, scale = scenario.faults
    assert partition.kind == "kubernetes.network-partition"
    assert vars(partition.params)["direction"].value == "ingress"
    assert scale.kind == "kubernetes.deployment-scale" and scale.name == "scale-api-to-1"
    assert scale.params.model_dump()["replicas"] == 1
    assert (scale.start.total_seconds(), scale.duration.total_seconds()) == (15, 30)  # type: ignore[union-attr]
    flat = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert "asks before each activity; we do not" in flat
    assert "only observes a run: left out" in flat
    assert scenario.metadata.hypothesis.startswith("The system stays in its steady state")  # title was n/a


def test_configuration_from_env_and_an_env_secret_header(monkeypatch: pytest.MonkeyPatch) -> None:
    text, scenario = imported("config-from-env.yaml")
    (http,) = http_checks(scenario)
    assert http.http.url == "http://127.0.0.1:9200/search?q=chaos"
    assert http.http.header_env == {"Authorization": "SEARCH_API_TOKEN"}  # a name, never a value
    assert http.http.expect_body_regex == '"results":'
    (fault,) = scenario.faults
    assert fault.kind == "proxy.latency"
    params = vars(fault.params)
    assert (params["listen"], params["upstream"]) == ("127.0.0.1:16379", "127.0.0.1:6379")
    assert params["delay"].total_seconds() == 0.3 and params["jitter"].total_seconds() == 0.05
    assert "read from $CTK_CORPUS_SEARCH_URL at import time" in " ".join(text.split())


def test_an_env_entry_without_default_and_unset_is_refused_naming_it() -> None:
    with pytest.raises(ScenarioError) as raised:
        import_experiment(CORPUS / "config-from-env.yaml", environ={})
    (problem,) = raised.value.problems
    assert problem.field == "configuration.search_url" and problem.line == 5  # the entry
    assert "CTK_CORPUS_SEARCH_URL is not set" in problem.message


def test_a_custom_crd_is_refused_naming_activity_provider_and_place() -> None:
    result = invoke("ctk", str(CORPUS / "custom-crd.json"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert (
        'custom-crd.json:16:5: method[3]: "create-pod-chaos": '
        "python chaosk8s.crd.actions.create_custom_object" in result.output
    )


def test_skip_unsupported_imports_the_rest_and_lists_what_was_left_out(tmp_path: Path) -> None:
    out = tmp_path / "crd.yaml"
    result = invoke("ctk", str(CORPUS / "custom-crd.json"), "--skip-unsupported", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "# LEFT OUT (--skip-unsupported)" in text
    assert 'method[3] "create-pod-chaos": python chaosk8s.crd.actions.create_custom_object' in text
    assert out.stat().st_mode & 0o777 == 0o600
    scenario = load_scenario(out)
    assert [fault.kind for fault in scenario.faults] == ["kubernetes.deployment-scale", "command.run"]


def test_a_vault_secret_is_refused_with_its_location() -> None:
    result = invoke("ctk", str(CORPUS / "vault-secret.json"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "vault-secret.json:6:19: secrets.db.password" in result.output
    assert "environment variables only" in result.output


def test_a_secret_written_into_the_experiment_is_refused(tmp_path: Path) -> None:
    experiment = json.loads((CORPUS / "process-load-rollback.json").read_text())
    experiment["secrets"] = {"db": {"password": "hunter2"}}
    path = tmp_path / "inline-secret.json"
    path.write_text(json.dumps(experiment, indent=1))
    result = invoke("ctk", str(path))
    assert result.exit_code == 2 and "secrets.db.password" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "JSON syntax error"),
        ("[1, 2]", "expected a mapping"),
        ('{"method": []}', "needs a title"),
        ('{"title": "t", "method": "kill it"}', "expected a list of activities"),
        ('{"title": "t", "method": ["oops", {"name": "x"}]}', "method[0]"),
        ('{"title": "t", "method": [{"ref": "nowhere"}]}', "names no activity"),
        (
            '{"title": "t", "method": [{"type": "probe", "name": "p", "provider": {"type": "http"}}]}',
            "nothing in the method",
        ),
        ('{"title": "t", "configuration": {"x": {"type": "env"}}, "method": []}', "configuration.x.key"),
        (
            '{"title": "t", "steady-state-hypothesis": {"probes": [{"name": "p", '
            '"tolerance": {"type": "probe"}, '
            '"provider": {"type": "http", "url": "http://h/"}}]}, "method": []}',
            "probe tolerance",
        ),
    ],
)
def test_broken_experiments_exit_2_with_a_located_error(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    result = invoke("ctk", str(path))
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    assert expected in result.output
    assert "broken.json:" in result.output


def test_the_plan_reads_like_the_experiment(tmp_path: Path) -> None:
    out = tmp_path / "load.yaml"
    assert invoke("ctk", str(CORPUS / "process-load-rollback.json"), "-o", str(out)).exit_code == 0
    plan = CliRunner().invoke(cli, ["plan", str(out)])
    assert plan.exit_code == 0, plan.output
    lines = plan.output.splitlines()
    burn = next(line for line in lines if "burn-cpu" in line)
    warm = next(line for line in lines if "warm-cache" in line)
    assert lines.index(burn) < lines.index(warm)  # the method's order
    assert "0s -> 35s" in burn and "5s -> 35s" in warm
