// Command testenv runs a real etcd + kube-apiserver + kube-controller-manager
// (only its garbage collector) on loopback for leasehold's integration tests.
//
//	testenv up      --dir DIR --bin BINDIR   start all three, wait until the API server is
//	                                         ready and the garbage collector has collected
//	                                         a probe object, bootstrap RBAC
//	testenv down    --dir DIR                stop every process this DIR started
//	testenv restart --dir DIR NAME           restart "etcd", "kube-apiserver" or
//	                                         "kube-controller-manager" in place
//	testenv bind    --dir DIR NAMESPACE      give user "elector" the lease role in NAMESPACE
//	testenv apply   --dir DIR --namespace NS [--dry-run] FILE...
//	                                         server-side apply YAML manifests as admin
//	testenv token   --dir DIR --namespace NS --sa NAME --out FILE [--ttl 1h]
//	                                         a TokenRequest for a ServiceAccount, as a kubeconfig
//	testenv can-i   --kubeconfig FILE --namespace NS [--name N] VERB GROUP/RESOURCE
//	                                         SelfSubjectAccessReview: prints yes/no, exit 0/3
//
// Every child runs in its own process group and its pgid is written to
// DIR/pids before `up` returns, so `down` (and the next `up` on the same DIR)
// removes everything even when a test run crashed half way.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Users with static tokens. The tokens are random per `up`; only files in DIR
// hold them.
var users = []struct{ name, groups string }{
	{"admin", "system:masters"},
	{"elector", ""},
	{"nobody", ""},
	// kube-controller-manager's own identity: the default RBAC policy binds
	// this user to system:kube-controller-manager; bootstrapRBAC adds the
	// garbage collector's role (see gcBinding).
	{kcmUser, ""},
}

const kcmUser = "system:kube-controller-manager"

// The only controllers kube-controller-manager runs: the garbage collector
// (leader-for-life's locks are ConfigMaps owned by a Pod). No service-account
// token controller: kube-controller-manager authenticates with its own static
// token and --use-service-account-credentials=false.
const kcmControllers = "garbage-collector-controller"

const electorRole = "leasehold-elector"
const defaultNamespace = "leasehold-test"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (certs, data, kubeconfigs, pids)")
	bin := fs.String("bin", "", "directory holding etcd and kube-apiserver")
	ns := fs.String("namespace", defaultNamespace, "apply, token, can-i: the namespace")
	dryRun := fs.Bool("dry-run", false, "apply: validate on the server (strict field validation), store nothing")
	sa := fs.String("sa", "", "token: the ServiceAccount")
	out := fs.String("out", "", "token: the kubeconfig file to write")
	ttl := fs.Duration("ttl", time.Hour, "token: requested token lifetime (the server may shorten it)")
	kubeconfig := fs.String("kubeconfig", "", "can-i: whose permissions to ask about")
	name := fs.String("name", "", "can-i: the object's name (empty: any)")
	_ = fs.Parse(os.Args[2:])
	if cmd == "can-i" {
		if *kubeconfig == "" || fs.NArg() != 2 {
			fail("usage: testenv can-i --kubeconfig FILE --namespace NS [--name NAME] VERB GROUP/RESOURCE")
		}
		allowed, err := canI(*kubeconfig, *ns, fs.Arg(0), fs.Arg(1), *name)
		if err != nil {
			fail(err.Error())
		}
		if allowed {
			fmt.Println("yes")
			return
		}
		fmt.Println("no")
		os.Exit(3)
	}
	if *dir == "" {
		fail("--dir is required")
	}
	var err error
	switch cmd {
	case "up":
		if *bin == "" {
			fail("--bin is required for up")
		}
		err = up(*dir, *bin)
	case "down":
		err = down(*dir)
	case "restart":
		if fs.NArg() != 1 {
			fail("restart needs one of: etcd, kube-apiserver, kube-controller-manager")
		}
		err = restart(*dir, fs.Arg(0))
	case "bind":
		if fs.NArg() != 1 {
			fail("bind needs a namespace")
		}
		err = bindElector(*dir, fs.Arg(0))
	case "apply":
		if fs.NArg() == 0 {
			fail("apply needs at least one manifest file")
		}
		err = apply(*dir, *ns, *dryRun, fs.Args())
	case "token":
		if *sa == "" || *out == "" {
			fail("token needs --sa NAME and --out FILE")
		}
		err = tokenKubeconfig(*dir, *ns, *sa, *out, *ttl)
	default:
		usage()
	}
	if err != nil {
		fail(err.Error())
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testenv up|down|restart|bind|apply|token|can-i --dir DIR [flags] [ARG...]")
	os.Exit(2)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testenv:", msg)
	os.Exit(1)
}

func say(format string, a ...any) {
	fmt.Printf("[testenv] "+format+"\n", a...)
}

// proc is what `restart` needs to start a child again exactly as before.
type proc struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Pgid int      `json:"pgid"`
	Log  string   `json:"log"`
}

func up(dir, bin string) error {
	start := time.Now()
	_ = down(dir) // a crashed earlier run on the same DIR leaves nothing behind
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		return err
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	if err := writePKI(dir); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	tokens := map[string]string{}
	var tokenLines []string
	for i, u := range users {
		tok := randomHex(24)
		tokens[u.name] = tok
		line := fmt.Sprintf("%s,%s,uid-%d", tok, u.name, i)
		if u.groups != "" {
			line += fmt.Sprintf(",\"%s\"", u.groups)
		}
		tokenLines = append(tokenLines, line)
	}
	if err := os.WriteFile(filepath.Join(dir, "pki", "tokens.csv"), []byte(strings.Join(tokenLines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	pki := func(f string) string { return filepath.Join(dir, "pki", f) }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd := proc{Name: "etcd", Log: filepath.Join(dir, "etcd.log"), Args: []string{
		filepath.Join(bin, "etcd"),
		"--name=testenv", "--data-dir=" + filepath.Join(dir, "etcd-data"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testenv=" + peerURL, "--log-level=warn",
		"--unsafe-no-fsync", "--quota-backend-bytes=1073741824",
	}}
	api := proc{Name: "kube-apiserver", Log: filepath.Join(dir, "kube-apiserver.log"), Args: []string{
		filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + pki("serving.crt"), "--tls-private-key-file=" + pki("serving.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--token-auth-file=" + pki("tokens.csv"),
		"--service-account-key-file=" + pki("sa.key"),
		"--service-account-signing-key-file=" + pki("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--authorization-mode=Node,RBAC",
		"--feature-gates=CoordinatedLeaderElection=true",
		"--runtime-config=coordination.k8s.io/v1beta1=true",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		"--audit-policy-file=" + pki("audit-policy.yaml"),
		"--audit-log-path=" + filepath.Join(dir, "audit.log"),
		"--audit-log-format=json", "--audit-log-mode=batch",
		"--audit-log-batch-max-wait=1s",
		"--profiling=false", "--v=0",
	}}
	if err := os.WriteFile(pki("audit-policy.yaml"), []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	kcm := proc{Name: "kube-controller-manager", Log: filepath.Join(dir, "kube-controller-manager.log"), Args: []string{
		filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig=" + kubeconfigPath(dir, kcmUser),
		"--controllers=" + kcmControllers,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(kcmPort),
		"--tls-cert-file=" + pki("serving.crt"), "--tls-private-key-file=" + pki("serving.key"),
		// No --authentication/authorization-kubeconfig: /healthz is in the
		// default --authorization-always-allow-paths, so the probe needs none.
		"--profiling=false", "--contention-profiling=false",
		// v=2: the collector logs each item it processes and deletes.
		"--v=2",
	}}
	procs := []*proc{&etcd, &api}
	say("starting etcd on %s", etcdURL)
	if err := spawn(&etcd); err != nil {
		return err
	}
	if err := savePids(dir, procs); err != nil {
		return err
	}
	if err := waitHTTP(etcdURL+"/health", "", 60*time.Second, &etcd); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w (see %s)", err, etcd.Log)
	}
	say("starting kube-apiserver on https://127.0.0.1:%d", apiPort)
	if err := spawn(&api); err != nil {
		return err
	}
	if err := savePids(dir, procs); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if err := waitHTTP(server+"/readyz", tokens["admin"], 120*time.Second, &api); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w (see %s)", err, api.Log)
	}
	for _, u := range users {
		if err := writeKubeconfig(dir, u.name, server, "    token: "+tokens[u.name]+"\n"); err != nil {
			return err
		}
	}
	if err := writeCertKubeconfig(dir, server); err != nil {
		return err
	}
	if err := bootstrapRBAC(dir); err != nil {
		return fmt.Errorf("RBAC bootstrap: %w", err)
	}
	say("starting kube-controller-manager (%s) on https://127.0.0.1:%d", kcmControllers, kcmPort)
	procs = append(procs, &kcm)
	if err := spawn(&kcm); err != nil {
		return err
	}
	if err := savePids(dir, procs); err != nil {
		return err
	}
	kcmURL := fmt.Sprintf("https://127.0.0.1:%d", kcmPort)
	if err := waitHTTP(kcmURL+"/healthz", "", 60*time.Second, &kcm); err != nil {
		return fmt.Errorf("kube-controller-manager did not become healthy: %w (see %s)", err, kcm.Log)
	}
	if err := waitCollector(dir, 60*time.Second, &kcm); err != nil {
		return fmt.Errorf("garbage collector: %w (see %s)", err, kcm.Log)
	}
	env := fmt.Sprintf("TESTENV_SERVER=%s\nTESTENV_NAMESPACE=%s\nTESTENV_ETCD=%s\nTESTENV_KUBE_CONTROLLER_MANAGER=%s\n",
		server, defaultNamespace, etcdURL, kcmURL)
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o644); err != nil {
		return err
	}
	say("ready in %.1fs: %s (kubeconfigs in %s)", time.Since(start).Seconds(), server, dir)
	return nil
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: coordination.k8s.io
  - group: ""
    resources: ["configmaps", "endpoints", "pods", "nodes", "events"]
- level: None
`

func spawn(p *proc) error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(p.Args[0], p.Args[1:]...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.Pgid = c.Process.Pid
	go func() { _ = c.Wait() }() // reap if it dies while we still run
	return nil
}

func savePids(dir string, procs []*proc) error {
	b, err := json.MarshalIndent(procs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pids"), b, 0o644)
}

func loadPids(dir string) ([]*proc, error) {
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return nil, err
	}
	var procs []*proc
	return procs, json.Unmarshal(b, &procs)
}

func alive(pgid int) bool {
	return pgid > 0 && syscall.Kill(-pgid, 0) == nil
}

func stop(p *proc) {
	if !alive(p.Pgid) {
		return
	}
	_ = syscall.Kill(-p.Pgid, syscall.SIGTERM)
	for i := 0; i < 100 && alive(p.Pgid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(p.Pgid) {
		_ = syscall.Kill(-p.Pgid, syscall.SIGKILL)
		for i := 0; i < 100 && alive(p.Pgid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func down(dir string) error {
	procs, err := loadPids(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// The API server first, so it does not log a storm of etcd errors.
	for i := len(procs) - 1; i >= 0; i-- {
		if alive(procs[i].Pgid) {
			say("stopping %s (pgid %d)", procs[i].Name, procs[i].Pgid)
		}
		stop(procs[i])
	}
	return nil
}

func restart(dir, name string) error {
	procs, err := loadPids(dir)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if p.Name != name {
			continue
		}
		stop(p)
		if err := spawn(p); err != nil {
			return err
		}
		if err := savePids(dir, procs); err != nil {
			return err
		}
		// Wait until the control plane as a whole answers again.
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-admin"))
		if err != nil {
			return err
		}
		for _, q := range procs {
			if q.Name == "kube-apiserver" {
				if err := waitHTTP(cfg.Host+"/readyz", cfg.BearerToken, 120*time.Second, q); err != nil {
					return err
				}
			}
		}
		if name == "kube-controller-manager" {
			return waitCollector(dir, 60*time.Second, p)
		}
		return nil
	}
	return fmt.Errorf("no process named %q", name)
}

func waitHTTP(url, token string, limit time.Duration, p *proc) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // readiness probe only
	}}
	deadline := time.Now().Add(limit)
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		if !alive(p.Pgid) {
			return fmt.Errorf("%s exited", p.Name)
		}
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Errorf("HTTP %d", resp.StatusCode)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// writePKI creates a CA, the serving certificate, a client certificate for
// certificate-auth tests and the service-account signing key.
func writePKI(dir string) error {
	p := func(f string) string { return filepath.Join(dir, "pki", f) }
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leasehold-testenv-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	if err := writePEM(p("ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	issue := func(name string, serial int64, tmpl *x509.Certificate) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(10*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(p(name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(p(name+".key"), "EC PRIVATE KEY", kb)
	}
	if err := issue("serving", 2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return err
	}
	if err := issue("client-admin", 3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "cert-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	return writePEM(p("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// writeKubeconfig writes DIR/kubeconfig-NAME for one user; `auth` is the
// YAML of its credentials (token, or client certificate and key).
func writeKubeconfig(dir, name, server, auth string) error {
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
%s`, server, filepath.Join(dir, "pki", "ca.crt"), name, name, defaultNamespace, name, name, auth)
	return os.WriteFile(kubeconfigPath(dir, name), []byte(cfg), 0o600)
}

// kubeconfigPath: DIR/kubeconfig-NAME, without a "system:" prefix
// (DIR/kubeconfig-kube-controller-manager).
func kubeconfigPath(dir, user string) string {
	return filepath.Join(dir, "kubeconfig-"+strings.TrimPrefix(user, "system:"))
}

func writeCertKubeconfig(dir, server string) error {
	p := func(f string) string { return filepath.Join(dir, "pki", f) }
	auth := fmt.Sprintf("    client-certificate: %s\n    client-key: %s\n", p("client-admin.crt"), p("client-admin.key"))
	return writeKubeconfig(dir, "cert-admin", server, auth)
}

func adminClient(dir string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-admin"))
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// bootstrapRBAC gives "elector" its least-privilege Role in the default
// test namespace, and kube-controller-manager's user the garbage collector's
// ClusterRole.
func bootstrapRBAC(dir string) error {
	if err := bindElector(dir, defaultNamespace); err != nil {
		return err
	}
	cs, err := adminClient(dir)
	if err != nil {
		return err
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(context.Background(), gcBinding, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// gcBinding: the default policy's system:kube-controller-manager role may
// list and watch everything but not delete; with its own credentials
// (--use-service-account-credentials=false) the collector needs the role a
// cluster gives its generic-garbage-collector ServiceAccount, which the
// default policy also defines.
var gcBinding = &rbacv1.ClusterRoleBinding{
	ObjectMeta: metav1.ObjectMeta{Name: "testenv:kube-controller-manager:generic-garbage-collector"},
	RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole",
		Name: "system:controller:generic-garbage-collector"},
	Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: kcmUser}},
}

// waitCollector proves the garbage collector works end to end: a ConfigMap
// owned by another ConfigMap in kube-system is collected after its owner is
// deleted. Both are named after the time, so a restart never reuses them.
func waitCollector(dir string, limit time.Duration, p *proc) error {
	cs, err := adminClient(dir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	name := fmt.Sprintf("testenv-gc-probe-%d", time.Now().UnixNano())
	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-owner"}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}}}
	if _, err := cms.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := cms.Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	t0 := time.Now()
	for time.Since(t0) < limit {
		if !alive(p.Pgid) {
			return fmt.Errorf("%s exited", p.Name)
		}
		_, err := cms.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			say("garbage collector collected its probe in %.1fs", time.Since(t0).Seconds())
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("probe ConfigMap kube-system/%s not collected within %s after its owner was deleted", name, limit)
}

// electorRules: the verbs leasehold uses (list and watch on every Lease let
// its shared per-namespace watch run), plus patch and delete for tests.
var electorRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create"}},
}

func bindElector(dir, ns string) error {
	cs, err := adminClient(dir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: electorRole, Namespace: ns}, Rules: electorRules}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: electorRole, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: electorRole},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "elector"}},
	}
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
