// Command connectproxy is a loopback proxy for leasehold's tests: it accepts
// HTTP CONNECT (kubeconfig proxy-url http://...) and SOCKS5 without
// authentication (proxy-url socks5://...) on one port, tunnels bytes to the
// target, and reports every tunnel as a JSON line on stdout, so a test can
// prove that its requests went through the proxy:
//
//	{"listening":"127.0.0.1:PORT"}
//	{"tunnel":1,"proto":"connect","target":"127.0.0.1:6443"}
//	{"tunnel":2,"proto":"socks5","target":"localhost:6443"}
//	{"refused":"...reason..."}
//
//	connectproxy [--listen 127.0.0.1:0] [--auth USER:PASSWORD]
//
// With --auth, CONNECT requests must carry Proxy-Authorization: Basic for
// that pair (others get 407). It exits when stdin closes (the test ends).
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

var (
	out     = json.NewEncoder(os.Stdout)
	outMu   sync.Mutex
	tunnels atomic.Int64
)

func report(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	auth := flag.String("auth", "", "USER:PASSWORD required on CONNECT (Proxy-Authorization: Basic)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connectproxy:", err)
		os.Exit(1)
	}
	report(map[string]any{"listening": ln.Addr().String()})
	go func() { // the test holds our stdin; when it goes away, so do we
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	want := ""
	if *auth != "" {
		want = "Basic " + base64.StdEncoding.EncodeToString([]byte(*auth))
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "connectproxy:", err)
			os.Exit(1)
		}
		go serve(c, want)
	}
}

func serve(c net.Conn, wantAuth string) {
	defer c.Close()
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	var target, proto string
	if first[0] == 5 {
		proto = "socks5"
		target, err = socksHandshake(br, c)
	} else {
		proto = "connect"
		target, err = connectHandshake(br, c, wantAuth)
	}
	if err != nil {
		report(map[string]any{"refused": err.Error(), "proto": proto})
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		report(map[string]any{"refused": err.Error(), "proto": proto})
		if proto == "socks5" {
			_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		} else {
			_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		}
		return
	}
	defer up.Close()
	if proto == "socks5" {
		_, err = c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	} else {
		_, err = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	}
	if err != nil {
		return
	}
	report(map[string]any{"tunnel": tunnels.Add(1), "proto": proto, "target": target})
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, br); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func connectHandshake(br *bufio.Reader, c net.Conn, wantAuth string) (string, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", fmt.Errorf("bad request: %v", err)
	}
	if req.Method != http.MethodConnect {
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return "", fmt.Errorf("method %s is not CONNECT", req.Method)
	}
	if wantAuth != "" && req.Header.Get("Proxy-Authorization") != wantAuth {
		_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n"+
			"Proxy-Authenticate: Basic realm=\"connectproxy\"\r\nContent-Length: 0\r\n\r\n")
		return "", fmt.Errorf("CONNECT %s without the right Proxy-Authorization", req.Host)
	}
	return req.Host, nil
}

// RFC 1928, no authentication, CONNECT only; IPv4, IPv6 or a domain name.
func socksHandshake(br *bufio.Reader, c net.Conn) (string, error) {
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return "", err
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return "", err
	}
	noAuth := false
	for _, m := range methods {
		noAuth = noAuth || m == 0
	}
	if !noAuth {
		_, _ = c.Write([]byte{5, 0xff})
		return "", fmt.Errorf("socks5 client offers no no-auth method")
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return "", err
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil {
		return "", err
	}
	if req[0] != 5 || req[1] != 1 {
		_, _ = c.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
		return "", fmt.Errorf("socks5 command %d is not CONNECT", req[1])
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(br, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		if _, err := io.ReadFull(br, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case 3:
		n, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			return "", err
		}
		host = string(name)
	default:
		return "", fmt.Errorf("socks5 address type %d", req[3])
	}
	port := make([]byte, 2)
	if _, err := io.ReadFull(br, port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port)))), nil
}
