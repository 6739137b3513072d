// Command scalepeer is the client-go side of leasehold's scale benchmark
// (bench/scale.py runs it beside bench/scale_bench.cc, leasehold_scale_bench,
// with the same flags on the same control plane). One process, one shared
// clientset, N client-go LeaderElectors (resourcelock.LeaseLock) on N Leases
// PREFIX0000, PREFIX0001, ... in one namespace, all leading (this process is
// the only candidate).
//
//	scalepeer --kubeconfig FILE [--namespace leasehold-test] [--prefix scale-] [--n 1000]
//	    [--lease-duration 60s] [--renew-deadline 40s] [--retry-period 10s]
//	    [--window 60s] [--settle-timeout 300s] [--identity scale-client-go] [--qps 0]
//
// It prints "[scale] client-go: K/N leading after S s" on stderr every second
// until all lead (or --settle-timeout passes), then measures a steady window:
// CPU of the process (syscall.Getrusage, user + system, every goroutine and
// the GC), VmRSS and VmHWM (/proc/self/status) at its end, and how many
// electors still lead. One JSON line on stdout, the keys of
// leasehold_scale_bench:
//
//	{"impl":"client-go","leases":1000,"leading_at_end":1000,"cpu_s_window":4.56,"rss_kib":65432,...}
//
// The client's rate limit: client-go's default (QPS 5, burst 10) cannot renew
// many leases, so --qps 0 (the default) means 2 x N / retry_period: twice the
// steady renewal rate (one PUT per lease per retry period), which leaves room
// for the cold start's GET + CREATE per lease and for retries; burst = N, so
// the cold start is not throttled either (leasehold's own default budget is
// 5,000/s with a burst of 1,000).
//
// A lost lease is not campaigned for again (LeaderElector.Run returns, as in
// every client-go program); leading_at_end says how many still lead. There is
// no EventRecorder (as in the interop peer), and ReleaseOnCancel is off by
// default (--release-on-cancel): the driver deletes the Leases afterwards.
// Each term's work is a goroutine that idles until the term ends.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

type usage struct{ user, sys float64 }

func (u usage) total() float64 { return u.user + u.sys }

func cpuNow() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return usage{tv(ru.Utime), tv(ru.Stime)}
}

// procStatus returns VmRSS, VmHWM (KiB) and Threads from /proc/self/status.
func procStatus() map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range []string{"VmRSS", "VmHWM", "Threads"} {
			if rest, ok := strings.CutPrefix(sc.Text(), k+":"); ok {
				fields := strings.Fields(rest)
				if len(fields) > 0 {
					v, _ := strconv.ParseInt(fields[0], 10, 64)
					out[k] = v
				}
			}
		}
	}
	return out
}

// countSockets counts the open sockets of the process (its connections to kube-apiserver).
func countSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	k := 0
	for _, e := range ents {
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(t, "socket:") {
			k++
		}
	}
	return k
}

func wallS() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path")
	namespace := flag.String("namespace", "leasehold-test", "Lease namespace")
	prefix := flag.String("prefix", "scale-", "Lease names: PREFIX0000, PREFIX0001, ...")
	n := flag.Int("n", 1000, "number of Leases (electors)")
	leaseDuration := flag.Duration("lease-duration", 60*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 40*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 10*time.Second, "retry period")
	window := flag.Duration("window", 60*time.Second, "steady window measured once all lead")
	settle := flag.Duration("settle-timeout", 300*time.Second, "give up waiting for all to lead after this")
	identity := flag.String("identity", "scale-client-go", "holder identity (the same for every Lease)")
	qps := flag.Float64("qps", 0, "client QPS; 0 = 2 x N / retry-period (burst N)")
	releaseOnCancel := flag.Bool("release-on-cancel", false, "release the Leases at the end")
	userAgent := flag.String("user-agent", "scalepeer", "HTTP User-Agent")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	if *n <= 0 {
		fmt.Fprintln(os.Stderr, "scalepeer: --n must be positive")
		os.Exit(2)
	}
	cpuBase := cpuNow()
	stBase := procStatus()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalepeer:", err)
		os.Exit(2)
	}
	q := *qps
	if q == 0 {
		q = 2 * float64(*n) / retryPeriod.Seconds()
	}
	cfg.QPS, cfg.Burst = float32(q), *n
	cfg.UserAgent = *userAgent
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalepeer:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	leading := make([]atomic.Bool, *n)
	var termsStarted, termsStopped atomic.Int64
	electors := make([]*leaderelection.LeaderElector, *n)
	for i := 0; i < *n; i++ {
		name := fmt.Sprintf("%s%04d", *prefix, i)
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: name},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: *identity},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   *leaseDuration,
			RenewDeadline:   *renewDeadline,
			RetryPeriod:     *retryPeriod,
			ReleaseOnCancel: *releaseOnCancel,
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(workCtx context.Context) {
					leading[i].Store(true)
					termsStarted.Add(1)
					<-workCtx.Done() // the term's work: idle until it ends
				},
				OnStoppedLeading: func() {
					// client-go calls this whenever Run returns, led or not.
					if leading[i].Swap(false) {
						termsStopped.Add(1)
					}
				},
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "scalepeer:", err)
			os.Exit(2)
		}
		electors[i] = le
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, le := range electors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			le.Run(ctx)
		}()
	}
	count := func() int {
		k := 0
		for i := range leading {
			if leading[i].Load() {
				k++
			}
		}
		return k
	}

	timeToAll := -1.0
	for {
		k := count()
		s := time.Since(t0).Seconds()
		if k == *n {
			timeToAll = s
			fmt.Fprintf(os.Stderr, "[scale] client-go: %d/%d leading after %.1f s\n", k, *n, s)
			break
		}
		if s > settle.Seconds() {
			fmt.Fprintf(os.Stderr, "[scale] client-go: only %d/%d leading after %.0f s (settle timeout): measuring anyway\n", k, *n, s)
			break
		}
		fmt.Fprintf(os.Stderr, "[scale] client-go: %d/%d leading after %.0f s\n", k, *n, s)
		time.Sleep(time.Second)
	}
	cpuStartup := cpuNow()

	leadingStart := count()
	stoppedStart := termsStopped.Load()
	c0 := cpuNow()
	wall0 := wallS()
	w0 := time.Now()
	minLeading := leadingStart
	nextReport := 10.0
	for time.Since(w0) < *window {
		step := time.Second
		if *window < step {
			step = *window
		}
		time.Sleep(step)
		k := count()
		if k < minLeading {
			minLeading = k
		}
		if el := time.Since(w0).Seconds(); el >= nextReport {
			fmt.Fprintf(os.Stderr, "[scale] client-go: window %.0f/%.0f s, %d/%d leading, CPU %.2f s so far\n",
				el, window.Seconds(), k, *n, cpuNow().total()-c0.total())
			nextReport += 10
		}
	}
	c1 := cpuNow()
	wall1 := wallS()
	windowS := time.Since(w0).Seconds()
	leadingEnd := count()
	st := procStatus()
	lost := termsStopped.Load() - stoppedStart
	sockets := countSockets()

	fmt.Fprintf(os.Stderr, "[scale] client-go: stopping %d electors\n", *n)
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "[scale] client-go: electors still running 30 s after cancel")
	}

	var tta any
	if timeToAll >= 0 {
		tta = timeToAll
	}
	b, _ := json.Marshal(map[string]any{
		"impl": "client-go", "leases": *n, "identity": *identity,
		"lease_ms": leaseDuration.Milliseconds(), "renew_ms": renewDeadline.Milliseconds(),
		"retry_ms": retryPeriod.Milliseconds(), "qps": q, "burst": *n,
		"time_to_all_leading_s": tta, "leading_at_window_start": leadingStart, "leading_at_end": leadingEnd,
		"min_leading_in_window": minLeading, "terms_started": termsStarted.Load(), "terms_lost_in_window": lost,
		"window_s": windowS, "window_wall_start": wall0, "window_wall_end": wall1,
		"cpu_s_window": c1.total() - c0.total(), "cpu_user_s_window": c1.user - c0.user,
		"cpu_sys_s_window": c1.sys - c0.sys, "cpu_s_startup": cpuStartup.total() - cpuBase.total(),
		"rss_kib_base": stBase["VmRSS"], "rss_kib": st["VmRSS"], "hwm_kib": st["VmHWM"], "threads": st["Threads"],
		"sockets": sockets,
	})
	fmt.Println(string(b))
}
