#!/usr/bin/env python3
"""Checks docker-compose.yml, the Dockerfile and .dockerignore without a
Docker engine (CI has none): the compose file parses, uses no key newer
Compose versions need (dockerfile_inline), has no default secret, does not
publish PostgreSQL, has healthchecks for both services and starts the API
once the database is healthy; the Dockerfile's stages exist; target/ and
.git stay out of the build context. When a compose client is installed
(`docker compose` or `docker-compose`), its own `config` validation runs too,
with and without the secrets."""
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def fail(msg):
    print(f"compose_check: {msg}")
    sys.exit(1)


def main():
    text = open(os.path.join(ROOT, "docker-compose.yml")).read()
    compose = yaml.safe_load(text)
    services = compose["services"]
    pg, api = services["postgres"], services["api"]
    if "dockerfile_inline" in api["build"]:
        fail("dockerfile_inline needs Compose >= 2.17")
    if "ports" in pg:
        fail("PostgreSQL must not be published on the host")
    for name, svc in services.items():
        if "healthcheck" not in svc:
            fail(f"service {name} has no healthcheck")
    if "/readyz" not in " ".join(api["healthcheck"]["test"]):
        fail("the API's healthcheck must use /readyz")
    if api["depends_on"]["postgres"]["condition"] != "service_healthy":
        fail("the API must wait for a healthy database")
    for svc, key in [(api, "SALESOPS_JWT_SECRET"), (pg, "POSTGRES_PASSWORD")]:
        value = svc["environment"][key]
        if not value.startswith("${") or ":?" not in value:
            fail(f"{key} must be required (${{{key}:?...}}), never defaulted: {value}")
    target = api["build"]["target"]
    dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
    stages = {
        line.split()[-1]
        for line in dockerfile.splitlines()
        if line.startswith("FROM ") and " AS " in line
    }
    for stage in ["build", "prebuilt", "runtime"]:
        if stage not in stages:
            fail(f"the Dockerfile has no stage {stage}")
    if "runtime" not in target:
        fail(f"the API builds the runtime stage by default, not {target}")
    ignore = open(os.path.join(ROOT, ".dockerignore")).read().split()
    for entry in ["target/", ".git/"]:
        if entry not in ignore:
            fail(f".dockerignore lacks {entry}")

    clients = []
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        clients.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        clients.append(["docker-compose"])
    env = {k: v for k, v in os.environ.items() if k not in ("SALESOPS_JWT_SECRET", "POSTGRES_PASSWORD")}
    # An empty env file: a developer's .env must not hide a missing secret.
    empty = os.path.join(ROOT, "target", "compose_check.env")
    os.makedirs(os.path.dirname(empty), exist_ok=True)
    open(empty, "w").close()
    for client in clients:
        name = " ".join(client)
        cmd = client + [
            "--env-file", empty,
            "-f", os.path.join(ROOT, "docker-compose.yml"),
            "--project-directory", ROOT,
            "config", "-q",
        ]
        bare = subprocess.run(cmd, capture_output=True, text=True, env=env)
        said = bare.stdout + bare.stderr
        if bare.returncode == 0 or ("SALESOPS_JWT_SECRET" not in said and "POSTGRES_PASSWORD" not in said):
            fail(f"{name} config accepted the file without secrets: {said}")
        ok_env = dict(env, SALESOPS_JWT_SECRET="0" * 64, POSTGRES_PASSWORD="pw")
        ok = subprocess.run(cmd, capture_output=True, text=True, env=ok_env)
        if ok.returncode != 0:
            fail(f"{name} config refused the file: {ok.stdout}{ok.stderr}")
        print(f"compose_check: {name} config: valid; refused without secrets")
    if not clients:
        print("compose_check: no compose client installed; checked the YAML only")
    print("compose_check: ok")


if __name__ == "__main__":
    main()
