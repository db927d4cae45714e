"""Starts the real gateway binary on a free loopback port for the suite."""

import os
import subprocess

import pytest
import schemathesis

ADMIN_TOKEN = "admin-openapi-token"
ETL_TOKEN = "etl-openapi-token"


@pytest.fixture(scope="session")
def gateway_url():
    binary = os.environ["GATEWAY_BIN"]
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--allow-anonymous",
         "--service-token", f"etl={ETL_TOKEN}", "--admin-token", ADMIN_TOKEN,
         # Rate limits are tested elsewhere; here they would only add 429s.
         "--publish-rate", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "LOGS_SSE_LOG": "warn"},
    )
    line = process.stdout.readline().strip()
    assert line.startswith("listening on "), f"gateway did not start: {line!r}"
    yield line.removeprefix("listening on ")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def api_schema(gateway_url):
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
