// Command etcdcluster runs a real etcd v3.6 (testenv/etcd) on loopback for
// leasehold's etcd:// tests: one member or three, plain HTTP or TLS, with or
// without auth. Every member listens on 127.0.0.1 on ports chosen at `up`
// and keeps its data in DIR/memberN.data.
//
//	etcdcluster up      --dir DIR --bin BINDIR [--members 1|3] [--tls] [--auth] [flags]
//	                    start, wait until every member answers /health, set up
//	                    auth, write DIR/cluster.json (and DIR/env)
//	etcdcluster down    --dir DIR               SIGKILL every member (idempotent)
//	etcdcluster kill    --dir DIR --member N    SIGKILL member N (0-based)
//	etcdcluster term    --dir DIR --member N    SIGTERM member N and wait until it exits
//	etcdcluster restart --dir DIR --member N [--no-wait]
//	                    stop member N if it runs, start it again on the same
//	                    ports and data, wait until it answers /health
//	etcdcluster stop    --dir DIR --member N    SIGSTOP member N
//	etcdcluster cont    --dir DIR --member N    SIGCONT member N
//	etcdcluster status  --dir DIR               one JSON line per member: state, pid, /health
//
// up's flags: --tls serves clients (and peers) over TLS with certificates
// generated into DIR/pki, and requires a client certificate unless
// --client-cert-auth=false. --auth creates user root and user elector (role
// elector: readwrite on --prefix, a comma-separated list of key prefixes,
// default /leasehold/) and user nobody (no role), each with a random
// password, then enables auth. --auth-token-ttl sets the simple token's TTL
// in seconds (etcd's default is 300). --heartbeat-ms and --election-ms are
// etcd's raft timings.
//
// DIR/cluster.json (rewritten by kill, restart, stop, cont) describes it all:
//
//	{"endpoints":["https://127.0.0.1:41001",...],"tls":true,"client_cert_auth":true,
//	 "cacert":"DIR/pki/ca.crt","cert":"DIR/pki/client.crt","key":"DIR/pki/client.key",
//	 "auth":true,"user":"elector","password":"...","root_user":"root","root_password":"...",
//	 "nobody_user":"nobody","nobody_password":"...","prefixes":["/leasehold/"],
//	 "members":[{"name":"member0","client_url":"...","peer_url":"...","pid":123,
//	             "state":"running","data_dir":"...","log":"..."},...],...}
//
// Certificates in DIR/pki (only with --tls): ca.crt, ca.key; server.crt and
// server.key (SANs 127.0.0.1, ::1, localhost; serves clients and peers);
// client.crt and client.key, whose subject has no CommonName: with auth
// enabled and a client certificate required, etcd's JSON gateway refuses a
// client certificate with a CommonName (HTTP 400), so this is the one for
// the gateway; client-cn.crt and client-cn.key with CommonName "elector",
// which gRPC clients may use to authenticate as elector without a password;
// untrusted-ca.crt, untrusted-client.crt and untrusted-client.key, from a CA
// the members do not trust (TLS failure tests).
//
// Each member runs in its own process group. down also kills any process
// whose command line holds --data-dir=DIR/..., so a lost cluster.json leaves
// nothing behind.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
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
)

type member struct {
	Name      string   `json:"name"`
	ClientURL string   `json:"client_url"`
	PeerURL   string   `json:"peer_url"`
	Pid       int      `json:"pid"`   // also its process group; 0 when not running
	State     string   `json:"state"` // running, stopped (SIGSTOP), killed, exited
	DataDir   string   `json:"data_dir"`
	Log       string   `json:"log"`
	Args      []string `json:"args"`
}

type cluster struct {
	Endpoints      []string  `json:"endpoints"`
	TLS            bool      `json:"tls"`
	ClientCertAuth bool      `json:"client_cert_auth"`
	CACert         string    `json:"cacert,omitempty"`
	Cert           string    `json:"cert,omitempty"`
	Key            string    `json:"key,omitempty"`
	CertCN         string    `json:"cert_cn,omitempty"`
	KeyCN          string    `json:"key_cn,omitempty"`
	UntrustedCA    string    `json:"untrusted_cacert,omitempty"`
	UntrustedCert  string    `json:"untrusted_cert,omitempty"`
	UntrustedKey   string    `json:"untrusted_key,omitempty"`
	Auth           bool      `json:"auth"`
	User           string    `json:"user,omitempty"`
	Password       string    `json:"password,omitempty"`
	RootUser       string    `json:"root_user,omitempty"`
	RootPassword   string    `json:"root_password,omitempty"`
	NobodyUser     string    `json:"nobody_user,omitempty"`
	NobodyPassword string    `json:"nobody_password,omitempty"`
	Role           string    `json:"role,omitempty"`
	Prefixes       []string  `json:"prefixes,omitempty"`
	AuthTokenTTL   int       `json:"auth_token_ttl,omitempty"`
	Dir            string    `json:"dir"`
	Members        []*member `json:"members"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	dir := fs.String("dir", "", "state directory")
	bin := fs.String("bin", "", "up: directory holding etcd")
	members := fs.Int("members", 1, "up: number of members (1 or 3; any odd number works)")
	useTLS := fs.Bool("tls", false, "up: TLS for clients and peers")
	certAuth := fs.Bool("client-cert-auth", true, "up, with --tls: require a client certificate")
	auth := fs.Bool("auth", false, "up: enable auth (users root, elector, nobody)")
	prefix := fs.String("prefix", "/leasehold/", "up, with --auth: comma-separated key prefixes elector may read and write")
	tokenTTL := fs.Int("auth-token-ttl", 0, "up: simple auth token TTL in seconds (0: etcd's default, 300)")
	heartbeat := fs.Int("heartbeat-ms", 100, "up: raft heartbeat interval")
	election := fs.Int("election-ms", 1000, "up: raft election timeout")
	idx := fs.Int("member", -1, "kill, term, restart, stop, cont: the member's index (0-based)")
	noWait := fs.Bool("no-wait", false, "restart: do not wait for /health")
	_ = fs.Parse(os.Args[2:])
	if *dir == "" {
		fail("--dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err.Error())
	}
	*dir = abs
	if cmd != "down" && cmd != "up" && cmd != "status" && *idx < 0 {
		fail(cmd + " needs --member N")
	}
	switch cmd {
	case "up":
		if *bin == "" {
			fail("--bin is required for up")
		}
		if *members < 1 || *members%2 == 0 {
			fail("--members must be odd (1 or 3)")
		}
		o := upOpts{members: *members, tls: *useTLS, certAuth: *useTLS && *certAuth, auth: *auth,
			prefixes: splitList(*prefix), tokenTTL: *tokenTTL, heartbeat: *heartbeat, election: *election}
		err = up(*dir, *bin, o)
	case "down":
		err = down(*dir)
	case "status":
		err = status(*dir)
	case "kill", "term", "restart", "stop", "cont":
		err = withMember(*dir, *idx, func(c *cluster, m *member) error {
			switch cmd {
			case "kill":
				say("SIGKILL %s (pid %d)", m.Name, m.Pid)
				kill(m, syscall.SIGKILL)
				m.State = "killed"
			case "term":
				say("SIGTERM %s (pid %d)", m.Name, m.Pid)
				kill(m, syscall.SIGTERM)
				m.State = "exited"
			case "stop":
				if !alive(m.Pid) {
					return fmt.Errorf("%s is not running", m.Name)
				}
				say("SIGSTOP %s (pid %d)", m.Name, m.Pid)
				_ = syscall.Kill(-m.Pid, syscall.SIGSTOP)
				m.State = "stopped"
			case "cont":
				if !alive(m.Pid) {
					return fmt.Errorf("%s is not running", m.Name)
				}
				say("SIGCONT %s (pid %d)", m.Name, m.Pid)
				_ = syscall.Kill(-m.Pid, syscall.SIGCONT)
				m.State = "running"
			case "restart":
				if alive(m.Pid) {
					say("stopping %s (pid %d)", m.Name, m.Pid)
					kill(m, syscall.SIGTERM)
				}
				if err := spawn(m); err != nil {
					return err
				}
				say("started %s (pid %d) on %s", m.Name, m.Pid, m.ClientURL)
				if err := save(c); err != nil {
					return err
				}
				if !*noWait {
					t0 := time.Now()
					if err := waitHealthy(c, m, 60*time.Second); err != nil {
						return fmt.Errorf("%s did not become healthy: %w (see %s)", m.Name, err, m.Log)
					}
					say("%s healthy in %.1fs", m.Name, time.Since(t0).Seconds())
				}
			}
			return nil
		})
	default:
		usage()
	}
	if err != nil {
		fail(err.Error())
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: etcdcluster up|down|kill|term|restart|stop|cont|status --dir DIR [--member N] [flags]")
	os.Exit(2)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "etcdcluster:", msg)
	os.Exit(1)
}

func say(format string, a ...any) {
	fmt.Printf("[etcdcluster] "+format+"\n", a...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type upOpts struct {
	members             int
	tls, certAuth, auth bool
	prefixes            []string
	tokenTTL            int
	heartbeat, election int
}

func statePath(dir string) string { return filepath.Join(dir, "cluster.json") }

// lock serialises the commands that rewrite cluster.json (a test may kill two
// members at once).
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func load(dir string) (*cluster, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var c cluster
	return &c, json.Unmarshal(b, &c)
}

func save(c *cluster) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(c.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(c.Dir))
}

func withMember(dir string, idx int, f func(*cluster, *member) error) error {
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := load(dir)
	if err != nil {
		return err
	}
	if idx >= len(c.Members) {
		return fmt.Errorf("no member %d (the cluster has %d)", idx, len(c.Members))
	}
	m := c.Members[idx]
	ferr := f(c, m)
	if !alive(m.Pid) {
		m.Pid = 0
		if m.State == "running" || m.State == "stopped" {
			m.State = "exited"
		}
	}
	if err := save(c); err != nil {
		return err
	}
	return ferr
}

func up(dir, bin string, o upOpts) error {
	start := time.Now()
	_ = down(dir) // a crashed earlier run on the same DIR leaves nothing behind
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = upOnce(dir, bin, o, start); err == nil || !errors.Is(err, errPortTaken) {
			break
		}
		say("%v; again on other ports", err)
	}
	if err != nil {
		_ = down(dir)
	}
	return err
}

var errPortTaken = errors.New("a port chosen at start was taken meanwhile")

func upOnce(dir, bin string, o upOpts, start time.Time) error {
	_ = down(dir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	c := &cluster{Dir: dir, TLS: o.tls, ClientCertAuth: o.certAuth, Auth: o.auth}
	scheme := "http"
	if o.tls {
		scheme = "https"
		if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
			return err
		}
		if err := writePKI(filepath.Join(dir, "pki")); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		p := func(f string) string { return filepath.Join(dir, "pki", f) }
		c.CACert, c.Cert, c.Key = p("ca.crt"), p("client.crt"), p("client.key")
		c.CertCN, c.KeyCN = p("client-cn.crt"), p("client-cn.key")
		c.UntrustedCA, c.UntrustedCert, c.UntrustedKey = p("untrusted-ca.crt"), p("untrusted-client.crt"), p("untrusted-client.key")
	}
	ports, err := freePorts(2 * o.members)
	if err != nil {
		return err
	}
	var initial []string
	for i := 0; i < o.members; i++ {
		m := &member{
			Name:      fmt.Sprintf("member%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
			DataDir:   filepath.Join(dir, fmt.Sprintf("member%d.data", i)),
			Log:       filepath.Join(dir, fmt.Sprintf("member%d.log", i)),
		}
		c.Members = append(c.Members, m)
		c.Endpoints = append(c.Endpoints, m.ClientURL)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	token := "leasehold-" + randomHex(6)
	for _, m := range c.Members {
		m.Args = []string{
			filepath.Join(bin, "etcd"),
			"--name=" + m.Name, "--data-dir=" + m.DataDir,
			"--listen-client-urls=" + m.ClientURL, "--advertise-client-urls=" + m.ClientURL,
			"--listen-peer-urls=" + m.PeerURL, "--initial-advertise-peer-urls=" + m.PeerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-state=new", "--initial-cluster-token=" + token,
			"--heartbeat-interval=" + strconv.Itoa(o.heartbeat),
			"--election-timeout=" + strconv.Itoa(o.election),
			"--log-level=warn", "--unsafe-no-fsync", "--quota-backend-bytes=1073741824",
		}
		if o.tokenTTL > 0 {
			m.Args = append(m.Args, "--auth-token-ttl="+strconv.Itoa(o.tokenTTL))
			c.AuthTokenTTL = o.tokenTTL
		}
		if o.tls {
			m.Args = append(m.Args,
				"--cert-file="+filepath.Join(dir, "pki", "server.crt"),
				"--key-file="+filepath.Join(dir, "pki", "server.key"),
				"--peer-cert-file="+filepath.Join(dir, "pki", "server.crt"),
				"--peer-key-file="+filepath.Join(dir, "pki", "server.key"),
				"--peer-trusted-ca-file="+c.CACert,
				"--peer-client-cert-auth")
			// etcd requires a client certificate whenever it has a
			// --trusted-ca-file, --client-cert-auth or not.
			if o.certAuth {
				m.Args = append(m.Args, "--trusted-ca-file="+c.CACert, "--client-cert-auth")
			}
		}
	}
	for _, m := range c.Members {
		say("starting %s: clients %s, peers %s", m.Name, m.ClientURL, m.PeerURL)
		if err := spawn(m); err != nil {
			return err
		}
	}
	if err := save(c); err != nil {
		return err
	}
	for _, m := range c.Members {
		if err := waitHealthy(c, m, 60*time.Second); err != nil {
			if b, _ := os.ReadFile(m.Log); bytes.Contains(b, []byte("address already in use")) {
				return fmt.Errorf("%s: %w", m.Name, errPortTaken)
			}
			return fmt.Errorf("%s did not become healthy: %w (see %s)", m.Name, err, m.Log)
		}
		say("%s healthy after %.1fs", m.Name, time.Since(start).Seconds())
	}
	if o.auth {
		if err := setupAuth(c, o.prefixes); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		say("auth enabled: root, elector (readwrite on %s), nobody (no role)", strings.Join(o.prefixes, " "))
		for _, m := range c.Members {
			if err := waitHealthy(c, m, 30*time.Second); err != nil {
				return fmt.Errorf("%s unhealthy after enabling auth: %w", m.Name, err)
			}
		}
	}
	if err := save(c); err != nil {
		return err
	}
	env := fmt.Sprintf("ETCD_ENDPOINTS=%s\n", strings.Join(c.Endpoints, ","))
	if c.TLS {
		env += fmt.Sprintf("ETCD_CACERT=%s\nETCD_CERT=%s\nETCD_KEY=%s\n", c.CACert, c.Cert, c.Key)
	}
	if c.Auth {
		env += fmt.Sprintf("ETCD_USER=%s\nETCD_PASSWORD=%s\n", c.User, c.Password)
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	say("ready in %.1fs: %s (%s)", time.Since(start).Seconds(), strings.Join(c.Endpoints, ","), statePath(dir))
	return nil
}

func spawn(m *member) error {
	logf, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(m.Args[0], m.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	m.Pid, m.State = cmd.Process.Pid, "running"
	go func() { _ = cmd.Wait() }() // reap it if it dies while we still run
	return nil
}

// alive: the process exists and is not a zombie (a member killed after its
// parent exited may wait to be reaped).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// kill sends sig to the member's process group (SIGCONT too, so a stopped
// member can act on SIGTERM) and waits until it is gone; SIGKILL after 10 s.
func kill(m *member, sig syscall.Signal) {
	if !alive(m.Pid) {
		return
	}
	_ = syscall.Kill(-m.Pid, sig)
	_ = syscall.Kill(-m.Pid, syscall.SIGCONT)
	deadline := time.Now().Add(10 * time.Second)
	for alive(m.Pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(m.Pid) {
		_ = syscall.Kill(-m.Pid, syscall.SIGKILL)
		for i := 0; i < 250 && alive(m.Pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func down(dir string) error {
	if c, err := load(dir); err == nil {
		for _, m := range c.Members {
			if alive(m.Pid) {
				say("killing %s (pid %d)", m.Name, m.Pid)
				kill(m, syscall.SIGKILL)
			}
			m.Pid, m.State = 0, "killed"
		}
		_ = save(c)
	} else if !errors.Is(err, os.ErrNotExist) {
		say("cannot read %s: %v; looking for members by --data-dir", statePath(dir), err)
	}
	// Anything else started with a data dir under DIR (cluster.json lost or
	// written before a member was spawned).
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(a, "--data-dir="+dir+"/") && alive(pid) {
				say("killing pid %d (%s)", pid, a)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				for i := 0; i < 250 && alive(pid); i++ {
					time.Sleep(20 * time.Millisecond)
				}
				break
			}
		}
	}
	return nil
}

func status(dir string) error {
	c, err := load(dir)
	if err != nil {
		return err
	}
	client := httpClient(c)
	for _, m := range c.Members {
		st := m.State
		if !alive(m.Pid) {
			st = "exited"
			if m.State == "killed" {
				st = "killed"
			}
		}
		health := ""
		if st == "running" {
			if resp, err := client.Get(m.ClientURL + "/health"); err != nil {
				health = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				health = strings.TrimSpace(string(b))
			}
		}
		b, _ := json.Marshal(map[string]any{"name": m.Name, "client_url": m.ClientURL, "pid": m.Pid, "state": st, "health": health})
		fmt.Println(string(b))
	}
	return nil
}

// httpClient: HTTP/1.1 with the cluster's CA and client certificate.
func httpClient(c *cluster) *http.Client {
	tr := &http.Transport{}
	if c.TLS {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(c.CACert); err == nil {
			pool.AppendCertsFromPEM(b)
		}
		cfg := &tls.Config{RootCAs: pool}
		if cert, err := tls.LoadX509KeyPair(c.Cert, c.Key); err == nil {
			cfg.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

func waitHealthy(c *cluster, m *member, limit time.Duration) error {
	client := httpClient(c)
	deadline := time.Now().Add(limit)
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		if !alive(m.Pid) {
			return fmt.Errorf("%s exited", m.Name)
		}
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// gateway POSTs one JSON request to etcd's gRPC gateway (member 0) and
// decodes the answer; a non-200 answer is an error carrying its body.
func gateway(c *cluster, path, token string, req any, resp any) error {
	b, _ := json.Marshal(req)
	r, _ := http.NewRequest("POST", c.Endpoints[0]+path, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", token)
	}
	res, err := httpClient(c).Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d %s", path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	if resp != nil {
		return json.Unmarshal(body, resp)
	}
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// prefixEnd is clientv3.GetPrefixRangeEnd.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

func setupAuth(c *cluster, prefixes []string) error {
	c.RootUser, c.RootPassword = "root", randomHex(12)
	c.User, c.Password = "elector", randomHex(12)
	c.NobodyUser, c.NobodyPassword = "nobody", randomHex(12)
	c.Role, c.Prefixes = "elector", prefixes
	steps := []struct {
		path string
		req  any
	}{
		{"/v3/auth/user/add", map[string]any{"name": c.RootUser, "password": c.RootPassword}},
		{"/v3/auth/user/grant", map[string]any{"user": c.RootUser, "role": "root"}},
		{"/v3/auth/role/add", map[string]any{"name": c.Role}},
	}
	for _, p := range prefixes {
		steps = append(steps, struct {
			path string
			req  any
		}{"/v3/auth/role/grant", map[string]any{"name": c.Role, "perm": map[string]any{
			"permType": "READWRITE", "key": b64(p), "range_end": b64(prefixEnd(p))}}})
	}
	steps = append(steps, []struct {
		path string
		req  any
	}{
		{"/v3/auth/user/add", map[string]any{"name": c.User, "password": c.Password}},
		{"/v3/auth/user/grant", map[string]any{"user": c.User, "role": c.Role}},
		{"/v3/auth/user/add", map[string]any{"name": c.NobodyUser, "password": c.NobodyPassword}},
		{"/v3/auth/enable", map[string]any{}},
	}...)
	for _, s := range steps {
		if err := gateway(c, s.path, "", s.req, nil); err != nil {
			return err
		}
	}
	// Prove it: elector may write under its first prefix, and without a
	// token nothing may be read.
	var tok struct {
		Token string `json:"token"`
	}
	if err := gateway(c, "/v3/auth/authenticate", "", map[string]any{"name": c.User, "password": c.Password}, &tok); err != nil {
		return err
	}
	if err := gateway(c, "/v3/kv/put", tok.Token, map[string]any{"key": b64(prefixes[0] + "etcdcluster-probe"), "value": b64("ok")}, nil); err != nil {
		return fmt.Errorf("elector cannot write under %s: %w", prefixes[0], err)
	}
	if err := gateway(c, "/v3/kv/deleterange", tok.Token, map[string]any{"key": b64(prefixes[0] + "etcdcluster-probe")}, nil); err != nil {
		return err
	}
	if err := gateway(c, "/v3/kv/range", "", map[string]any{"key": b64(prefixes[0])}, nil); err == nil {
		return errors.New("a range without a token succeeded after auth/enable")
	}
	return nil
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

// writePKI: see the package comment for the files.
func writePKI(pki string) error {
	p := func(f string) string { return filepath.Join(pki, f) }
	now := time.Now()
	newCA := func(name, cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		cert, _ := x509.ParseCertificate(der)
		if err := writePEM(p(name+".crt"), "CERTIFICATE", der); err != nil {
			return nil, nil, err
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return cert, key, writePEM(p(name+".key"), "EC PRIVATE KEY", kb)
	}
	issue := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, serial int64, tmpl *x509.Certificate) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(10*24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
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
	ca, caKey, err := newCA("ca", "leasehold-etcd-testenv-ca")
	if err != nil {
		return err
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if err := issue(ca, caKey, "server", 2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcd-testenv-member"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		ExtKeyUsage: both,
	}); err != nil {
		return err
	}
	if err := issue(ca, caKey, "client", 3, &x509.Certificate{
		Subject: pkix.Name{Organization: []string{"leasehold-testenv"}}, ExtKeyUsage: client,
	}); err != nil {
		return err
	}
	if err := issue(ca, caKey, "client-cn", 4, &x509.Certificate{
		Subject: pkix.Name{CommonName: "elector"}, ExtKeyUsage: client,
	}); err != nil {
		return err
	}
	uca, ucaKey, err := newCA("untrusted-ca", "leasehold-etcd-testenv-untrusted-ca")
	if err != nil {
		return err
	}
	return issue(uca, ucaKey, "untrusted-client", 2, &x509.Certificate{
		Subject: pkix.Name{Organization: []string{"leasehold-testenv-untrusted"}}, ExtKeyUsage: client,
	})
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
