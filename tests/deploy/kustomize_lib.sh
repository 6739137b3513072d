# Sourced by tests/deploy/*.sh: render a kustomization of deploy/ into
# another namespace, as a user's own kustomization would include it.
#   render DIR NAMESPACE   DIR relative to deploy/ (base, overlays/sidecar, ...);
#                          prints the rendered YAML. Needs $kubectl, $src, $work.
render() {
  local k
  k=$(mktemp -d "$work/kustomization.XXXXXX")
  cat >"$k/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $2
resources:
  - $(realpath --relative-to="$k" "$src/deploy/$1")
EOF
  "$kubectl" kustomize "$k"
}
