"""The Kubernetes manifests in deploy/kubernetes, checked without a cluster.

Every document is validated with kubernetes-validate against the OpenAPI
schemas of the newest Kubernetes release it ships, and of the oldest one
docs/kubernetes.md supports, in strict mode (a misspelt or unknown field is
an error, as `kubectl apply --validate=strict` would make it). Then what a
user would trip over: a kustomization that forgets a file, a `MODELOPS_…`
variable `modelops serve` does not know, a ConfigMap or Secret key the pods
wait for in vain, probes on the wrong path or port, selectors that miss the
pods, a grace period shorter than the server's drain.
"""

import copy
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
# Not a Kubernetes object, and not applied: kustomize's own file.
KUSTOMIZATION = "kustomization.yaml"
# A template the user copies; validated, but never listed in the kustomization.
SECRET_TEMPLATE = "secret.example.yaml"
# The newest schemas the pinned package ships, and the oldest release the
# docs support (the preStop sleep action is on by default from 1.30).
LATEST = kubernetes_validate.latest_version()
OLDEST_SUPPORTED = "1.30.0"
STABLE_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "batch/v1"}


def manifest_files():
    return sorted(p.name for p in DEPLOY.glob("*.y*ml") if p.name != KUSTOMIZATION)


def documents(name):
    with open(DEPLOY / name) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(kind, name):
    found = [d for f in manifest_files() for d in documents(f) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def deployment():
    return one("Deployment", "modelops")


def server_container():
    (container,) = [c for c in deployment()["spec"]["template"]["spec"]["containers"] if c["name"] == "modelops"]
    return container


def migrate_container():
    (container,) = one("Job", "modelops-migrate")["spec"]["template"]["spec"]["containers"]
    return container


def validate(doc, version=LATEST):
    return kubernetes_validate.validate(doc, version, strict=True)


def assert_valid(doc, version, source):
    problem = None
    try:
        validate(doc, version)
    except kubernetes_validate.ValidationError as e:
        problem = f"{'.'.join(map(str, e.path))}: {e.message}"
    if problem:  # the path and the problem, without pages of schema
        pytest.fail(f"{source}: {doc['kind']} {doc['metadata']['name']} is not valid for Kubernetes {version}: {problem}", pytrace=False)


def test_the_manifests_are_there():
    assert LATEST.startswith("1.37"), f"kubernetes-validate ships schemas up to {LATEST}"
    names = manifest_files()
    for expected in ["deployment.yaml", "service.yaml", "configmap.yaml", SECRET_TEMPLATE, "pdb.yaml", "serviceaccount.yaml", "migrate-job.yaml"]:
        assert expected in names


@pytest.mark.parametrize("version", [LATEST, OLDEST_SUPPORTED])
@pytest.mark.parametrize("name", manifest_files())
def test_every_document_is_valid_in_strict_mode(name, version):
    docs = documents(name)
    assert docs, f"{name} holds no document"
    for doc in docs:
        assert doc["apiVersion"] in STABLE_API_VERSIONS, f"{name}: {doc['kind']} uses {doc['apiVersion']}, not a stable API"
        assert_valid(doc, version, name)


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda d: d["spec"].update(replicas="three"), id="replicas-not-a-number"),
        pytest.param(lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolice="Always"), id="unknown-container-field"),
        pytest.param(lambda d: d["spec"].update(replica=3), id="unknown-spec-field"),
        pytest.param(lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="5000"), id="port-as-string"),
        pytest.param(lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), id="container-without-name"),
    ],
)
def test_the_validator_refuses_a_broken_deployment(break_it):
    broken = copy.deepcopy(deployment())
    validate(broken)  # the real one passes…
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):  # …and the broken copy does not
        validate(broken)


def test_the_kustomization_lists_exactly_the_resource_files():
    kustomization = yaml.safe_load((DEPLOY / KUSTOMIZATION).read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    for name in listed:
        assert (DEPLOY / name).is_file(), f"{KUSTOMIZATION} lists {name}, which does not exist"
    assert SECRET_TEMPLATE not in listed, "the Secret template must never be applied over the real Secret"
    assert sorted(listed) == sorted(set(manifest_files()) - {SECRET_TEMPLATE})


def test_the_kustomization_labels_everything():
    kustomization = yaml.safe_load((DEPLOY / KUSTOMIZATION).read_text())
    labels = {}
    for entry in kustomization.get("labels", []):
        labels.update(entry["pairs"])
    labels.update(kustomization.get("commonLabels", {}))
    assert labels.get("app.kubernetes.io/name") == "modelops"


def env_names_in_help(help_text):
    """The variables a subcommand reads: clap's `[env: NAME=…]`, plus the
    ones its help names in prose (MODELOPS_AUDIT_SIGNING_KEY is read
    directly, beside --audit-key-file)."""
    flagged = set(re.findall(r"\[env: (MODELOPS_[A-Z0-9_]+)=", help_text))
    assert "MODELOPS_DATABASE_URL" in flagged, help_text
    return flagged | set(re.findall(r"\bMODELOPS_[A-Z0-9_]*[A-Z0-9]\b", help_text))


def configmap_data():
    return one("ConfigMap", "modelops-config")["data"]


def test_every_modelops_variable_set_is_one_the_server_knows(modelops):
    known = env_names_in_help(modelops("serve", "--help").stdout)
    container = server_container()
    explicit = [e["name"] for e in container["env"]]
    assert len(explicit) == len(set(explicit)), f"set twice: {explicit}"
    from_configmap = []
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "modelops-config"
        from_configmap += list(configmap_data())
    names = [n for n in explicit + from_configmap if n.startswith("MODELOPS_")]
    unknown = sorted(set(names) - known)
    assert not unknown, f"`modelops serve` does not know {unknown}"
    for needed in ["MODELOPS_ADDR", "MODELOPS_DATA_DIR", "MODELOPS_DATABASE_URL", "MODELOPS_ARTIFACTS_URL", "MODELOPS_AUDIT_SIGNING_KEY", "MODELOPS_PUBLIC_URL"]:
        assert needed in names


def test_every_modelops_variable_of_the_migrate_job_is_one_migrate_knows(modelops):
    assert migrate_container()["command"] == ["modelops", "migrate"]
    known = env_names_in_help(modelops("migrate", "--help").stdout)
    names = {e["name"] for e in migrate_container()["env"] if e["name"].startswith("MODELOPS_")}
    assert names - known == set()
    assert "MODELOPS_DATABASE_URL" in names


def key_refs(container, ref):
    return [(e["name"], e["valueFrom"][ref]) for e in container.get("env", []) if ref in e.get("valueFrom", {})]


@pytest.mark.parametrize("container", [server_container, migrate_container], ids=["server", "migrate"])
def test_every_referenced_key_exists(container):
    container = container()
    secret = one("Secret", "modelops")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for name, ref in key_refs(container, "secretKeyRef"):
        assert ref["name"] == "modelops", name
        assert ref["key"] in secret_keys, f"{name}: key {ref['key']} is not in {SECRET_TEMPLATE}"
    configmap_text = (DEPLOY / "configmap.yaml").read_text()
    for name, ref in key_refs(container, "configMapKeyRef"):
        assert ref["name"] == "modelops-config", name
        if ref.get("optional"):
            # Optional ones are documented there, commented out.
            assert ref["key"] in configmap_text, f"{name}: {ref['key']} is not described in configmap.yaml"
        else:
            assert ref["key"] in configmap_data(), f"{name}: key {ref['key']} is not in configmap.yaml"


def test_the_server_uses_the_secrets_it_needs():
    refs = dict(key_refs(server_container(), "secretKeyRef"))
    assert refs["MODELOPS_DATABASE_URL"]["key"] == "database-url"
    assert refs["AWS_ACCESS_KEY_ID"]["key"] == "aws-access-key-id"
    assert refs["AWS_SECRET_ACCESS_KEY"]["key"] == "aws-secret-access-key"
    assert refs["MODELOPS_AUDIT_SIGNING_KEY"]["key"] == "audit-signing-key"
    # Nothing secret sits in the ConfigMap.
    assert not [k for k in configmap_data() if re.search(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|SIGNING_KEY", k)]


def test_the_probes_ask_the_health_routes_on_the_named_port():
    container = server_container()
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": 5000, "protocol": "TCP"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_ADDR"] == "0.0.0.0:5000"
    expected = {"livenessProbe": "/healthz", "startupProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["readinessProbe"]["failureThreshold"] == 3


def test_the_service_and_budget_select_the_server_pods_only():
    pod_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    job_labels = one("Job", "modelops-migrate")["spec"]["template"]["metadata"]["labels"]
    service = one("Service", "modelops")
    budget = one("PodDisruptionBudget", "modelops")
    for selector in [service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"], deployment()["spec"]["selector"]["matchLabels"]]:
        assert selector.items() <= pod_labels.items()
        assert not selector.items() <= job_labels.items(), "the migrate Job's pod would be selected too"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert budget["spec"]["minAvailable"] == 2 < deployment()["spec"]["replicas"]


def test_the_grace_period_covers_the_drain():
    spec = deployment()["spec"]["template"]["spec"]
    drain = int(configmap_data().get("MODELOPS_SHUTDOWN_GRACE", 30))  # the server's default is 30 s
    pre_stop = server_container().get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    # After the drain the server flushes queued prediction records and closes
    # its pools (up to 5 s each): leave it that.
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + drain + 5


def test_the_root_file_system_is_read_only_and_the_writable_paths_are_volumes():
    for container, spec in [
        (server_container(), deployment()["spec"]["template"]["spec"]),
        (migrate_container(), one("Job", "modelops-migrate")["spec"]["template"]["spec"]),
    ]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
        data_dir = next(e["value"] for e in container["env"] if e["name"] == "MODELOPS_DATA_DIR")
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert data_dir in mounts and "emptyDir" in volumes[mounts[data_dir]]
        assert spec["automountServiceAccountToken"] is False
    # Monitors write temporary files; the server needs a writable /tmp.
    assert "/tmp" in {m["mountPath"] for m in server_container()["volumeMounts"]}
