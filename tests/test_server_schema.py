"""The API fuzzed from its own OpenAPI document with schemathesis: no 500s, responses as specified.

A real server (uvicorn on a free port, the real embedder over a copy of the seeds index) takes
requests generated from ``/openapi.json``, valid and invalid, with every schemathesis check on
each response (status codes, content types, bodies and headers as the spec declares them, auth
enforced) except two that cannot hold for this API: schema-valid requests may still be refused
with a documented 400 for reasons a schema cannot express ("the last message must be the
user's question", "mode 'llm' needs a model"), and in a multipart upload any bytes are a file.
Bounded: a fixed number of examples per operation (about 330 in all), derandomised, and a 30 s
timeout on each request, so a run takes the same time (15-20 s on 2 cores) and finds the same
cases every time.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from rag import Assistant
from rag.server.app import openapi_document
from rag.server.guard import FailureLimiter
from rag.server.run import start

pytestmark = pytest.mark.integration

KEY = "fuzz-key"
EXAMPLES = 40  # per operation; 9 operations

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def server(seeds_index_dir, real_embedder, tmp_path_factory):
    index = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(seeds_index_dir, index)
    assistant = Assistant(index, embedder=real_embedder, seed=False, quiet=True)
    # the fuzzer sends requests without the key on purpose: no limit on failures here
    running = start(assistant, api_key=KEY, chat=False, limiter=FailureLimiter(max_failures=10**6))
    yield running
    running.stop()
    assistant.close()


def test_the_fuzzed_document_is_the_one_served(server):
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=30) as r:
        assert json.load(r) == openapi_document()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_as_specified(case, server):
    excluded = [positive_data_acceptance]
    if case.method == "POST" and case.path == "/v1/articles":
        excluded.append(negative_data_rejection)
    case.call_and_validate(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"},
                           excluded_checks=excluded, timeout=30)  # a hung request fails, never stalls CI
