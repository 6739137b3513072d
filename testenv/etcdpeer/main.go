// Command etcdpeer is the Go reference elector for leasehold's etcd://
// interop tests and benchmarks: a candidate built on
// go.etcd.io/etcd/client/v3/concurrency, exactly as a Go program would use
// it (NewSession with --ttl, NewElection on --prefix, Campaign with --id as
// the value, Observe for the leader, Resign and Session.Close on exit). Its
// own Go module, so its client version follows the etcd server's (v3.6).
//
// It prints the same JSON lines as testenv/peer, one per event:
//
//	{"event":"campaigning","identity":"b","leader":"","transitions":0,"mono_ns":120,"impl":"etcd-go","key":"/leasehold/x/694d9a...","lease":"694d9a...","ttl":15}
//	{"event":"started","identity":"b","leader":"b","transitions":42,"rev":42,"key":"/leasehold/x/694d9a...","lease":"694d9a...","mono_ns":123,"impl":"etcd-go"}
//	{"event":"new_leader","identity":"b","leader":"a","transitions":0,"rev":40,"key":"/leasehold/x/694d8f...","mono_ns":99,"impl":"etcd-go"}
//	{"event":"stopped","identity":"b","leader":"","transitions":42,"rev":42,"reason":"signal","mono_ns":456,"impl":"etcd-go"}
//	{"event":"exited","identity":"b","leader":"","transitions":42,"rev":42,"code":0,"mono_ns":460,"impl":"etcd-go"}
//
// The fencing token is the leader key's create revision (Election.Rev()):
// "rev", and also "transitions", where the checker reads the client-go
// peer's token. mono_ns is CLOCK_MONOTONIC, the clock leasehold reports.
// new_leader comes from Election.Observe, once per leader key (a
// Proclaim of the same key is not a new leader); its rev is that key's
// create revision.
//
// "started" is printed when Campaign returns. On SIGTERM or SIGINT the term
// ends first ("stopped", reason "signal"), then it resigns (deletes its key
// if the create revision still matches), closes the session (revokes the
// lease), prints "exited" and exits 0. When the session ends on its own
// (Session.Done(): the keepalive stopped, e.g. the lease expired or was
// revoked) it prints "stopped" (reason "session") if it led, "exited", and
// exits 1. Campaign failing (e.g. a compacted watch revision) prints
// "error" and exits 1 as well. --no-resign skips Resign and Close on SIGTERM
// (the lease then expires after the TTL, as after a crash).
//
//	etcdpeer --endpoints URL[,URL...] --prefix /leasehold/NAME --id ID [--ttl 15]
//	         [--cacert F --cert F --key F] [--user U --password P] [--no-resign]
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

func monoNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

var (
	outMu    sync.Mutex
	identity string
)

func emit(event, leader string, rev int64, extra map[string]any) {
	m := map[string]any{
		"event": event, "identity": identity, "leader": leader,
		"transitions": rev, "mono_ns": monoNS(), "impl": "etcd-go",
	}
	if rev != 0 {
		m["rev"] = rev
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Println(string(b))
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "etcdpeer: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated client URLs")
	prefix := flag.String("prefix", "", "election prefix (keys are PREFIX/<lease ID in hex>)")
	flag.StringVar(&identity, "id", "", "candidate identity (the value of its key)")
	ttl := flag.Int("ttl", 15, "session lease TTL in seconds")
	cacert := flag.String("cacert", "", "CA bundle to verify the members")
	cert := flag.String("cert", "", "client certificate")
	key := flag.String("key", "", "client key")
	user := flag.String("user", "", "user name")
	password := flag.String("password", "", "password")
	dialTimeout := flag.Duration("dial-timeout", 5*time.Second, "dial timeout")
	noResign := flag.Bool("no-resign", false, "on SIGTERM exit without Resign or Session.Close")
	verbose := flag.Bool("v", false, "client logs (zap, warn and above) on stderr")
	flag.Parse()
	if *endpoints == "" || *prefix == "" || identity == "" {
		fatal("--endpoints, --prefix and --id are required")
	}
	cfg := clientv3.Config{
		Endpoints:   strings.Split(*endpoints, ","),
		DialTimeout: *dialTimeout,
		Username:    *user,
		Password:    *password,
		Logger:      zap.NewNop(),
	}
	if *verbose {
		lg, err := zap.NewProduction()
		if err == nil {
			cfg.Logger = lg
		}
	}
	if *cacert != "" || *cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if *cacert != "" {
			b, err := os.ReadFile(*cacert)
			if err != nil {
				fatal("%v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				fatal("no certificate in %s", *cacert)
			}
			tc.RootCAs = pool
		}
		if *cert != "" {
			c, err := tls.LoadX509KeyPair(*cert, *key)
			if err != nil {
				fatal("%v", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		fatal("%v", err)
	}
	defer cli.Close()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// The session's lease is granted with a context that never ends (a
	// deadline here would also end its keepalive), as most callers do.
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(*ttl))
	if err != nil {
		fatal("session: %v", err)
	}
	lease := fmt.Sprintf("%x", int64(sess.Lease()))
	el := concurrency.NewElection(sess, *prefix)
	myKey := fmt.Sprintf("%s/%s", *prefix, lease)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Observe: one new_leader per leader key. The channel closes when the
	// watch is disrupted; observe again after a pause.
	go func() {
		lastKey, lastRev := "", int64(0)
		for ctx.Err() == nil {
			for resp := range el.Observe(ctx) {
				if len(resp.Kvs) == 0 {
					continue
				}
				kv := resp.Kvs[0]
				if string(kv.Key) == lastKey && kv.CreateRevision == lastRev {
					continue
				}
				lastKey, lastRev = string(kv.Key), kv.CreateRevision
				emit("new_leader", string(kv.Value), 0, map[string]any{"rev": kv.CreateRevision, "key": lastKey})
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	// The term as this process reports it, under termMu: "stopped" exactly
	// once per "started".
	var termMu sync.Mutex
	leading, stopping := false, false
	var rev int64
	endTerm := func(reason string) {
		if leading {
			leading = false
			emit("stopped", "", rev, map[string]any{"reason": reason})
		}
	}

	emit("campaigning", "", 0, map[string]any{"key": myKey, "lease": lease, "ttl": *ttl})
	elected := make(chan error, 1)
	go func() { elected <- el.Campaign(ctx, identity) }()

	code := 0
	reason := ""
	for reason == "" {
		select {
		case err := <-elected:
			elected = nil
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				emit("error", "", 0, map[string]any{"error": "campaign: " + err.Error()})
				reason, code = "campaign", 1
				break
			}
			termMu.Lock()
			if !stopping {
				rev = el.Rev()
				leading = true
				emit("started", identity, rev, map[string]any{"key": el.Key(), "lease": lease})
			}
			termMu.Unlock()
		case <-sess.Done():
			termMu.Lock()
			endTerm("session")
			termMu.Unlock()
			reason, code = "session", 1
		case s := <-sigs:
			termMu.Lock()
			stopping = true
			endTerm("signal")
			termMu.Unlock()
			reason = "signal:" + s.String()
		}
	}
	if reason == "session" {
		cancel()
		emit("exited", "", rev, map[string]any{"code": code, "reason": "session ended (lease expired or revoked)"})
		os.Exit(code)
	}
	if strings.HasPrefix(reason, "signal") && *noResign {
		emit("exited", "", rev, map[string]any{"code": 0, "reason": reason + ", no resign"})
		os.Exit(0)
	}
	// Campaign still waiting: cancelling it deletes our key (Campaign
	// resigns on a cancelled context).
	cancel()
	if elected != nil {
		<-elected
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	var failures []string
	if err := el.Resign(rctx); err != nil {
		failures = append(failures, "resign: "+err.Error())
	}
	if err := sess.Close(); err != nil && !errors.Is(err, context.Canceled) {
		failures = append(failures, "revoke: "+err.Error())
	}
	extra := map[string]any{"code": code, "reason": reason}
	if len(failures) > 0 {
		extra["error"] = strings.Join(failures, "; ")
	}
	emit("exited", "", rev, extra)
	os.Exit(code)
}
