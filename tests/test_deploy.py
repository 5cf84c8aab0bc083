"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s) against the code they deploy.

Docker and a cluster are not available here, so the files are checked offline: every Kubernetes
object against the API schema of a current release (kubernetes-validate, strict: unknown fields
fail), the custom resources (KEDA, RabbitMQ Cluster Operator, CloudNativePG) by hand, and the
cross-references a typo would break only at deploy time: selectors, names, env variables, commands,
probes, images, and one Deployment per discovered service plugin.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tracker.plugins import discover

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# the newest Kubernetes release the pinned kubernetes-validate knows (1.37 with 1.37.0)
K8S_VERSION = latest_version()
IMAGE_NAME = "task-tracker"
CORE_DB_HOST_KEYS = ("TT_DATABASE_URL", "TT_AMQP_URI")


# --- loading ---------------------------------------------------------------------------------------
@functools.cache
def _docs(path: Path) -> list[dict]:
    """Parsed once per run; callers must not modify what they get (copy.deepcopy first)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _objects() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in _manifest_files() for doc in _docs(path)]


def _of_kind(kind: str) -> dict[str, dict]:
    found = {}
    for _, doc in _objects():
        if doc["kind"] == kind:
            assert doc["metadata"]["name"] not in found, f"two {kind} objects named {doc['metadata']['name']}"
            found[doc["metadata"]["name"]] = doc
    return found


def _k8s_name(service: str) -> str:
    return service.replace("_", "-")


def _containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _workloads() -> list[dict]:
    return list(_of_kind("Deployment").values()) + list(_of_kind("Job").values())


def _configmap() -> dict[str, str]:
    return _of_kind("ConfigMap")["tt-config"]["data"]


def _secret() -> dict[str, str]:
    return _of_kind("Secret")["tt-secrets"]["stringData"]


def _exchange() -> str:
    return _configmap().get("TT_RPC_EXCHANGE", "tt-rpc")


def _code_env_vars() -> set[str]:
    """Every TT_* variable the code reads (names in tracker/, gateway/ and services/)."""
    names = set()
    for package in ("tracker", "gateway", "services"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"\bTT_[A-Z0-9_]+\b", path.read_text()))
    return names


def _readme_documented_vars() -> set[str]:
    """Variables in README.md's configuration table: left out of the manifests, they keep the
    default documented there."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {name for line in table.splitlines() if line.startswith("| `TT_")
            for name in re.findall(r"`(TT_[A-Z0-9_]+)`", line.split("|")[1])}


# --- schema validation -------------------------------------------------------------------------------
CUSTOM = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
          ("rabbitmq.com/v1beta1", "RabbitmqCluster"), ("postgresql.cnpg.io/v1", "Cluster")}


def test_validates_against_a_current_kubernetes():
    assert tuple(int(x) for x in K8S_VERSION.split(".")[:2]) >= (1, 33), K8S_VERSION


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_is_valid_kubernetes(path):
    docs = _docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]
        if (doc["apiVersion"], doc["kind"]) in CUSTOM:
            continue  # no schema in kubernetes-validate: checked by the tests below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validation_is_strict():
    """A misspelt field must fail, or the validation above proves nothing."""
    deployment = copy.deepcopy(_of_kind("Deployment")["task-svc"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_custom_resources_by_hand():
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in _objects()}
    assert kinds >= CUSTOM, CUSTOM - kinds
    for _, doc in _objects():
        if doc["kind"] in ("ScaledObject", "TriggerAuthentication", "RabbitmqCluster", "Cluster"):
            assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"} and isinstance(doc["spec"], dict), doc

    secret = _secret()
    deployments = _of_kind("Deployment")
    auths = _of_kind("TriggerAuthentication")
    for auth in auths.values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == "tt-secrets" and ref["key"] in secret, ref
            assert ref["parameter"] in {"host", "username", "password"}, ref

    scaled = _of_kind("ScaledObject")
    for name, obj in scaled.items():
        spec = obj["spec"]
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment" and target["name"] == name in deployments
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], spec
        assert spec["triggers"], spec
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "rabbitmq", trigger
            assert meta["mode"] in {"QueueLength", "MessageRate"} and float(meta["value"]) > 0, meta
            assert meta.get("protocol", "auto") in {"amqp", "auto"}, meta
            assert trigger["authenticationRef"]["name"] in auths, trigger
            served = deployments[name]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
            assert meta["queueName"] == f"{_exchange()}.{served}", (name, meta["queueName"])

    rabbit = next(iter(_of_kind("RabbitmqCluster").values()))
    assert rabbit["spec"]["replicas"] >= 1 and rabbit["spec"]["resources"]["limits"], rabbit
    assert urlsplit(secret["TT_AMQP_URI"]).hostname == rabbit["metadata"]["name"]  # the operator's Service

    postgres = next(iter(_of_kind("Cluster").values()))
    spec = postgres["spec"]
    assert spec["instances"] >= 1 and spec["storage"]["size"] and spec["resources"]["limits"], spec
    db_url = urlsplit(secret["TT_DATABASE_URL"])
    assert db_url.hostname == postgres["metadata"]["name"] + "-rw"  # CloudNativePG's read-write Service
    assert spec["bootstrap"]["initdb"]["database"] == db_url.path.lstrip("/")
    assert spec["bootstrap"]["initdb"]["owner"] == db_url.username


def _amqp_uris() -> list[str]:
    """TT_AMQP_URI's broker URLs: kombu splits the setting on ';' (no spaces allowed around them)."""
    return _secret()["TT_AMQP_URI"].split(";")


def test_the_broker_is_a_three_node_cluster_the_processes_fail_over_between():
    rabbit = next(iter(_of_kind("RabbitmqCluster").values()))
    name, replicas = rabbit["metadata"]["name"], rabbit["spec"]["replicas"]
    assert replicas == 3, "quorum queues survive the loss of one node of three (a majority stays)"
    uris = _amqp_uris()
    assert len(uris) >= 2, "several broker addresses, for kombu's failover"
    parts = [urlsplit(uri) for uri in uris]
    assert all(p.scheme == "amqp" and p.port == 5672 for p in parts), uris
    # one user, password and virtual host: kombu reuses each URL's own, and they must agree
    assert len({(p.username, p.password, p.path) for p in parts}) == 1, uris
    # the operator's Service (any ready node) and each node by its stable name in the headless Service
    nodes = {f"{name}-server-{i}.{name}-nodes" for i in range(replicas)}
    hosts = [p.hostname for p in parts]
    assert len(hosts) == len(set(hosts)) and set(hosts) <= nodes | {name} and nodes <= set(hosts), hosts
    # KEDA parses the whole setting as one URL: its virtual host must be given separately
    vhost = unquote(parts[0].path[1:]) or "/"
    for scaled in _of_kind("ScaledObject").values():
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["metadata"].get("vhostName") == vhost, (scaled["metadata"]["name"], trigger)


def test_the_database_replicates_synchronously_and_the_url_wants_the_primary():
    """A commit is acknowledged only once a standby has it: losing the primary loses nothing the
    API answered (deploy/README.md "Losing a node")."""
    spec = next(iter(_of_kind("Cluster").values()))["spec"]
    sync = spec["postgresql"]["synchronous"]
    assert sync["method"] in {"any", "first"} and sync["number"] >= 1, sync
    # "required" (the default) never falls back to asynchronous replication while standbys are missing
    assert sync.get("dataDurability", "required") == "required", sync
    assert set(sync) <= {"method", "number", "dataDurability", "maxStandbyNamesFromCluster",
                         "standbyNamesPre", "standbyNamesPost"}, sync
    # the deprecated fields and the synchronous stanza are mutually exclusive in CloudNativePG
    assert not {"minSyncReplicas", "maxSyncReplicas"} & set(spec), spec
    # one standby more than the quorum, so that losing a standby does not stop the writes
    assert spec["instances"] >= sync["number"] + 2, spec
    query = parse_qs(urlsplit(_secret()["TT_DATABASE_URL"]).query)
    assert query.get("target_session_attrs") == ["read-write"], query


# --- one Deployment per service, real commands, probes, resources ------------------------------------
def test_every_discovered_service_has_a_deployment_and_a_scaler():
    """A service added to the code (an entry point) without manifests fails here."""
    deployments, scaled = _of_kind("Deployment"), _of_kind("ScaledObject")
    for service in discover():
        assert _k8s_name(service) in deployments, f"no Deployment for {service} in deploy/k8s/services/"
        assert _k8s_name(service) in scaled, f"no KEDA ScaledObject for {service} in deploy/k8s/keda/"
    assert set(deployments) == {_k8s_name(s) for s in discover()} | {"gateway"}
    assert "gateway" not in scaled  # the gateway has its HorizontalPodAutoscaler


def test_deployments_run_real_commands():
    for name, deployment in _of_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        command = container.get("command", []) + container.get("args", [])
        assert command[:2] == ["tracker", "serve"] and len(command) == 3, command
        assert command[2] in {*discover(), "gateway"}, command
        assert _k8s_name(command[2]) == name, (name, command)
    (job,) = _of_kind("Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["tracker", "db", "upgrade"]


def test_every_container_has_resources_and_every_deployment_probes():
    for workload in _workloads():
        for container in _containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (workload["metadata"]["name"], bound)
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    for name, deployment in _of_kind("Deployment").items():
        for container in _containers(deployment):
            assert "readinessProbe" in container and "livenessProbe" in container, name


def test_gateway_probes_http_and_services_probe_their_consumer():
    deployments = _of_kind("Deployment")
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert set(ports.values()) == {3010} and _configmap()["TT_BIND"] == "0.0.0.0:3010"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = gateway[probe]["httpGet"]
        assert get["path"] == path and ports.get(get["port"], get["port"]) == 3010, get
    for service in discover():
        container = deployments[_k8s_name(service)]["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["tracker", "probe", service], command
            assert container[probe]["timeoutSeconds"] >= 2  # a Python process start, not a syscall


def test_probe_command_lines_parse(tmp_path):
    """Run each form of probe command for real: with no service running it must say so (exit 1);
    an argument the CLI does not know would exit 2 instead."""
    forms = {}
    for deployment in _of_kind("Deployment").values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if "exec" in container.get(probe, {}):
                command = container[probe]["exec"]["command"]
                forms.setdefault(tuple(a for a in command if a not in discover()), tuple(command))
    commands = set(forms.values())
    assert len(commands) >= 2  # readiness and a longer liveness
    env = {"PATH": "/usr/bin:/bin", "TT_HEARTBEAT_FILE": str(tmp_path / "hb-{service}")}
    for command in sorted(commands):
        assert command[0] == "tracker"
        result = subprocess.run([sys.executable, "-m", "tracker", *command[1:]], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "no running process" in result.stderr, (command, result)


def test_gateway_drains_before_it_stops():
    """Rolling updates drop no request: a preStop pause while the endpoints update, then gunicorn's
    graceful stop, both inside the grace period."""
    spec = _of_kind("Deployment")["gateway"]["spec"]
    pod = spec["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]
    pause = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else int(pre_stop["exec"]["command"][-1])
    cli = (ROOT / "tracker" / "cli.py").read_text()
    graceful = int(re.search(r'"--graceful-timeout",\s*"(\d+)"', cli).group(1))
    assert pause >= 5 and pod["terminationGracePeriodSeconds"] > pause + graceful, (pause, graceful)
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for name, deployment in _of_kind("Deployment").items():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 20, name


# --- network policies --------------------------------------------------------------------------------
# The pods the policies are about: the tracker's (from its Deployments and Job) and the operators'
# (labels the RabbitMQ Cluster Operator and CloudNativePG put on the pods of the custom resources
# in operators/: app.kubernetes.io/name=<cluster>, component rabbitmq; cnpg.io/cluster=<cluster>).
def _tracker_pods() -> dict[str, dict[str, str]]:
    return {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in _workloads()}


def _broker_pod() -> dict[str, str]:
    name = next(iter(_of_kind("RabbitmqCluster")))
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq"}


def _database_pod() -> dict[str, str]:
    return {"cnpg.io/cluster": next(iter(_of_kind("Cluster"))), "cnpg.io/podRole": "instance",
            "cnpg.io/instanceRole": "primary"}


def _namespace_pods() -> dict[str, dict[str, str]]:
    return {**_tracker_pods(), "broker": _broker_pod(), "database": _database_pod()}


def _matches(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a pod's labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        held = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not held:
            return False
    return True


def _policies() -> dict[str, dict]:
    return _of_kind("NetworkPolicy")


def _policies_of(pod: dict[str, str], direction: str) -> list[dict]:
    """The policies that isolate ``pod`` in ``direction`` (Ingress/Egress)."""
    return [p for p in _policies().values()
            if _matches(p["spec"]["podSelector"], pod) and direction in p["spec"].get("policyTypes", ["Ingress"])]


def _rules(pod: dict[str, str], direction: str) -> list[dict]:
    key = "ingress" if direction == "Ingress" else "egress"
    return [rule for policy in _policies_of(pod, direction) for rule in policy["spec"].get(key, [])]


def _peer_pods(peer: dict) -> set[str]:
    """Which of this namespace's pods a peer (no namespaceSelector, no ipBlock) selects."""
    return {name for name, labels in _namespace_pods().items() if _matches(peer["podSelector"], labels)}


def _ports(rule: dict) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def _is_dns(peer: dict) -> bool:
    return (peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
            and peer.get("podSelector", {}).get("matchLabels") == {"k8s-app": "kube-dns"})


DNS_PORTS = {("UDP", 53), ("TCP", 53)}


def test_network_policies_deny_everything_by_default():
    core = {name for f in _docs(K8S / "kustomization.yaml")[0]["resources"] for d in _docs(K8S / f)
            if d["kind"] == "NetworkPolicy" for name in [d["metadata"]["name"]]}
    deny = [p for name, p in _policies().items() if name in core and p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1, "one default-deny policy (ingress and egress) for the whole namespace, in the core"
    for name, labels in _namespace_pods().items():  # so every pod is isolated both ways
        assert _policies_of(labels, "Ingress") and _policies_of(labels, "Egress"), name


def test_every_network_policy_selects_real_pods():
    pods = _namespace_pods()
    for name, policy in _policies().items():
        selector = policy["spec"]["podSelector"]
        assert selector == {} or any(_matches(selector, labels) for labels in pods.values()), name
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(key, []):
                for peer in rule.get(peers_key, []):
                    assert "ipBlock" not in peer, (name, peer)
                    if "namespaceSelector" not in peer:  # a pod of this namespace: it must exist
                        assert _peer_pods(peer), (name, peer)
    # the component lists in the policies name every Deployment: a new service must be added there
    for deployment in _of_kind("Deployment"):
        assert any(_peer_pods(peer) >= {deployment} for rule in _rules(_broker_pod(), "Ingress")
                   for peer in rule.get("from", []) if "namespaceSelector" not in peer), deployment


def test_only_the_gateway_is_reachable_and_services_accept_nothing():
    gateway = _of_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    gateway_ports = {("TCP", p["containerPort"]) for p in gateway["ports"]}
    for name, labels in _tracker_pods().items():
        rules = _rules(labels, "Ingress")
        if name == "gateway":
            # from anywhere (no "from"), but only on the HTTP port, which also serves /metrics
            assert rules and all("from" not in rule and _ports(rule) == gateway_ports for rule in rules), rules
        else:
            assert rules == [], f"{name} accepts connections: {rules}"
    # nothing else in the namespace takes connections from everywhere
    for name, labels in {"broker": _broker_pod(), "database": _database_pod()}.items():
        for rule in _rules(labels, "Ingress"):
            assert rule.get("from"), (name, rule)
            for peer in rule["from"]:
                assert "namespaceSelector" not in peer or peer.get("podSelector", {}).get("matchLabels"), (name, peer)


def test_services_and_gateway_reach_only_the_broker_the_database_and_dns():
    wanted = {"broker": {("TCP", 5672)}, "database": {("TCP", 5432)}}
    for name, labels in _tracker_pods().items():
        reached: dict[str, set] = {}
        for rule in _rules(labels, "Egress"):
            assert rule.get("to") and rule.get("ports"), (name, rule)  # never "anywhere" or "any port"
            for peer in rule["to"]:
                if _is_dns(peer):
                    assert _ports(rule) <= DNS_PORTS, (name, rule)
                    reached.setdefault("dns", set()).update(_ports(rule))
                    continue
                assert "namespaceSelector" not in peer, (name, peer)
                targets = _peer_pods(peer)
                assert len(targets) == 1 and targets <= set(wanted), (name, peer, targets)
                (target,) = targets
                assert _ports(rule) == wanted[target], (name, rule)
                reached.setdefault(target, set()).update(_ports(rule))
        expected = {"database", "dns"} if name == "tt-migrate" else {"broker", "database", "dns"}
        assert set(reached) == expected, (name, reached)
        assert reached["dns"] == DNS_PORTS, name


def test_broker_and_database_accept_only_this_systems_pods():
    tracker, apps = _tracker_pods(), set(_of_kind("Deployment"))
    for name, labels, port, clients in (("broker", _broker_pod(), 5672, apps),
                                        ("database", _database_pod(), 5432, apps | {"tt-migrate"})):
        allowed_clients = set()
        for rule in _rules(labels, "Ingress"):
            for peer in rule["from"]:
                if "namespaceSelector" in peer:  # an operator (or KEDA) in its own namespace
                    continue
                targets = _peer_pods(peer)
                assert targets <= set(tracker) or targets == {name}, (name, peer, targets)
                if targets <= set(tracker):
                    assert _ports(rule) == {("TCP", port)}, (name, rule)
                    allowed_clients |= targets
        assert allowed_clients == clients, (name, allowed_clients)


# --- cross-references ------------------------------------------------------------------------------
def test_env_references_exist_and_every_variable_is_set_or_documented():
    configmap, secret = _configmap(), _secret()
    assert set(configmap).isdisjoint(secret)
    assert set(CORE_DB_HOST_KEYS) <= set(secret), "database and broker URLs carry passwords: Secret"
    for value in secret.values():
        assert "CHANGE-ME" in value, "deploy/k8s/secret.yaml holds placeholders only, never a real secret"
    code_vars = _code_env_vars()
    assert {"TT_DATABASE_URL", "TT_AMQP_URI", "TT_BIND", "TT_HEARTBEAT_FILE"} <= code_vars  # the scan works
    assert set(configmap) | set(secret) <= code_vars, "a ConfigMap/Secret key no code reads (misspelt?)"

    anywhere = set(configmap) | set(secret)
    for workload in _workloads():
        name = workload["metadata"]["name"]
        for container in _containers(workload):
            provided = set()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] == "tt-config", name
                    provided |= set(configmap)
                if "secretRef" in source:
                    assert source["secretRef"]["name"] == "tt-secrets", name
                    provided |= set(secret)
            for var in container.get("env", []):
                ref = var.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in configmap, (name, var)
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in secret, (name, var)
                provided.add(var["name"])
            assert set(CORE_DB_HOST_KEYS) <= provided, name
            anywhere |= provided
    # Variables differ per part (TT_METRICS_DIR is the gateway's): each is set for some container or
    # keeps the default README.md documents.
    missing = code_vars - anywhere - _readme_documented_vars()
    assert not missing, f"read by the code, neither set in deploy/k8s nor documented in README.md: {missing}"


def test_selectors_match_the_pods():
    deployments = _of_kind("Deployment")
    pod_labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selected(selector: dict) -> list[str]:
        return [name for name, labels in pod_labels.items() if selector.items() <= labels.items()]

    for name, deployment in deployments.items():
        assert selected(deployment["spec"]["selector"]["matchLabels"]) == [name], name
    for name, service in _of_kind("Service").items():
        assert selected(service["spec"]["selector"]) == [name], name
        target_ports = {p["name"] for p in deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert all(p["targetPort"] in target_ports | {3010} for p in service["spec"]["ports"])
    pdbs = _of_kind("PodDisruptionBudget")
    assert set(pdbs) == set(deployments), "every Deployment has a PodDisruptionBudget"
    for name, pdb in pdbs.items():
        assert selected(pdb["spec"]["selector"]["matchLabels"]) == [name], name
    hpas = _of_kind("HorizontalPodAutoscaler")
    assert set(hpas) == {"gateway"}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("kustomization", _kustomizations(), ids=lambda p: str(p.parent.relative_to(DEPLOY)))
def test_kustomization_lists_every_file(kustomization):
    base = kustomization.parent
    listed = _docs(kustomization)[0]["resources"]
    assert len(listed) == len(set(listed))
    others = {k.parent for k in _kustomizations() if k != kustomization}
    present = {str(p.relative_to(base)) for p in base.rglob("*.yaml")
               if p.name != "kustomization.yaml" and not any(o in p.parents and base in o.parents for o in others)}
    assert set(listed) == present, f"listed but missing: {set(listed) - present}; not listed: {present - set(listed)}"
    assert _docs(kustomization)[0]["namespace"] == "task-tracker"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("kustomization", _kustomizations(), ids=lambda p: str(p.parent.relative_to(DEPLOY)))
def test_kustomization_builds(kustomization):
    result = subprocess.run(["kubectl", "kustomize", str(kustomization.parent)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    expected = sum(len(_docs(kustomization.parent / f)) for f in _docs(kustomization)[0]["resources"])
    assert len(rendered) == expected
    assert all(d["metadata"].get("namespace") == "task-tracker" for d in rendered if d["kind"] != "Namespace")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_one_image_everywhere():
    images = {c["image"] for w in _workloads() for c in _containers(w)}
    images |= {s["image"] for s in _compose()["services"].values() if s["image"].startswith(IMAGE_NAME)}
    assert len(images) == 1, images
    (image,) = images
    assert image.split(":")[0] == IMAGE_NAME and ":" in image, "a pinned tag, never an implicit latest"


# --- docker compose ---------------------------------------------------------------------------------
def test_compose_runs_every_part_in_order():
    services = _compose()["services"]
    names = {_k8s_name(s) for s in discover()}
    assert {"rabbitmq", "postgres", "migrate", "gateway"} | names == set(services)

    assert services["migrate"]["command"] == ["db", "upgrade"] and "build" in services["migrate"]
    assert services["migrate"]["depends_on"] == {"rabbitmq": {"condition": "service_healthy"},
                                                 "postgres": {"condition": "service_healthy"}}
    for name, service in services.items():
        if name != "migrate":
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services
            wanted = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert how["condition"] == wanted, (name, dependency)
    for service_name in discover():
        service = services[_k8s_name(service_name)]
        assert service["command"] == ["serve", service_name]
        assert service["healthcheck"]["test"] == ["CMD", "tracker", "probe", service_name]
        assert set(service["depends_on"]) == {"rabbitmq", "postgres", "migrate"}
    gateway = services["gateway"]
    assert gateway["command"] == ["serve", "gateway"] and gateway["healthcheck"]["test"][1:3] == ["tracker", "probe"]
    assert set(gateway["depends_on"]) == {"migrate"} | names  # up means every service consumes
    assert any(str(p).endswith("3010:3010") for p in gateway["ports"])

    for name in ("migrate", "gateway", *names):
        env = services[name]["environment"]
        assert urlsplit(env["TT_DATABASE_URL"]).hostname == "postgres"
        assert urlsplit(env["TT_AMQP_URI"]).hostname == "rabbitmq"
        assert env["TT_BIND"] == "0.0.0.0:3010"
    broker, database = services["rabbitmq"]["environment"], services["postgres"]["environment"]
    amqp = urlsplit(services["gateway"]["environment"]["TT_AMQP_URI"])
    assert (amqp.username, amqp.password) == (broker["RABBITMQ_DEFAULT_USER"], broker["RABBITMQ_DEFAULT_PASS"])
    db = urlsplit(services["gateway"]["environment"]["TT_DATABASE_URL"])
    assert db.password == database["POSTGRES_PASSWORD"] and db.path == "/" + database["POSTGRES_DB"]


# --- the image ----------------------------------------------------------------------------------------
def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile():
    instructions = _dockerfile()
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    final = instructions[stages[-1]:]
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    base = final[0][1].split()[0]
    base = args.get(base.strip("${}"), base)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base

    users = [a for op, a in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must run as a non-root user"
    assert users[-1].split(":")[0].isdigit(), "numeric USER, so Kubernetes can check runAsNonRoot"
    (healthcheck,) = [a for op, a in final if op == "HEALTHCHECK"]
    assert "CMD" in healthcheck and '"tracker", "probe"' in healthcheck
    assert [a for op, a in final if op == "ENTRYPOINT"] == ['["tracker"]']
    assert any(op == "EXPOSE" and "3010" in a for op, a in final)
    assert any(op == "ENV" and "TT_BIND=0.0.0.0:3010" in a for op, a in final)

    runs = [shlex.split(a.replace(";", " ")) for op, a in instructions if op == "RUN"]
    assert any(r[r.index("pip"):r.index("pip") + 5] == ["pip", "install", "-c", "requirements.lock", "."]
               for r in runs if "pip" in r), "the project is installed with the lock as constraints"
    copies = " ".join(a for op, a in instructions if op == "COPY")
    assert "requirements.lock" in copies


def test_image_carries_every_package_and_the_migrations():
    """Everything the wheel packs must reach the build context, and the Alembic scripts, which the
    wheel does not pack, must be copied where tracker/migrate.py looks for them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted({p.parent.name for p in ROOT.glob("*/__init__.py")
                       if any(re.fullmatch(i.replace("*", ".*"), p.parent.name) for i in includes)})
    assert {"tracker", "gateway", "services"} <= set(packages)
    copies = [a.split() for op, a in _dockerfile() if op == "COPY" and not a.startswith("--from")]
    copied = {Path(c[0]).name for c in copies}
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for package in [*packages, "migrations"]:
        assert package in copied, f"{package}/ not copied into the image"
        assert "*" not in ignore or f"!{package}/" in ignore, f"{package}/ excluded by .dockerignore"
    assert "*" in ignore or {".venv", ".git"} <= set(ignore)
    assert not any(re.fullmatch(i.replace("*", ".*"), "migrations") for i in includes)
    runs = " ".join(a for op, a in _dockerfile() if op == "RUN")
    assert "cp -r migrations" in runs and "purelib" in runs
    migrate = (ROOT / "tracker" / "migrate.py").read_text()
    assert 'Path(__file__).resolve().parent.parent / "migrations"' in migrate, "see the Dockerfile's copy"
