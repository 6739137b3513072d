// Command etcdsmoke proves that an etcdcluster (cmd/etcdcluster) and the Go
// reference elector (testenv/etcdpeer) work together: two etcdpeer
// candidates campaign on a fresh prefix, the leader gets a fault, the other
// must take over with a larger fencing token.
//
//	etcdsmoke --dir DIR --peer BIN [--ttl 3] [--mode term|kill|stop|all]
//
//	term  SIGTERM the leader: it prints "stopped" (resigned), the other
//	      starts within 2 s of it.
//	kill  SIGKILL the leader: the other starts within TTL + 3 s.
//	stop  SIGSTOP the leader for TTL + 2 s: the other starts meanwhile; after
//	      SIGCONT the old leader prints "stopped" (reason "session") and exits 1.
//
// DIR is the etcdcluster state dir (endpoints, TLS files and user from
// DIR/cluster.json). Exit status 0 means every check held; it prints one
// line per mode.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

type clusterFile struct {
	Endpoints []string `json:"endpoints"`
	CACert    string   `json:"cacert"`
	Cert      string   `json:"cert"`
	Key       string   `json:"key"`
	User      string   `json:"user"`
	Password  string   `json:"password"`
}

type event struct {
	Event  string `json:"event"`
	Leader string `json:"leader"`
	Rev    int64  `json:"rev"`
	Reason string `json:"reason"`
	Code   int    `json:"code"`
	Mono   int64  `json:"mono_ns"`
}

type cand struct {
	id     string
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []event
	done   chan struct{}
	exit   int
}

func (c *cand) find(name string, after int) (event, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := after; i < len(c.events); i++ {
		if c.events[i].Event == name {
			return c.events[i], i, true
		}
	}
	return event{}, 0, false
}

func (c *cand) wait(name string, limit time.Duration) (event, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if e, _, ok := c.find(name, 0); ok {
			return e, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return event{}, fmt.Errorf("%s printed no %q within %s", c.id, name, limit)
}

func start(peer string, args []string, id string) (*cand, error) {
	c := &cand{id: id, done: make(chan struct{})}
	c.cmd = exec.Command(peer, append(args, "--id", id)...)
	c.cmd.Stderr = os.Stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				c.mu.Lock()
				c.events = append(c.events, e)
				c.mu.Unlock()
			}
		}
		_ = c.cmd.Wait()
		c.exit = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	return c, nil
}

func (c *cand) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGCONT)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func run(mode, peer string, base []string, ttl int) error {
	prefix := fmt.Sprintf("/leasehold/etcdsmoke-%s-%d", mode, time.Now().UnixNano())
	args := append(append([]string{}, base...), "--prefix", prefix, "--ttl", fmt.Sprint(ttl))
	a, err := start(peer, args, "a")
	if err != nil {
		return err
	}
	defer a.stop()
	ea, err := a.wait("started", 15*time.Second)
	if err != nil {
		return err
	}
	b, err := start(peer, args, "b")
	if err != nil {
		return err
	}
	defer b.stop()
	if _, err := b.wait("campaigning", 15*time.Second); err != nil {
		return err
	}
	// b's new_leader for a: b is waiting behind a.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, _, ok := b.find("new_leader", 0); ok && e.Leader == "a" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("b never observed a as the leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, ok := b.find("started", 0); ok {
		return fmt.Errorf("b started while a leads")
	}
	t0 := time.Now()
	var eb event
	switch mode {
	case "term":
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		sa, err := a.wait("stopped", 5*time.Second)
		if err != nil {
			return err
		}
		if eb, err = b.wait("started", 5*time.Second); err != nil {
			return err
		}
		<-a.done
		if a.exit != 0 {
			return fmt.Errorf("a exited %d after SIGTERM", a.exit)
		}
		if gap := time.Duration(eb.Mono - sa.Mono); gap < 0 || gap > 2*time.Second {
			return fmt.Errorf("b started %v after a stopped (want 0..2s)", gap)
		}
		fmt.Printf("etcdsmoke term: a rev %d stopped, b rev %d started %.1f ms later\n",
			ea.Rev, eb.Rev, float64(eb.Mono-sa.Mono)/1e6)
	case "kill":
		_ = a.cmd.Process.Kill()
		if eb, err = b.wait("started", time.Duration(ttl+3)*time.Second); err != nil {
			return err
		}
		fmt.Printf("etcdsmoke kill: a rev %d SIGKILLed, b rev %d started %.2f s later (TTL %d s)\n",
			ea.Rev, eb.Rev, time.Since(t0).Seconds(), ttl)
	case "stop":
		_ = a.cmd.Process.Signal(syscall.SIGSTOP)
		if eb, err = b.wait("started", time.Duration(ttl+3)*time.Second); err != nil {
			_ = a.cmd.Process.Signal(syscall.SIGCONT)
			return err
		}
		took := time.Since(t0)
		time.Sleep(time.Duration(ttl)*time.Second + 2*time.Second - took)
		_ = a.cmd.Process.Signal(syscall.SIGCONT)
		sa, err := a.wait("stopped", time.Duration(ttl+5)*time.Second)
		if err != nil {
			return err
		}
		if sa.Reason != "session" {
			return fmt.Errorf("a stopped with reason %q, want session", sa.Reason)
		}
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("a did not exit after its session ended")
		}
		if a.exit != 1 {
			return fmt.Errorf("a exited %d after its session ended, want 1", a.exit)
		}
		fmt.Printf("etcdsmoke stop: a rev %d SIGSTOPped, b rev %d started %.2f s later; a after SIGCONT: "+
			"stopped (session) %.2f s after b started, exit 1\n",
			ea.Rev, eb.Rev, took.Seconds(), float64(sa.Mono-eb.Mono)/1e9)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if eb.Rev <= ea.Rev {
		return fmt.Errorf("fencing token did not increase: a %d, b %d", ea.Rev, eb.Rev)
	}
	if eb.Leader != "b" {
		return fmt.Errorf("b started with leader %q", eb.Leader)
	}
	return nil
}

func main() {
	dir := flag.String("dir", "", "etcdcluster state dir")
	peer := flag.String("peer", "", "etcdpeer binary")
	ttl := flag.Int("ttl", 3, "session TTL in seconds")
	mode := flag.String("mode", "all", "term, kill, stop or all")
	flag.Parse()
	if *dir == "" || *peer == "" {
		fmt.Fprintln(os.Stderr, "usage: etcdsmoke --dir DIR --peer BIN [--ttl 3] [--mode term|kill|stop|all]")
		os.Exit(2)
	}
	b, err := os.ReadFile(filepath.Join(*dir, "cluster.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdsmoke:", err)
		os.Exit(2)
	}
	var c clusterFile
	if err := json.Unmarshal(b, &c); err != nil {
		fmt.Fprintln(os.Stderr, "etcdsmoke:", err)
		os.Exit(2)
	}
	base := []string{"--endpoints", strings.Join(c.Endpoints, ",")}
	if c.CACert != "" {
		base = append(base, "--cacert", c.CACert, "--cert", c.Cert, "--key", c.Key)
	}
	if c.User != "" {
		base = append(base, "--user", c.User, "--password", c.Password)
	}
	modes := []string{*mode}
	if *mode == "all" {
		modes = []string{"term", "kill", "stop"}
	}
	failed := 0
	for _, m := range modes {
		if err := run(m, *peer, base, *ttl); err != nil {
			fmt.Printf("etcdsmoke %s: FAILED: %v\n", m, err)
			failed++
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
