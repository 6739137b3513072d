package main

// apply, token and can-i: what the deploy/ RBAC test needs from the control
// plane besides the leasehold binary itself.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// apply server-side-applies every object of every file (multi-document YAML)
// as admin, with strict field validation, so a typo in a manifest is an
// error. Namespaced objects without a namespace go to `ns`, which is created
// if missing. With dryRun nothing is stored.
func apply(dir, ns string, dryRun bool, files []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-admin"))
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if !dryRun {
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	opts := metav1.PatchOptions{FieldManager: "testenv", FieldValidation: "Strict", Force: boolPtr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, file := range files {
		objs, err := readManifests(file)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			gvk := obj.GroupVersionKind()
			where := fmt.Sprintf("%s: %s %s", file, gvk.Kind, obj.GetName())
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				if obj.GetNamespace() == "" {
					obj.SetNamespace(ns)
				}
				ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
			}
			body, err := obj.MarshalJSON()
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			verb := "applied"
			if dryRun {
				verb = "validated (dry run)"
			}
			say("%s %s %s/%s", verb, strings.ToLower(gvk.Kind), obj.GetNamespace(), obj.GetName())
		}
	}
	return nil
}

func boolPtr(b bool) *bool { return &b }

// readManifests splits a multi-document YAML file into objects; empty
// documents (comments only) are skipped; a document without apiVersion, kind
// or metadata.name is an error naming the file and document.
func readManifests(file string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: document %d: %w", file, doc, err)
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d: apiVersion, kind and metadata.name are required", file, doc)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects", file)
	}
	return objs, nil
}

// tokenKubeconfig asks for a token of ServiceAccount ns/sa (TokenRequest, as
// the kubelet does for a projected volume) and writes a kubeconfig that uses
// it, with the namespace as its default. The token is written only to `out`
// (mode 0600), never printed.
func tokenKubeconfig(dir, ns, sa, out string, ttl time.Duration) error {
	cs, err := adminClient(dir)
	if err != nil {
		return err
	}
	secs := int64(ttl.Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}},
		metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create token for serviceaccount %s/%s: %w", ns, sa, err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-admin"))
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: %s
    certificate-authority: %s
contexts:
- name: %s
  context:
    cluster: testenv
    user: %s
    namespace: %s
current-context: %s
users:
- name: %s
  user:
    token: %s
`, admin.Host, filepath.Join(dir, "pki", "ca.crt"), sa, sa, ns, sa, sa, tr.Status.Token)
	if err := os.WriteFile(out, []byte(cfg), 0o600); err != nil {
		return err
	}
	say("token for serviceaccount %s/%s (expires %s) in %s", ns, sa,
		tr.Status.ExpirationTimestamp.UTC().Format(time.RFC3339), out)
	return nil
}

// canI asks the API server whether the user of `kubeconfig` may do VERB on
// GROUP/RESOURCE ("coordination.k8s.io/leases", "/pods" or "pods" for the
// core group) in `ns`, on the object `name` if not empty (a
// SelfSubjectAccessReview: the authorizer's decision itself).
func canI(kubeconfig, ns, verb, resource, name string) (bool, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, err
	}
	group, res := "", resource
	if i := strings.LastIndex(resource, "/"); i >= 0 {
		group, res = resource[:i], resource[i+1:]
	}
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(),
		&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: res, Name: name},
		}}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("create selfsubjectaccessreview (%s %s %q in namespace %s): %w", verb, resource, name, ns, err)
	}
	return r.Status.Allowed, nil
}
