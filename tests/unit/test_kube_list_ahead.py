"""Reading a list page's continue token off its front (``client.continue_token``).

The bodies are the 1.20 API server's own (captured from the test cluster,
items trimmed): the token read off the front must equal the decoded page's,
and anything that does not look like that gives None - the lister then waits
for the whole page, as it would without reading ahead.
"""

from __future__ import annotations

import json

import pytest

from chaosrunner.faults.kubernetes.client import continue_token

TOKEN = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NTIyNDU1LCJzdGFydCI6InAxXHUwMDAwIn0"
POD_LIST = (
    '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"522455","continue":"'
    + TOKEN
    + '","remainingItemCount":5},"items":[{"metadata":{"name":"p0","namespace":"ctok"}},'
    '{"metadata":{"name":"p1","namespace":"ctok","annotations":{"continue":"not-this"}}}]}'
).encode()
METADATA_LIST = (
    '{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":'
    '{"resourceVersion":"522460","continue":"' + TOKEN + '"},"items":[]}'
).encode()
LAST_PAGE = b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"522455"},"items":[]}'


@pytest.mark.parametrize("body", [POD_LIST, METADATA_LIST])
def test_the_token_read_off_the_front_is_the_decoded_pages(body: bytes) -> None:
    assert continue_token(body) == json.loads(body)["metadata"]["continue"] == TOKEN


@pytest.mark.parametrize(
    "body",
    [
        LAST_PAGE,  # no token: the last page
        b'{"items":[{"metadata":{"continue":"an item\'s"}}],"metadata":{}}',  # items first: not trusted
        b'{"kind":"PodList","apiVersion":"v1","metadata":{"continue":',  # cut short
        b"",
        b"<html>a proxy's error page</html>",
    ],
)
def test_anything_else_gives_no_token(body: bytes) -> None:
    assert continue_token(body) is None
