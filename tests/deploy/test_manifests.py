"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas, and their wiring holds.

- Every document of ``deploy/*.yaml`` (but the Helm values file) is validated offline with
  ``kubernetes-validate`` (bundled JSON schemas, strict: unknown fields fail) for an older and a
  recent Kubernetes release.
- The Helm values file is not a manifest (the chart renders it; ``helm`` is not installed here):
  only the keys this project relies on are checked, with their types, and every Locust flag in
  ``master.args``/``worker.args`` must be one that ``locust -f locustfiles/llm_chat.py --help``
  lists (llmsoak's own flags included). What the chart makes of them is not checked.
- Every ``llmsoak`` command line in a container parses with llmsoak's own argument parser.
- The sampler pull: the sidecar listens off loopback with its token from a Secret, the Job's
  ``llmsoak run --sampler-remote`` names a Service that selects that pod and port, with the same
  Secret, and no secret is a literal anywhere.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from support.processes import REPO

kubernetes_validate = pytest.importorskip("kubernetes_validate.utils",
                                          reason="pip install -r requirements-dev.txt (kubernetes-validate)")

DEPLOY = REPO / "deploy"
VALUES = DEPLOY / "locust-values.yaml"
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p != VALUES)
K8S_VERSIONS = ("1.31", "1.36")
"""The oldest release the manifests are for (Job podFailurePolicy is GA from 1.31) and a recent one."""
SECRET_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def all_documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    return list(pod.get("containers") or []) + list(pod.get("initContainers") or [])


def pod_labels(doc: dict) -> dict:
    return ((doc.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}


def test_the_manifests_are_there():
    assert {p.name for p in MANIFESTS} >= {"target-with-sampler.yaml", "soak-run.yaml"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path, version):
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_the_validator_rejects_a_misspelt_field():
    # a control: the strict schemas are really applied (a typo must not pass silently)
    doc = next(d for d in all_documents() if d["kind"] == "Deployment")
    bad = {**doc, "spec": {**doc["spec"], "replicass": 1}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replicass"):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def llmsoak_commands(container: dict) -> list[list[str]]:
    """The llmsoak command lines a container runs: its command, or the ``exec llmsoak ...`` of a
    ``sh -c`` script."""
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if command[:1] == ["llmsoak"]:
        return [command]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(m) for m in re.findall(r"exec (llmsoak [^;]+)", command[2])]
    return []


def test_every_llmsoak_command_line_parses():
    from llmsoak.cli import build_parser

    seen = []
    for doc in all_documents():
        for container in containers(doc):
            for command in llmsoak_commands(container):
                args = build_parser().parse_args(command[1:])  # exits 2 on an unknown flag
                seen.append(args.command)
    assert {"stub", "sample", "run"} <= set(seen)


def test_no_secret_is_a_literal_value():
    for doc in all_documents():
        assert doc["kind"] != "Secret", "Secrets are made with kubectl (deploy/README.md), not committed"
        for container in containers(doc):
            for env in container.get("env") or []:
                if SECRET_NAME_RE.search(env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env


def test_the_sampler_pull_is_wired_from_the_sidecar_to_llmsoak_run():
    docs = all_documents()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    sidecar = next(c for c in containers(deployment) if c["name"] == "sampler")
    command = sidecar["command"]
    listen = command[command.index("--listen") + 1]
    assert not listen.startswith("127.") and listen.endswith(":9464")
    token = next(e for e in sidecar["env"] if e["name"] == "LLMSOAK_SAMPLER_TOKEN")["valueFrom"]["secretKeyRef"]
    port_name = next(p["name"] for p in sidecar["ports"] if p["containerPort"] == 9464)

    job = next(d for d in docs if d["kind"] == "Job")
    runner = containers(job)[0]
    new_run = next(c for c in llmsoak_commands(runner) if "--sampler-remote" in c)
    remote = urlsplit(new_run[new_run.index("--sampler-remote") + 1])
    job_token = next(e for e in runner["env"] if e["name"] == "LLMSOAK_SAMPLER_TOKEN")["valueFrom"]["secretKeyRef"]
    assert job_token == token  # the same Secret and key on both sides
    assert any("--resume" in c for c in llmsoak_commands(runner))  # a replaced pod resumes the run

    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == remote.hostname)
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
    service_port = next(p for p in service["spec"]["ports"] if p["port"] == remote.port)
    assert service_port["targetPort"] == port_name

    policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels(deployment).items()
    sampler_rule = next(r for r in policy["spec"]["ingress"] if {"port": 9464, "protocol": "TCP"} in r["ports"])
    allowed = sampler_rule["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= pod_labels(job).items()

    # the volumes the Job mounts exist (a ConfigMap made with kubectl, a PVC defined here)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    pod = job["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    readme = (DEPLOY / "README.md").read_text()
    for volume in pod["volumes"]:
        if "configMap" in volume:
            assert f"create configmap {volume['configMap']['name']}" in readme
    assert f"create secret generic {token['name']}" in readme


def test_locust_values_keys_we_rely_on():
    values = yaml.safe_load(VALUES.read_text())
    assert isinstance(values["image"]["repository"], str) and isinstance(values["image"]["tag"], str)
    loadtest = values["loadtest"]
    for key in ("name", "locust_locustfile", "locust_locustfile_configmap", "locust_lib_configmap", "locust_host"):
        assert isinstance(loadtest[key], str), key
    assert isinstance(loadtest["headless"], bool)
    assert all(isinstance(v, list) and all(isinstance(x, str) for x in v)
               for v in loadtest["environment_external_secret"].values())
    mounts = values["extraConfigMaps"]
    assert all(isinstance(k, str) and str(v).startswith("/") for k, v in mounts.items())
    assert isinstance(values["worker"]["replicas"], int)
    master, worker = values["master"]["args"], values["worker"]["args"]
    assert "--master" in master and "--worker" in worker
    for args in (master, worker):
        assert all(isinstance(a, str) for a in args)
        profile = next(a for a in args if a.startswith("--profile="))
        assert any(profile.split("=", 1)[1].startswith(m + "/") for m in mounts.values())
    master_host = next(a for a in worker if a.startswith("--master-host=")).split("=", 1)[1]
    # the chart's master Service is <release>-locust; the README installs release "<loadtest.name>"
    assert master_host == f"{loadtest['name']}-locust"
    assert f"helm install {loadtest['name']} " in (DEPLOY / "README.md").read_text()


LOCUST_OPTIONS = """
import json, runpy, sys
sys.argv = ["locust", "-f", "locustfiles/llm_chat.py", "--profile", "profiles/smoke.yaml"]
runpy.run_path("locustfiles/llm_chat.py")  # registers llmsoak's init_command_line_parser listener
from locust.argument_parser import get_parser
print(json.dumps(sorted(o for a in get_parser()._actions for o in a.option_strings)))
"""


def test_every_locust_flag_in_the_values_is_known_to_locust_with_llmsoaks_locustfile():
    values = yaml.safe_load(VALUES.read_text())
    # Locust's own parser with llmsoak's locustfile loaded (in a child: Locust monkey-patches gevent)
    proc = subprocess.run([sys.executable, "-c", LOCUST_OPTIONS], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    known = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "--llm-timeseries" in known and "--master-host" in known
    for arg in values["master"]["args"] + values["worker"]["args"]:
        flag = arg.split("=", 1)[0]
        assert flag in known, flag


def test_the_image_installs_llmsoak_on_the_pinned_locust():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pinned = re.search(r"^locust==([\d.]+)", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and f"FROM locustio/locust:{pinned.group(1)}" in dockerfile
    assert re.search(r"pip install .*-r /opt/llmsoak/requirements.txt", dockerfile)
    assert re.search(r"pip install .*/opt/llmsoak\s*$", dockerfile, re.M)
    tags = {c["image"] for d in all_documents() for c in containers(d)}
    values = yaml.safe_load(VALUES.read_text())
    tags.add(f"{values['image']['repository']}:{values['image']['tag']}")
    built = re.search(r"docker build .* -t (\S+) \.", dockerfile).group(1)
    assert tags == {built}
