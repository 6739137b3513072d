#!/usr/bin/env bash
# kube.deploy_kustomize: every overlay in deploy/overlays renders with
# `kubectl kustomize` (kubectl v1.36, built by testenv) and is accepted by the
# real kube-apiserver (server-side apply, dry run, strict field validation),
# both as it is and included from another kustomization that sets its own
# namespace, as a user's would. Checks what the components promise: the
# sidecar's `leasehold run ... --` as the command with the worker's args kept,
# the ServiceAccount, the downward-API variables, the RoleBinding's subject in
# the right namespace.
# usage: kustomize_test.sh SOURCE_DIR   (env: LEASEHOLD_TESTENV_DIR, LEASEHOLD_TESTENV_BIN)
set -euo pipefail
src=$(cd "$1" && pwd)
dir=${LEASEHOLD_TESTENV_DIR:?}
kubectl=${LEASEHOLD_TESTENV_BIN:?}/kubectl
admin=(--kubeconfig "$dir/kubeconfig-admin")
work=$(mktemp -d "${TMPDIR:-/tmp}/leasehold-kustomize.XXXXXX")
ns=deploy-kustomize-$(date +%s)-$$
source "$(dirname "$0")/kustomize_lib.sh"
cleanup() {
  "$kubectl" "${admin[@]}" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/../integration/cli_lib.sh"  # check, cli_finish
"$kubectl" version --client 2>/dev/null | sed -n 1p  # sed reads it all: no SIGPIPE under pipefail
"$kubectl" "${admin[@]}" create namespace "$ns" >/dev/null
for overlay in "$src"/deploy/overlays/*/; do
  name=$(basename "$overlay")
  echo "== overlay $name"
  check "kubectl kustomize deploy/overlays/$name" \
    bash -c '"$1" kustomize "$2" >"$3"' _ "$kubectl" "$overlay" "$work/$name.yaml"
  check "  renders the base's ServiceAccount, Role, RoleBinding and PDB, and the Deployment" \
    test "$(grep -c '^kind: \(ServiceAccount\|Role\|RoleBinding\|PodDisruptionBudget\|Deployment\)$' "$work/$name.yaml")" = 5
  check "  every object and the RoleBinding subject in my-namespace" \
    test "$(grep -c '^  namespace: my-namespace$' "$work/$name.yaml")" = 6
  render "overlays/$name" "$ns" >"$work/$name-in-ns.yaml"
  check "  included from a kustomization with namespace $ns: every object and the RoleBinding subject in it" \
    test "$(grep -c "^  namespace: $ns\$" "$work/$name-in-ns.yaml")" = 6
  out=$("$kubectl" "${admin[@]}" apply --server-side --dry-run=server --validate=strict \
          --field-manager=leasehold-kustomize-test -f "$work/$name-in-ns.yaml" 2>&1) || true
  echo "$out" | sed 's/^/     /'
  check "  applied with server-side dry run: 5 objects accepted" \
    test "$(grep -c 'serverside-applied (server dry run)' <<<"$out")" = 5
  deploy_json=$("$kubectl" "${admin[@]}" apply --server-side --dry-run=server --field-manager=leasehold-kustomize-test \
                  -f "$work/$name-in-ns.yaml" -o json 2>/dev/null || true)
  cat >"$work/check.py" <<'EOF'
import json, sys
name, ns = sys.argv[1:]
doc = json.load(sys.stdin)
items = doc.get("items", [doc])
dep = next(i for i in items if i["kind"] == "Deployment")
binding = next(i for i in items if i["kind"] == "RoleBinding")
pod = dep["spec"]["template"]["spec"]
app = next(c for c in pod["containers"] if c["name"] == "app")
env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in app.get("env", [])}
def say(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
say(pod.get("serviceAccountName") == "my-app", "  the Pod runs as ServiceAccount my-app")
say(env.get("POD_NAME") == "metadata.name" and env.get("POD_NAMESPACE") == "metadata.namespace",
    "  POD_NAME and POD_NAMESPACE from the downward API")
say(binding["subjects"][0].get("namespace") == ns, f"  the RoleBinding's subject is in {ns}")
if name == "sidecar":
    cmd = app.get("command", [])
    say(cmd[:2] == ["/usr/local/bin/leasehold", "run"] and cmd[-1] == "--",
        f"  the app container's command is leasehold run ... -- ({' '.join(cmd)})")
    say(app.get("args") == ["/usr/local/bin/my-worker", "--interval=10s"], "  the worker's args are kept")
    paths = {p["httpGet"]["path"] for p in (app.get("livenessProbe"), app.get("readinessProbe")) if p}
    say(paths == {"/healthz"}, f"  probes on /healthz ({sorted(paths)})")
else:
    say("command" not in app, "  the library's container keeps its own command")
EOF
  python3 "$work/check.py" "$name" "$ns" <<<"$deploy_json" >"$work/$name.checks" 2>&1 || true
  cat "$work/$name.checks"
  check "  the rendered objects are what the components promise" \
    test "$(grep -c '^ok ' "$work/$name.checks")" -ge 3 -a "$(grep -c '^FAIL\|Traceback' "$work/$name.checks")" = 0
done
cli_finish "kustomize"
