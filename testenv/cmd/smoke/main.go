// Command smoke proves that the test control plane is a real, enforcing
// kube-apiserver. Each subcommand is one ctest test (label "integration"):
//
//	smoke lease-crud     --dir DIR   as "elector": create, get, update a Lease; a stale resourceVersion gets 409
//	smoke forbidden      --dir DIR   as "nobody": reading a Lease gets 403
//	smoke peer-takeover  --dir DIR --peer BIN   a client-go peer takes over after the leader is SIGKILLed
//
// Exit status 0 means the check held; anything else prints why.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fatal("usage: smoke lease-crud|forbidden|peer-takeover --dir DIR [--peer BIN]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", os.Getenv("LEASEHOLD_TESTENV_DIR"), "testenv state directory")
	peer := fs.String("peer", "", "client-go peer binary")
	_ = fs.Parse(os.Args[2:])
	ns := "leasehold-test"
	var err error
	switch os.Args[1] {
	case "lease-crud":
		err = leaseCRUD(client(*dir, "elector"), ns)
	case "forbidden":
		err = forbidden(client(*dir, "nobody"), ns)
	case "peer-takeover":
		err = peerTakeover(*dir, *peer, ns)
	default:
		fatal("unknown check " + os.Args[1])
	}
	if err != nil {
		fatal(os.Args[1] + ": " + err.Error())
	}
	fmt.Println("PASS", os.Args[1])
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "FAIL", msg)
	os.Exit(1)
}

func client(dir, user string) *kubernetes.Clientset {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-"+user))
	if err != nil {
		fatal(err.Error())
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fatal(err.Error())
	}
	return cs
}

func leaseCRUD(cs *kubernetes.Clientset, ns string) error {
	ctx := context.Background()
	leases := cs.CoordinationV1().Leases(ns)
	name := fmt.Sprintf("smoke-crud-%d", time.Now().UnixNano())
	holder, dur := "smoke-a", int32(15)
	created, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	got, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != holder {
		return fmt.Errorf("get returned holder %v, want %q", got.Spec.HolderIdentity, holder)
	}
	next := "smoke-b"
	got.Spec.HolderIdentity = &next
	updated, err := leases.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if updated.ResourceVersion == created.ResourceVersion {
		return fmt.Errorf("update kept resourceVersion %s", created.ResourceVersion)
	}
	stale := created.DeepCopy() // carries the first resourceVersion
	third := "smoke-c"
	stale.Spec.HolderIdentity = &third
	_, err = leases.Update(ctx, stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		return fmt.Errorf("update with stale resourceVersion: got %v, want 409 Conflict", err)
	}
	final, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if *final.Spec.HolderIdentity != next {
		return fmt.Errorf("stale update changed holder to %q", *final.Spec.HolderIdentity)
	}
	return leases.Delete(ctx, name, metav1.DeleteOptions{})
}

func forbidden(cs *kubernetes.Clientset, ns string) error {
	_, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "anything", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		return fmt.Errorf("as nobody: got %v, want 403 Forbidden", err)
	}
	fmt.Println("nobody was refused:", err)
	return nil
}

type event struct {
	Event       string `json:"event"`
	Identity    string `json:"identity"`
	Leader      string `json:"leader"`
	Transitions int    `json:"transitions"`
	MonoNS      int64  `json:"mono_ns"`
}

type runningPeer struct {
	cmd    *exec.Cmd
	events chan event
}

func startPeer(bin, kubeconfig, ns, lease, id string) (*runningPeer, error) {
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--namespace", ns, "--name", lease,
		"--identity", id, "--lease-duration=3s", "--renew-deadline=2s", "--retry-period=500ms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &runningPeer{cmd: cmd, events: make(chan event, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
		close(p.events)
	}()
	return p, nil
}

func (p *runningPeer) waitFor(kind string, limit time.Duration) (event, error) {
	timeout := time.After(limit)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				return event{}, fmt.Errorf("peer exited before %q", kind)
			}
			if e.Event == kind {
				return e, nil
			}
		case <-timeout:
			return event{}, fmt.Errorf("no %q event within %s", kind, limit)
		}
	}
}

func peerTakeover(dir, bin, ns string) error {
	kc := filepath.Join(dir, "kubeconfig-elector")
	lease := fmt.Sprintf("smoke-takeover-%d", time.Now().UnixNano())
	a, err := startPeer(bin, kc, ns, lease, "peer-a")
	if err != nil {
		return err
	}
	defer a.cmd.Process.Kill()
	startedA, err := a.waitFor("started", 20*time.Second)
	if err != nil {
		return fmt.Errorf("peer-a: %w", err)
	}
	b, err := startPeer(bin, kc, ns, lease, "peer-b")
	if err != nil {
		return err
	}
	defer b.cmd.Process.Kill()
	if _, err := b.waitFor("new_leader", 10*time.Second); err != nil {
		return fmt.Errorf("peer-b never saw peer-a lead: %w", err)
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.cmd.Wait()
	killedAt := time.Now()
	startedB, err := b.waitFor("started", 20*time.Second)
	if err != nil {
		return fmt.Errorf("peer-b: %w", err)
	}
	took := time.Since(killedAt)
	if startedB.Transitions != startedA.Transitions+1 {
		return fmt.Errorf("transitions went %d -> %d, want +1", startedA.Transitions, startedB.Transitions)
	}
	// peer-b last saw a fresh renewal at most ~1.1s (retry period with
	// jitter) before the kill, so an honest take-over waits >= ~1.9s.
	if took < time.Second {
		return fmt.Errorf("peer-b took over %s after the kill, before peer-a's lease could expire", took)
	}
	fmt.Printf("peer-b took over %.2fs after SIGKILL of peer-a (lease 3s)\n", took.Seconds())
	return b.cmd.Process.Signal(syscall.SIGTERM)
}
