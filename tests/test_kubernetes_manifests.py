"""deploy/kubernetes/: every document validates offline, yamllint passes, and the pieces fit together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sesame_voice.engine.metrics import ServerMetrics
from support import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
FILES = sorted(KUBERNETES.rglob("*.yaml"))
OVERLAYS = ("cpu", "gpu")


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


RESOURCES = [
    (path, index, doc)
    for path in FILES
    for index, doc in enumerate(_documents(path))
    if doc.get("kind") != "Kustomization"
]


def test_there_is_something_to_check():
    kinds = {doc["kind"] for _, _, doc in RESOURCES}
    assert {
        "Deployment",
        "Service",
        "StatefulSet",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
    } <= kinds


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
@pytest.mark.parametrize(
    ("path", "index", "document"), RESOURCES, ids=[f"{p.relative_to(KUBERNETES)}#{i}" for p, i, _ in RESOURCES]
)
def test_document_validates_offline(path, index, document, version):
    """Strict: an unknown or misspelt field fails, as does a missing required one."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        pytest.fail(f"{path.relative_to(REPO)} document {index}: {err.message} at {list(err.path)}")


def test_yamllint_passes():
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(REPO / ".yamllint.yaml"), str(KUBERNETES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _kustomize(folder: Path) -> list[dict]:
    """The resources a kustomization lists, recursively (files and folders), without applying patches."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    found = []
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        assert target.exists(), f"{folder / 'kustomization.yaml'} lists {entry}, which does not exist"
        found.extend(_kustomize(target) if target.is_dir() else _documents(target))
    return found


def _one(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_pieces_fit_together(overlay):
    resources = _kustomize(KUBERNETES / "overlays" / overlay)
    deployment = _one(resources, "Deployment", "sesame-voice")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _one(resources, "Service", "sesame-voice")
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = _one(resources, "PodDisruptionBudget", "sesame-voice")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(resources, "HorizontalPodAutoscaler", "sesame-voice")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sesame-voice"
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]  # a drain can always proceed

    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports
    settings = _one(resources, "ConfigMap", "sesame-voice-config")["data"]
    assert ports["http"] == int(settings["PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # Running requests get SHUTDOWN_GRACE after SIGTERM, which comes after the preStop pause.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["spec"]["terminationGracePeriodSeconds"] > float(settings["SHUTDOWN_GRACE"]) + pause
    env = {item["name"]: item for item in container["env"]}
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "sesame-voice"
    assert "value" not in env["API_KEY"]

    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["voices"] == settings["VOICES_DIR"] and settings["HF_HOME"] == mounts["hf-cache"]
    for name in ("voices", "hf-cache"):
        claim = _one(resources, "PersistentVolumeClaim", volumes[name]["persistentVolumeClaim"]["claimName"])
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # shared by every replica

    limits = container["resources"]["limits"]
    if overlay == "gpu":
        assert limits["nvidia.com/gpu"] == "1" and env["CSM_BACKEND"]["value"] == "torch"
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
        assert pod["spec"]["nodeSelector"]
    else:
        assert "nvidia.com/gpu" not in limits and "tolerations" not in pod["spec"]
    assert limits["memory"]


def test_autoscaler_metric_is_one_the_server_exposes_and_the_adapter_serves():
    hpa = _one(_kustomize(KUBERNETES / "base"), "HorizontalPodAutoscaler", "sesame-voice")
    (metric,) = hpa["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    exposed = {family.name for family in ServerMetrics().registry.collect()}
    assert name in exposed
    adapter = _documents(KUBERNETES / "monitoring" / "prometheus-adapter.yaml")[0]
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    assert any(rule["name"]["as"] == name and name in rule["seriesQuery"] for rule in rules)
