// Command faultproxy is a loopback TCP forwarder with injectable network
// faults, for leasehold's torture suite (tests/torture/torture.py). It
// listens on 127.0.0.1 and forwards every connection to --target (the
// kube-apiserver); TLS passes through untouched, so a candidate's kubeconfig
// only needs server: https://127.0.0.1:PORT (the serving certificate has the
// 127.0.0.1 SAN). It reads one command per line on stdin and answers each with
// one JSON line on stdout:
//
//	partition   stop forwarding bytes both ways on every connection, and hold
//	            new ones (accepted, never dialed) until heal: a blackhole, as a
//	            real partition, not a reset. Bytes read meanwhile are queued
//	            and delivered in order after heal, as TCP retransmission would.
//	heal        end the partition.
//	blackhole   stop forwarding bytes both ways on every connection open now,
//	            for good, without closing it (a peer that vanished without a
//	            reset: a lost node, a blackholed route). Connections accepted
//	            later are dialed and forwarded as usual. heal does not revive
//	            them; reset closes them.
//	latency MS  delay every chunk in both directions by MS ms, in order
//	            (latency 0 removes it). A chunk is delayed by the latency in
//	            force when it was read.
//	reset       close every connection now (the client sees them end).
//	stats       report only.
//
//	{"listening":"127.0.0.1:PORT","target":"127.0.0.1:6443"}
//	{"ok":"partition","conns":3,"partitioned":true,"latency_ms":0}
//	{"ok":"blackhole","conns":3,"blackholed":3,"partitioned":false,"latency_ms":0}
//	{"error":"unknown command \"x\""}
//
//	faultproxy --target HOST:PORT [--listen 127.0.0.1:0]
//
// It exits when stdin closes (the harness ends).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	out   = json.NewEncoder(os.Stdout)
	outMu sync.Mutex
)

func report(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

// proxy holds the fault state; cond wakes every pump when it changes.
type proxy struct {
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	parted bool
	delay  time.Duration
	conns  map[*link]struct{}
}

// link is one client connection and, once dialed, its upstream.
type link struct {
	client, upstream net.Conn
	once             sync.Once
	frozen           bool // blackholed: never forwards again (guarded by proxy.mu)
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		if l.upstream != nil {
			l.upstream.Close()
		}
	})
}

// waitOpen blocks while partitioned or while l (nil: none) is blackholed; it
// returns the latency in force.
func (p *proxy) waitOpen(l *link) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.parted || (l != nil && l.frozen) {
		p.cond.Wait()
	}
	return p.delay
}

type chunk struct {
	data []byte // nil: the source ended
	at   time.Time
}

// pump copies src to dst through an ordered queue: a reader stamps each chunk
// with its delivery time, a writer delivers it then, never while partitioned.
func (p *proxy) pump(l *link, src, dst net.Conn, done chan<- struct{}) {
	q := make(chan chunk, 256) // full queue: the reader stops reading (TCP back-pressure)
	quit := make(chan struct{})
	defer close(quit) // the writer is gone: the reader must not block on q
	send := func(c chunk) bool {
		select {
		case q <- c:
			return true
		case <-quit:
			return false
		}
	}
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				d := p.delay
				p.mu.Unlock()
				if !send(chunk{append([]byte(nil), buf[:n]...), time.Now().Add(d)}) {
					return
				}
			}
			if err != nil {
				send(chunk{nil, time.Now()})
				return
			}
		}
	}()
	defer func() { done <- struct{}{} }()
	for c := range q { // q is never closed: the writer returns on the end marker
		if wait := time.Until(c.at); wait > 0 {
			time.Sleep(wait)
		}
		p.waitOpen(l) // a partition holds what is in flight; a blackhole, for good
		if c.data == nil {
			return // the source ended: so does the link (after the queue drained)
		}
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}

func (p *proxy) serve(c net.Conn) {
	l := &link{client: c}
	p.mu.Lock()
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	p.waitOpen(nil) // a connection accepted during a partition is held, not dialed
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // the client sees its connection end, as with a refused one
	}
	p.mu.Lock()
	l.upstream = up
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go p.pump(l, c, up, done)
	go p.pump(l, up, c, done)
	<-done // either direction ended: close both
}

func (p *proxy) command(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	p.mu.Lock()
	var err error
	switch f[0] {
	case "partition":
		p.parted = true
	case "heal":
		p.parted = false
	case "blackhole":
		for l := range p.conns {
			l.frozen = true
		}
	case "latency":
		var ms int
		if len(f) != 2 {
			err = fmt.Errorf("usage: latency MS")
		} else if ms, err = strconv.Atoi(f[1]); err == nil && ms < 0 {
			err = fmt.Errorf("latency must be >= 0")
		}
		if err == nil {
			p.delay = time.Duration(ms) * time.Millisecond
		}
	case "reset":
		for l := range p.conns {
			l.client.Close()
			if l.upstream != nil {
				l.upstream.Close()
			}
		}
	case "stats":
	default:
		err = fmt.Errorf("unknown command %q", f[0])
	}
	p.cond.Broadcast()
	n, parted, delay := len(p.conns), p.parted, p.delay
	frozen := 0
	for l := range p.conns {
		if l.frozen {
			frozen++
		}
	}
	p.mu.Unlock()
	if err != nil {
		report(map[string]any{"error": err.Error()})
		return
	}
	report(map[string]any{"ok": f[0], "conns": n, "blackholed": frozen, "partitioned": parted,
		"latency_ms": delay.Milliseconds()})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "HOST:PORT to forward to (required)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "faultproxy: --target is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultproxy:", err)
		os.Exit(1)
	}
	p := &proxy{target: *target, conns: map[*link]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	report(map[string]any{"listening": ln.Addr().String(), "target": *target})
	go func() { // commands on stdin; when it closes, the harness is gone
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			p.command(sc.Text())
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "faultproxy:", err)
			os.Exit(1)
		}
		go p.serve(c)
	}
}
