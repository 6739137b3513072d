// Command legacypeer is the client-go reference elector for leasehold's legacy
// lock tests. client-go dropped the ConfigMap and Endpoints locks (and the
// configmapsleases / endpointsleases migration pairs) after v0.27, so this is a
// separate Go module pinned to client-go v0.23, the last release whose
// resourcelock.New still builds every lock type:
//
//	configmaps, endpoints                 the control-plane.alpha.kubernetes.io/leader annotation
//	configmapsleases, endpointsleases     MultiLock: the annotation (primary) + a Lease (secondary)
//	leases                                a Lease
//
// It prints the same JSON lines as testenv/peer, one per event:
//
//	{"event":"started","identity":"b","leader":"b","transitions":3,"mono_ns":123,"impl":"client-go-legacy"}
//
// mono_ns is CLOCK_MONOTONIC, the clock leasehold reports. On SIGTERM or
// SIGINT it cancels, releases when --release-on-cancel is set, and exits 0.
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
		"transitions": transitions, "mono_ns": monoNS(), "impl": "client-go-legacy",
	})
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Println(string(b))
}

// recordingLock remembers the record of the last successful write, so
// "started" can report the transitions of the term without an extra GET.
type recordingLock struct {
	resourcelock.Interface
	mu   sync.Mutex
	last *resourcelock.LeaderElectionRecord
}

func (l *recordingLock) store(r resourcelock.LeaderElectionRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = &r
}

func (l *recordingLock) transitions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		return 0
	}
	return l.last.LeaderTransitions
}

func (l *recordingLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	if err == nil {
		l.store(r)
	}
	return err
}

func (l *recordingLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, r)
	if err == nil {
		l.store(r)
	}
	return err
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	lockType := flag.String("lock-type", "configmaps", "configmaps, endpoints, configmapsleases, endpointsleases or leases")
	namespace := flag.String("namespace", "default", "lock namespace")
	name := flag.String("name", "", "lock object name")
	identity := flag.String("identity", "", "holder identity")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "retry period")
	releaseOnCancel := flag.Bool("release-on-cancel", true, "release the lock on SIGTERM")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	if *name == "" || *identity == "" {
		fmt.Fprintln(os.Stderr, "legacypeer: --name and --identity are required")
		os.Exit(2)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacypeer:", err)
		os.Exit(2)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "leasehold-legacy-peer"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacypeer:", err)
		os.Exit(2)
	}
	inner, err := resourcelock.New(*lockType, *namespace, *name, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: *identity})
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacypeer:", err)
		os.Exit(2)
	}
	lock := &recordingLock{Interface: inner}
	ctx, cancel := context.WithCancel(context.Background())
	// The term as this process reports it, under termMu: "started" only
	// while not stopping, "stopped" exactly once per "started".
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
		// client-go releases the lock inside Run, before OnStoppedLeading
		// (ReleaseOnCancel), so a term reported ended there ends after the
		// release is written and another candidate may already lead: the
		// stress test saw leasehold start 1.8 ms before that "stopped". The
		// term ends here, before cancel and therefore before the release, as
		// testenv/peer does.
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
				t := lock.transitions()
				term.Store(int64(t))
				leading = true
				emit("started", *identity, *identity, t)
			},
			OnStoppedLeading: func() {
				termMu.Lock()
				defer termMu.Unlock()
				endTerm()
			},
			OnNewLeader: func(id string) { emit("new_leader", *identity, id, 0) },
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacypeer:", err)
		os.Exit(2)
	}
	le.Run(ctx)
	emit("exited", *identity, "", int(term.Load()))
}
