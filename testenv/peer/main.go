// Command peer is the client-go reference elector that leasehold's interop
// tests and benchmarks run beside leasehold. It campaigns for one Lease with
// k8s.io/client-go/tools/leaderelection and prints one JSON line per event:
//
//	{"event":"started","identity":"b","leader":"b","transitions":3,"mono_ns":123}
//
// mono_ns is CLOCK_MONOTONIC, the same clock leasehold reports, so one checker
// can order both. On SIGTERM or SIGINT it ends its term ("stopped"), then
// cancels, releases the Lease when --release-on-cancel is set, prints
// "exited" and exits 0. A term that client-go ends (the renew deadline
// passed) is "stopped" when client-go cancels the work's context, as the
// work sees it, not later in OnStoppedLeading (which waits for client-go's
// release attempt). --user-agent sets the HTTP User-Agent, so the
// kube-apiserver audit log can tell candidates apart.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

func monoNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

var outMu sync.Mutex

func emit(event, identity, leader string, transitions int) {
	b, _ := json.Marshal(map[string]any{
		"event": event, "identity": identity, "leader": leader,
		"transitions": transitions, "mono_ns": monoNS(), "impl": "client-go",
	})
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Println(string(b))
}

// recordingLock remembers the record of the last successful write, so
// "started" can report the transitions of the term without an extra GET.
type recordingLock struct {
	resourcelock.Interface
	last atomic.Pointer[resourcelock.LeaderElectionRecord]
}

func (l *recordingLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	if err == nil {
		l.last.Store(&r)
	}
	return err
}

func (l *recordingLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, r)
	if err == nil {
		l.last.Store(&r)
	}
	return err
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	namespace := flag.String("namespace", "default", "Lease namespace")
	name := flag.String("name", "", "Lease name")
	identity := flag.String("identity", "", "holder identity")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "retry period")
	releaseOnCancel := flag.Bool("release-on-cancel", true, "release the Lease on SIGTERM")
	qps := flag.Float64("qps", 50, "client QPS")
	userAgent := flag.String("user-agent", "leasehold-interop-peer", "HTTP User-Agent")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	if *name == "" || *identity == "" {
		fmt.Fprintln(os.Stderr, "peer: --name and --identity are required")
		os.Exit(2)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(2)
	}
	cfg.QPS, cfg.Burst = float32(*qps), int(*qps)*2
	cfg.UserAgent = *userAgent
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(2)
	}
	lock := &recordingLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: *name},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: *identity},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	// The term as this process reports it, under termMu: "started" is
	// printed only while not stopping and before the work context ends, and
	// "stopped" exactly once per "started".
	var termMu sync.Mutex
	var leading, stopping bool
	var term atomic.Int64
	endTerm := func() {
		if leading {
			leading = false
			emit("stopped", *identity, "", int(term.Load()))
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		// client-go releases the Lease inside Run, before OnStoppedLeading,
		// and does not wait for the work: ReleaseOnCancel is only safe when the
		// work has ended before cancel. So the term ends here ("stopped"),
		// before cancel and therefore before the release is written.
		termMu.Lock()
		stopping = true
		endTerm()
		termMu.Unlock()
		cancel()
	}()

	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: *releaseOnCancel,
		Name:            *name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(workCtx context.Context) {
				termMu.Lock()
				defer termMu.Unlock()
				if stopping || workCtx.Err() != nil {
					return // the term ended before this goroutine ran
				}
				t := 0
				if r := lock.last.Load(); r != nil {
					t = r.LeaderTransitions
				}
				term.Store(int64(t))
				leading = true
				emit("started", *identity, *identity, t)
				// client-go tells the work to stop by cancelling workCtx (at the
				// renew deadline, or on cancel): the term ends there for the
				// work. OnStoppedLeading comes only after client-go's release
				// attempt, which waits on an API server that may not answer.
				go func() {
					<-workCtx.Done()
					termMu.Lock()
					defer termMu.Unlock()
					endTerm()
				}()
			},
			OnStoppedLeading: func() {
				// client-go calls this whenever Run returns, led or not.
				termMu.Lock()
				defer termMu.Unlock()
				endTerm()
			},
			OnNewLeader: func(id string) { emit("new_leader", *identity, id, 0) },
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(2)
	}
	le.Run(ctx) // returns after losing the lease or after cancel (+release)
	emit("exited", *identity, "", int(term.Load()))
}
