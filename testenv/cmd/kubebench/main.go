// Command kubebench is the client-go side of leasehold's client benchmark
// (bench/kube_client_bench.cc runs it beside leasehold's kube::Client in the
// same run, on the same control plane, Lease and kubeconfig).
//
//	kubebench --kubeconfig FILE --namespace NS --name LEASE [--n 2000] [--warmup 200]
//
// It times N sequential GETs of the Lease, then N sequential PUTs (each an
// update of spec.renewTime carrying the resourceVersion the previous response
// returned, as a renewing leader does), through a typed clientset with
// client-go's rate limiter turned off (QPS < 0), and prints one JSON object:
//
//	{"impl":"client-go","n":2000,"get_ns_per_op":412345,"get_cpu_ns_per_op":98765,
//	 "put_ns_per_op":2345678,...}
//
// *_ns_per_op is mean wall time; *_cpu_ns_per_op the user+system CPU of the
// whole process (every goroutine and the GC) divided by N.
//
// The Lease must exist. Exit status 1 on any failed request.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func clientGoVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "k8s.io/client-go" {
				return d.Version
			}
		}
	}
	return "unknown"
}

type stats struct {
	NsPerOp    int64
	P50Ns      int64
	P99Ns      int64
	CPUNsPerOp int64 // user+system CPU of the whole process (every goroutine, GC included) per op
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func summarize(samples []time.Duration, cpu time.Duration) stats {
	var total time.Duration
	for _, s := range samples {
		total += s
	}
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return stats{
		NsPerOp:    int64(total) / int64(len(samples)),
		P50Ns:      int64(sorted[len(sorted)/2]),
		P99Ns:      int64(sorted[len(sorted)*99/100]),
		CPUNsPerOp: int64(cpu) / int64(len(samples)),
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kubebench: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (required)")
	ns := flag.String("namespace", "", "the Lease's namespace (required)")
	name := flag.String("name", "", "the Lease's name (required)")
	n := flag.Int("n", 2000, "timed iterations of each operation (>= 1)")
	warmup := flag.Int("warmup", 200, "untimed iterations of each operation before timing (>= 0)")
	flag.Parse()
	if *kubeconfig == "" || *ns == "" || *name == "" || *n < 1 || *warmup < 0 {
		fail("--kubeconfig, --namespace and --name are required; --n >= 1, --warmup >= 0")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig %s: %v", *kubeconfig, err)
	}
	cfg.QPS = -1 // no client-side rate limit (leasehold's bench turns its limiter off too)
	cfg.UserAgent = "leasehold-kubebench/client-go"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail("clientset: %v", err)
	}
	leases := cs.CoordinationV1().Leases(*ns)
	ctx := context.Background()

	get := func() {
		if _, err := leases.Get(ctx, *name, metav1.GetOptions{}); err != nil {
			fail("get leases %s/%s: %v", *ns, *name, err)
		}
	}
	current, err := leases.Get(ctx, *name, metav1.GetOptions{})
	if err != nil {
		fail("get leases %s/%s: %v", *ns, *name, err)
	}
	put := func() {
		now := metav1.NewMicroTime(time.Now())
		current.Spec.RenewTime = &now
		updated, err := leases.Update(ctx, current, metav1.UpdateOptions{})
		if err != nil {
			fail("update leases %s/%s: %v", *ns, *name, err)
		}
		current = updated
	}
	timeIt := func(op func()) stats {
		for i := 0; i < *warmup; i++ {
			op()
		}
		samples := make([]time.Duration, *n)
		cpu0 := processCPU()
		for i := range samples {
			t0 := time.Now()
			op()
			samples[i] = time.Since(t0)
		}
		return summarize(samples, processCPU()-cpu0)
	}
	g := timeIt(get)
	p := timeIt(put)
	out, _ := json.Marshal(map[string]any{
		"impl": "client-go", "client_go_version": clientGoVersion(), "n": *n, "warmup": *warmup,
		"get_ns_per_op": g.NsPerOp, "get_p50_ns": g.P50Ns, "get_p99_ns": g.P99Ns,
		"get_cpu_ns_per_op": g.CPUNsPerOp,
		"put_ns_per_op":     p.NsPerOp, "put_p50_ns": p.P50Ns, "put_p99_ns": p.P99Ns,
		"put_cpu_ns_per_op": p.CPUNsPerOp,
	})
	fmt.Println(string(out))
}
