"""`headwater serve` and `headwater keys`: the server starts as a command and answers over real
HTTP, keys are shown once and kept hashed, and bad settings are refused before it listens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from headwater.orchestrate.stores import LakeStores
from headwater.project import load_project
from headwater.serve.access import key_hash
from tests.badinput.harness import assert_clean_error, hw, mentions, write
from tests.change.test_releases import ok, project

POLICIES = """roles:
  reader: {grants: ["marts.*"]}
  nobody: {grants: []}
"""


def served(root: Path, policies: str | None = POLICIES) -> Path:
    project(root)
    write(root, "models/marts/total.yml", "serve: true\n")
    if policies is not None:
        write(root, "policies.yml", policies)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_keys_are_shown_once_kept_hashed_and_revocable(tmp_path: Path) -> None:
    root = served(tmp_path)
    made = hw(root, "keys", "create", "ci", "--role", "reader", "--format", "json")
    assert made.code == 0, made
    key = json.loads(made.output)["key"]
    assert key.startswith("hw_") and len(key) > 40
    stores = LakeStores.open(load_project(root))
    try:
        assert stores.catalog.key_hashes() == {key_hash(key): ("ci", "reader")}
    finally:
        stores.close()
    catalog = (root / ".headwater" / "catalog.db").read_bytes()
    assert key.encode() not in catalog  # only its hash is at rest
    listed = hw(root, "keys", "list", "--format", "json")
    assert [k["name"] for k in json.loads(listed.output)] == ["ci"]
    assert key not in listed.output
    again = hw(root, "keys", "create", "ci", "--role", "reader")
    assert_clean_error(again, "named 'ci' exists already", code=2)
    assert hw(root, "keys", "revoke", "ci").code == 0
    assert_clean_error(hw(root, "keys", "revoke", "ci"), "no live key named 'ci'", code=2)
    assert_clean_error(hw(root, "keys", "create", "x", "--role", "admin"), "'admin'", code=2)


def test_bad_policies_are_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    root = served(tmp_path, "roles:\n  r: {masks: {marts.totl.total: hash}}\n")
    assert_clean_error(hw(root, "serve"), "policies.yml", "'marts.totl'", "marts.total", code=3)
    write(root, "policies.yml", "roles:\n  r: {rows: {marts.total: 'total >'}}\n")
    assert_clean_error(hw(root, "serve"), "policies.yml", "not a SQL condition", code=3)
    write(root, "policies.yml", "roles:\n  r: {grants: ['*']}\nanonymous: someone\n")
    assert_clean_error(hw(root, "serve"), "policies.yml", "'someone' is not a role", code=3)
    write(root, "policies.yml", "roles:\n  r: {masks: {marts.total.total: scramble}}\n")
    assert_clean_error(hw(root, "serve"), "policies.yml", "scramble", code=3)


def test_without_policies_the_server_stays_on_this_machine(tmp_path: Path) -> None:
    root = served(tmp_path, policies=None)
    refused = hw(root, "serve", "--host", "0.0.0.0")
    assert_clean_error(refused, "without a policies.yml", code=2)
    assert mentions(hw(root, "serve", "--cache", "lots"), "'lots' is not a size")


@pytest.mark.slow
def test_serve_answers_over_http_and_stops_on_sigint(tmp_path: Path) -> None:
    root = served(tmp_path)
    ok(root, "run")
    made = hw(root, "keys", "create", "ci", "--role", "reader", "--format", "json")
    key = json.loads(made.output)["key"]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "-p", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("the server never answered")
        answer = httpx.get(f"{base}/v1/marts/total", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == [{"total": 30}]
        assert answer.headers["x-headwater-release"] == "1"
        assert httpx.get(f"{base}/v1/marts/total").status_code == 401
        document = httpx.get(f"{base}/openapi.json").json()
        names = [p["name"] for p in document["paths"]["/v1/marts/total"]["get"]["parameters"]]
        assert names[0] == "total" and "cursor" in names and "as_of" in names
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "Serving 1 model(s) of prod" in output
    assert "Traceback" not in output
