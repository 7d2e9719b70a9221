"""The Kubernetes adapter: the one module that imports the ``kubernetes`` client.

Everything the faults need goes through ``LiveKubeApi`` (the ``KubeApi``
interface of ``api.py``): configuration loading (kubeconfig with a context, or
the in-cluster service account), the server version, plain JSON requests, the
exec websocket, logs and watches. Library exceptions stop here:

- an HTTP error status becomes ``NotFound``/``Conflict``/``TooManyRequests``/
  ``Invalid``/``Forbidden`` (``api.py``), with the server's own message;
- a connection that fails (refused, TLS, timeout) becomes
  ``ServiceUnreachable`` naming the API server's address;
- a kubeconfig that cannot be loaded becomes ``EnvironmentProblem``.

Requests are made through the client's low-level ``param_serialize`` and
``call_api`` with dict bodies, not through the generated typed methods: client
37 validates bodies against the newest API, which rejects requests that older
servers need (see ``api.py``). ``kubernetes`` is imported inside functions, so
importing this module costs nothing until a fault talks to a cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaosrunner.errors import EnvironmentProblem, FaultError, ServiceUnreachable
from chaosrunner.faults.kubernetes.api import (
    LIST_PAGE,
    Conflict,
    ExecResult,
    ExecTimedOut,
    Forbidden,
    Invalid,
    KubeApi,
    KubeStatus,
    ListPage,
    NotFound,
    Obj,
    TooManyRequests,
    WatchEvent,
)
from chaosrunner.faults.kubernetes.target import KubeTarget

REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for ordinary requests."""
POOL_SIZE = 64
"""HTTP connections kept per API server: pod-kill deletes with up to this many threads."""
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
"""Accept for a ``metadata_only`` watch: objects as their metadata; a server without it sends them whole."""
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
"""The same for a list, which the server answers as a list of metadata (or whole, likewise)."""

_STATUS_ERRORS: dict[int, type[KubeStatus]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Conflict,
    422: Invalid,
    429: TooManyRequests,
}


def open_api(target: KubeTarget) -> KubeApi:
    """A live API for ``target``; raises EnvironmentProblem when its configuration cannot be loaded."""
    return LiveKubeApi(target)


def _configuration(target: KubeTarget) -> Any:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if target.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=target.kubeconfig,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise EnvironmentProblem(
            f"cannot load the Kubernetes configuration ({target.describe()}): {exc}"
        ) from exc
    configuration.connection_pool_maxsize = POOL_SIZE
    return configuration


_LIST_METADATA = re.compile(rb'^\s*\{(?:"kind":"\w*",)?(?:"apiVersion":"[\w./]*",)?"metadata":')


def continue_token(raw: bytes) -> str | None:
    """The ``continue`` token of a list page, read off its front without decoding its items.

    The API server writes a list as kind, apiVersion, metadata, items - in that
    order - so the list's own metadata is a small object near the start. None
    when the page does not start that way or has no token; the caller then
    waits for the whole page to be decoded, as it would without this.
    """
    found = _LIST_METADATA.match(raw)
    if found is None:
        return None
    try:
        meta, _ = json.JSONDecoder().raw_decode(
            raw[found.end() : found.end() + 64 * 1024].decode(errors="replace")
        )
    except ValueError:
        return None
    token = meta.get("continue") if isinstance(meta, dict) else None
    return token if isinstance(token, str) and token else None


class LiveKubeApi(KubeApi):
    def __init__(self, target: KubeTarget) -> None:
        from kubernetes import client

        self.target = target
        self._configuration = _configuration(target)
        self._client = client.ApiClient(self._configuration)
        self._version: tuple[int, int] | None = None

    @property
    def server(self) -> str:
        return str(self._configuration.host)

    def close(self) -> None:
        self._client.close()

    # ---------------------------------------------------------------- requests

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: Any = REQUEST_TIMEOUT,
    ) -> Any:
        """One request; returns the client's RESTResponse with the body NOT yet read."""
        from kubernetes.client.exceptions import ApiException

        request = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._client.call_api(*request, _request_timeout=timeout)
        except ApiException as exc:
            raise self._status_error(method, path, exc.status or 0, exc.reason or "", exc.body) from exc
        except Exception as exc:
            if _is_connection_error(exc):
                raise ServiceUnreachable(
                    f"the Kubernetes API at {self.server} did not answer: {exc}"
                ) from exc
            raise
        if not 200 <= response.status <= 299:
            response.read()
            raise self._status_error(method, path, response.status, response.reason or "", response.data)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        data = self._body(method, path, **kwargs)
        return json.loads(data) if data else {}

    def _body(self, method: str, path: str, **kwargs: Any) -> bytes:
        response = self._call(method, path, **kwargs)
        try:
            data: bytes = response.read()
        except Exception as exc:
            if _is_connection_error(exc):
                raise ServiceUnreachable(f"the Kubernetes API at {self.server} broke off: {exc}") from exc
            raise
        return data

    @staticmethod
    def _status_error(method: str, path: str, status: int, reason: str, body: Any) -> KubeStatus:
        message = reason
        causes: list[str] = []
        if body:
            try:
                decoded = json.loads(body)
                message = decoded.get("message") or reason
                reason = decoded.get("reason") or reason
                causes = [
                    str(cause.get("message"))
                    for cause in (decoded.get("details") or {}).get("causes") or []
                    if cause.get("message")
                ]
            except (ValueError, AttributeError, TypeError):
                message = str(body)[:300]
        error = _STATUS_ERRORS.get(status, KubeStatus)
        return error(f"{method} {path}: {status} {message}", status, reason, causes)

    # ---------------------------------------------------------------- KubeApi

    def server_version(self) -> tuple[int, int]:
        if self._version is None:
            info = self._json("GET", "/version")
            self._version = parse_version(str(info.get("major", "")), str(info.get("minor", "")))
        return self._version

    def discover(self, path: str) -> Obj:
        result: Obj = self._json("GET", path)
        return result

    def get(
        self, plural: str, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        result: Obj = self._json("GET", self.resource(plural).path(namespace, name, subresource))
        return result

    def pages(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        limit: int = LIST_PAGE,
        metadata_only: bool = False,
    ) -> Iterator[ListPage]:
        query = _selectors(labels, fields)
        path = self.resource(plural).path(namespace)
        accept = METADATA_LIST if metadata_only else "application/json"

        def fetch(token: str | None) -> bytes:
            return self._body(
                "GET",
                path,
                query=[*query, ("limit", limit), *([("continue", token)] if token else [])],
                accept=accept,
            )

        # One page is asked for ahead, as soon as its continue token can be read off the front of
        # the page before it: the server makes the next page while this one is decoded (at 5,000
        # pods, decoding was half of a selection's time and waiting on the server the other half).
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-ahead")
        try:
            raw = fetch(None)
            while True:
                next_token = continue_token(raw)
                upcoming = ahead.submit(fetch, next_token) if next_token else None
                page = json.loads(raw) if raw else {}
                meta = page.get("metadata") or {}
                token = meta.get("continue")
                yield ListPage(page.get("items") or [], str(meta.get("resourceVersion") or ""))
                if not token:
                    return
                # The page itself is the authority: a token read off the front that differs is dropped.
                raw = upcoming.result() if upcoming is not None and next_token == token else fetch(token)
        finally:
            # A caller that stops early (one page for a resourceVersion) does not wait for the page
            # asked ahead: it is read and dropped in the background.
            ahead.shutdown(wait=False, cancel_futures=True)

    def create(
        self,
        plural: str,
        body: Obj,
        namespace: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        result: Obj = self._json("POST", self.resource(plural).path(namespace, name, subresource), body=body)
        return result

    def replace(
        self,
        plural: str,
        name: str,
        body: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> Obj:
        result: Obj = self._json("PUT", self.resource(plural).path(namespace, name, subresource), body=body)
        return result

    def patch(
        self,
        plural: str,
        name: str,
        body: Obj,
        namespace: str | None = None,
        *,
        strategic: bool = False,
        subresource: str | None = None,
    ) -> Obj:
        kind = "application/strategic-merge-patch+json" if strategic else "application/merge-patch+json"
        result: Obj = self._json(
            "PATCH", self.resource(plural).path(namespace, name, subresource), body=body, content_type=kind
        )
        return result

    def delete(
        self,
        plural: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            self._json("DELETE", self.resource(plural).path(namespace, name), body=options)
        except NotFound:
            return False
        return True

    def watch(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
        resource_version: str | None = None,
        timeout: float = 30.0,
        metadata_only: bool = False,
    ) -> Iterator[WatchEvent]:
        query = [*_selectors(labels, fields), ("watch", "true"), ("timeoutSeconds", max(1, int(timeout)))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        response = self._call(
            "GET",
            self.resource(plural).path(namespace),
            query=query,
            accept=METADATA_ONLY if metadata_only else "application/json",
            timeout=(REQUEST_TIMEOUT[0], timeout + 10),
        )
        raw = response.response
        try:
            for line in _lines(raw):
                event = json.loads(line)
                yield WatchEvent(str(event.get("type")), event.get("object") or {})
        except Exception as exc:
            if _is_connection_error(exc):
                raise ServiceUnreachable(f"the watch on {self.server} broke off: {exc}") from exc
            raise
        finally:
            raw.release_conn()

    def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], *, timeout: float = 30.0
    ) -> ExecResult:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        core = client.CoreV1Api(self._client)
        try:
            session = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                container=container,
                command=list(argv),
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            # The websocket handshake carries the server's Status in its reason text.
            text = str(exc.reason or exc)
            if "not found" in text.lower():
                raise NotFound(f"exec in {namespace}/{pod} [{container}]: {text}", 404) from exc
            if "not valid" in text.lower() or "400" in text:
                raise Invalid(f"exec in {namespace}/{pod} [{container}]: {text}", 400) from exc
            if _is_connection_error(exc) or exc.status == 0:
                raise ServiceUnreachable(f"exec through {self.server} failed: {text}") from exc
            raise FaultError(f"exec in {namespace}/{pod} [{container}]: {text}") from exc
        stdout: list[str] = []
        stderr: list[str] = []
        try:
            session.run_forever(timeout=timeout)
            # timeout=0: a read without one waits for data forever while the stream stays open.
            stdout.append(session.read_stdout(timeout=0) or "")
            stderr.append(session.read_stderr(timeout=0) or "")
            if session.is_open():
                raise ExecTimedOut(
                    f"exec in {namespace}/{pod} [{container}] did not finish within {timeout:g}s"
                )
            code = session.returncode
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise FaultError(
                f"exec in {namespace}/{pod} [{container}]: unreadable exit status ({exc})"
            ) from exc
        finally:
            session.close()
        return ExecResult(int(code if code is not None else -1), "".join(stdout), "".join(stderr))

    def logs(
        self, namespace: str, pod: str, container: str | None = None, *, tail_lines: int | None = None
    ) -> str:
        query: list[tuple[str, Any]] = []
        if container:
            query.append(("container", container))
        if tail_lines:
            query.append(("tailLines", tail_lines))
        response = self._call("GET", self.resource("pods").path(namespace, pod, "log"), query=query)
        data = response.read()
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def parse_version(major: str, minor: str) -> tuple[int, int]:
    """(1, 20) from the /version fields; providers append '+' to the minor ('20+')."""
    digits = "".join(ch for ch in minor if ch.isdigit())
    try:
        return int(major), int(digits)
    except ValueError as exc:
        raise FaultError(f"unreadable Kubernetes server version {major!r}.{minor!r}") from exc


def _selectors(labels: str | None, fields: str | None) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = []
    if labels:
        query.append(("labelSelector", labels))
    if fields:
        query.append(("fieldSelector", fields))
    return query


def _lines(raw: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a streaming response (a watch sends one event per line)."""
    pending = b""
    for chunk in raw.stream(4096, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _is_connection_error(exc: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(
        exc,
        urllib3.exceptions.HTTPError | ConnectionError | TimeoutError | OSError,
    )
