"""Ephemeral containers: the body each server version takes, proven against the fake of our seam."""

from __future__ import annotations

import pytest

from chaosrunner.errors import FaultError
from chaosrunner.faults.kubernetes import ephemeral, fake
from chaosrunner.faults.kubernetes.api import Conflict
from chaosrunner.faults.kubernetes.ephemeral import BodyStyle
from chaosrunner.faults.kubernetes.fake import FakeKubeApi


@pytest.mark.parametrize(
    ("version", "style"),
    [
        ((1, 16), BodyStyle.EPHEMERAL_CONTAINERS),
        ((1, 20), BodyStyle.EPHEMERAL_CONTAINERS),
        ((1, 21), BodyStyle.EPHEMERAL_CONTAINERS),
        ((1, 22), BodyStyle.POD),
        ((1, 25), BodyStyle.POD),
        ((1, 31), BodyStyle.POD),
    ],
)
def test_body_style_follows_the_server_version(version: tuple[int, int], style: BodyStyle) -> None:
    assert ephemeral.body_style(version) is style


def test_security_context_is_allowed_from_1_21() -> None:
    assert not ephemeral.allows_security_context((1, 20))
    assert ephemeral.allows_security_context((1, 21))
    assert ephemeral.allows_security_context((1, 25))


def test_container_spec_keeps_argv_as_separate_arguments() -> None:
    argv = ["python3", "-c", "print('x; rm -rf /')", "$(whoami)"]
    spec = ephemeral.container_spec(
        "cr-a", "img:1", argv, capabilities=("NET_ADMIN",), target_container="app"
    )
    assert spec["command"] == argv
    assert spec["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    assert spec["targetContainerName"] == "app"
    assert "args" not in spec and "resources" not in spec  # resources are refused on ephemeral containers


def test_legacy_body_appends_and_keeps_the_resource_version() -> None:
    current = {
        "kind": "EphemeralContainers",
        "apiVersion": "v1",
        "metadata": {"name": "web-1", "resourceVersion": "42"},
        "ephemeralContainers": [{"name": "old"}],
    }
    body = ephemeral.legacy_body(current, {"name": "new"})
    assert body["kind"] == "EphemeralContainers"
    assert body["metadata"]["resourceVersion"] == "42"
    assert [entry["name"] for entry in body["ephemeralContainers"]] == ["old", "new"]
    assert [entry["name"] for entry in current["ephemeralContainers"]] == ["old"]  # not mutated


def test_pod_patch_is_pod_shaped() -> None:
    assert ephemeral.pod_patch({"name": "new"}) == {"spec": {"ephemeralContainers": [{"name": "new"}]}}


def _pod_api(version: tuple[int, int]) -> FakeKubeApi:
    api = FakeKubeApi(version)
    api.add("pods", fake.pod("web-1", "shop"))
    return api


def test_attach_on_1_20_puts_an_ephemeral_containers_object() -> None:
    api = _pod_api((1, 20))
    ephemeral.attach(api, "shop", "web-1", ephemeral.container_spec("cr-x", "img", ["true"]), (1, 20))
    writes = [call for call in api.calls if call[0] in ("replace", "patch")]
    assert len(writes) == 1
    verb, plural, namespace, name, subresource, body = writes[0]
    assert (verb, plural, namespace, name, subresource) == (
        "replace",
        "pods",
        "shop",
        "web-1",
        "ephemeralcontainers",
    )
    assert body["kind"] == "EphemeralContainers" and body["ephemeralContainers"][0]["name"] == "cr-x"
    assert ephemeral.names(api.get("pods", "web-1", "shop")) == ["cr-x"]


def test_attach_on_1_25_patches_a_pod_shaped_body() -> None:
    api = _pod_api((1, 25))
    ephemeral.attach(
        api,
        "shop",
        "web-1",
        ephemeral.container_spec("cr-x", "img", ["true"], capabilities=("NET_ADMIN",)),
        (1, 25),
    )
    writes = [call for call in api.calls if call[0] in ("replace", "patch")]
    assert len(writes) == 1
    verb, plural, namespace, name, subresource, strategic, body = writes[0]
    assert (verb, plural, namespace, name) == ("patch", "pods", "shop", "web-1")
    assert (subresource, strategic) == ("ephemeralcontainers", True)
    assert body == {
        "spec": {
            "ephemeralContainers": [
                ephemeral.container_spec("cr-x", "img", ["true"], capabilities=("NET_ADMIN",))
            ]
        }
    }


def test_the_fake_refuses_the_wrong_dialect() -> None:
    """The fake checks the body style, so the two tests above prove what is sent."""
    old, new = _pod_api((1, 20)), _pod_api((1, 25))
    with pytest.raises(FaultError):
        old.patch(
            "pods", "web-1", ephemeral.pod_patch({"name": "x"}), "shop", subresource="ephemeralcontainers"
        )
    current = new.get("pods", "web-1", "shop", subresource="ephemeralcontainers")
    with pytest.raises(FaultError):
        new.replace(
            "pods",
            "web-1",
            ephemeral.legacy_body({**current, "kind": "EphemeralContainers"}, {"name": "x"}),
            "shop",
            subresource="ephemeralcontainers",
        )


def test_attach_refuses_net_admin_before_1_21() -> None:
    api = _pod_api((1, 20))
    with pytest.raises(FaultError, match="refuses securityContext"):
        ephemeral.attach(
            api,
            "shop",
            "web-1",
            ephemeral.container_spec("cr-x", "img", ["true"], capabilities=("NET_ADMIN",)),
            (1, 20),
        )
    assert not [call for call in api.calls if call[0] in ("replace", "patch")]


@pytest.mark.parametrize("version", [(1, 20), (1, 25)])
def test_attach_twice_adds_one_container(version: tuple[int, int]) -> None:
    api = _pod_api(version)
    container = ephemeral.container_spec("cr-x", "img", ["true"])
    ephemeral.attach(api, "shop", "web-1", container, version)
    ephemeral.attach(api, "shop", "web-1", container, version)
    assert ephemeral.names(api.get("pods", "web-1", "shop")) == ["cr-x"]


def test_attach_retries_a_conflict_on_the_legacy_body(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _pod_api((1, 20))
    real_replace = api.replace
    failures = iter([True, False])

    def flaky(*args: object, **kwargs: object) -> object:
        if next(failures):
            raise Conflict("modified", 409)
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(api, "replace", flaky)
    ephemeral.attach(api, "shop", "web-1", ephemeral.container_spec("cr-x", "img", ["true"]), (1, 20))
    assert ephemeral.names(api.get("pods", "web-1", "shop")) == ["cr-x"]


def test_state_of_reads_the_ephemeral_status() -> None:
    pod = fake.pod("web-1")
    pod["status"]["ephemeralContainerStatuses"] = [{"name": "cr-x", "state": {"terminated": {"exitCode": 0}}}]
    assert ephemeral.state_of(pod, "cr-x") == "terminated"
    assert ephemeral.state_of(pod, "cr-y") is None
