// Command peer is the client-go reference elector that leasehold's interop
// tests and benchmarks run beside leasehold. It campaigns for one Lease with
// k8s.io/client-go/tools/leaderelection and prints one JSON line per event:
//
//	{"event":"started","identity":"b","leader":"b","transitions":3,"mono_ns":123}
//
// mono_ns is CLOCK_MONOTONIC, the same clock leasehold reports, so one checker
// can order both. On SIGTERM or SIGINT it cancels, releases the Lease when
// --release-on-cancel is set, and exits 0.
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
	cfg.UserAgent = "leasehold-interop-peer"
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
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; cancel() }()

	var leading atomic.Bool
	var term atomic.Int64
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: *releaseOnCancel,
		Name:            *name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				t := 0
				if r := lock.last.Load(); r != nil {
					t = r.LeaderTransitions
				}
				term.Store(int64(t))
				leading.Store(true)
				emit("started", *identity, *identity, t)
			},
			OnStoppedLeading: func() {
				// client-go calls this whenever Run returns, led or not.
				if leading.Swap(false) {
					emit("stopped", *identity, "", int(term.Load()))
				}
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
