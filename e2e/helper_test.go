package e2e

// The test binary doubles as the servers and clients run inside the network
// namespaces: TestMain re-enters here when SVC2RULES_E2E_HELPER is set
// (started through "ip netns exec NS <test binary>").

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	helperEnv = "SVC2RULES_E2E_HELPER" // "server" or "client"
	specEnv   = "SVC2RULES_E2E_SPEC"   // JSON serverSpec or clientSpec
)

// serverSpec: one pod's servers. Each address gets a TCP listener on each
// of TCPPorts and a UDP socket on each of UDPPorts; all answer
// "id=<ID> src=<peer ip>".
type serverSpec struct {
	ID       string   `json:"id"`
	Addrs    []string `json:"addrs"`
	TCPPorts []int    `json:"tcpPorts"`
	UDPPorts []int    `json:"udpPorts"`
	// MaxLife bounds the server's life even if nobody stops it.
	MaxLifeSec int `json:"maxLifeSec"`
}

// clientSpec: Count connections (or UDP exchanges) to Target, optionally
// from Source, Parallel at a time, each bounded by TimeoutMs.
type clientSpec struct {
	Proto     string `json:"proto"` // tcp or udp
	Target    string `json:"target"`
	Source    string `json:"source,omitempty"`
	Count     int    `json:"count"`
	Parallel  int    `json:"parallel"`
	TimeoutMs int    `json:"timeoutMs"`
	// StopAfter > 0: once that many attempts did not succeed, the rest are
	// not made (outcome "skipped"), so a broken rule set fails fast.
	StopAfter int `json:"stopAfter,omitempty"`
}

// attempt is the outcome of one connection.
type attempt struct {
	Outcome string `json:"outcome"` // ok, refused, timeout, unreachable, error, skipped
	ID      string `json:"id,omitempty"`
	Src     string `json:"src,omitempty"` // source address the server saw
	Err     string `json:"err,omitempty"`
	Ms      int64  `json:"ms"`
}

func runHelper(role string) int {
	spec := os.Getenv(specEnv)
	switch role {
	case "server":
		var s serverSpec
		if err := json.Unmarshal([]byte(spec), &s); err != nil {
			fmt.Fprintln(os.Stderr, "server spec:", err)
			return 2
		}
		return runServer(s)
	case "client":
		var c clientSpec
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			fmt.Fprintln(os.Stderr, "client spec:", err)
			return 2
		}
		return runClient(c)
	}
	fmt.Fprintln(os.Stderr, "unknown helper role", role)
	return 2
}

func reply(id string, peer net.IP) []byte {
	if v4 := peer.To4(); v4 != nil {
		peer = v4
	}
	return []byte(fmt.Sprintf("id=%s src=%s\n", id, peer))
}

func serveTCP(id string, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			// Read the client's line so the reply follows a full exchange.
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write(reply(id, c.RemoteAddr().(*net.TCPAddr).IP))
		}()
	}
}

func serveUDP(id string, pc *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, peer, err := pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteToUDP(reply(id, peer.IP), peer)
	}
}

func runServer(s serverSpec) int {
	var closers []func()
	for _, a := range s.Addrs {
		for _, port := range s.TCPPorts {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(port)))
			if err != nil {
				fmt.Fprintln(os.Stderr, "listen tcp:", err)
				return 1
			}
			closers = append(closers, func() { ln.Close() })
			go serveTCP(s.ID, ln)
		}
		for _, port := range s.UDPPorts {
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(a), Port: port})
			if err != nil {
				fmt.Fprintln(os.Stderr, "listen udp:", err)
				return 1
			}
			closers = append(closers, func() { pc.Close() })
			go serveUDP(s.ID, pc)
		}
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	life := time.Duration(s.MaxLifeSec) * time.Second
	if life <= 0 {
		life = 10 * time.Minute
	}
	select {
	case <-sig:
	case <-time.After(life):
	}
	for _, c := range closers {
		c()
	}
	return 0
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}

func parseReply(line string) (id, src string, ok bool) {
	for _, f := range strings.Fields(line) {
		if v, found := strings.CutPrefix(f, "id="); found {
			id = v
		}
		if v, found := strings.CutPrefix(f, "src="); found {
			src = v
		}
	}
	return id, src, id != "" && src != ""
}

func oneAttempt(c clientSpec) attempt {
	start := time.Now()
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	deadline := start.Add(timeout)
	done := func(a attempt) attempt {
		a.Ms = time.Since(start).Milliseconds()
		return a
	}
	fail := func(stage string, err error) attempt {
		return done(attempt{Outcome: classify(err), Err: stage + ": " + err.Error()})
	}
	var conn net.Conn
	var err error
	switch c.Proto {
	case "tcp":
		d := net.Dialer{Deadline: deadline}
		if c.Source != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.Source)}
		}
		conn, err = d.Dial("tcp", c.Target)
	case "udp":
		var raddr *net.UDPAddr
		raddr, err = net.ResolveUDPAddr("udp", c.Target)
		if err == nil {
			var laddr *net.UDPAddr
			if c.Source != "" {
				laddr = &net.UDPAddr{IP: net.ParseIP(c.Source)}
			}
			conn, err = net.DialUDP("udp", laddr, raddr)
		}
	default:
		err = fmt.Errorf("bad proto %q", c.Proto)
	}
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		return fail("write", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return fail("read", err)
	}
	id, src, ok := parseReply(line)
	if !ok {
		return done(attempt{Outcome: "error", Err: fmt.Sprintf("bad reply %q", line)})
	}
	return done(attempt{Outcome: "ok", ID: id, Src: src})
}

func runClient(c clientSpec) int {
	if c.Parallel < 1 {
		c.Parallel = 1
	}
	res := make([]attempt, c.Count)
	sem := make(chan struct{}, c.Parallel)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range res {
		sem <- struct{}{}
		if c.StopAfter > 0 && failed.Load() >= int64(c.StopAfter) {
			res[i] = attempt{Outcome: "skipped"}
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = oneAttempt(c)
			if res[i].Outcome != "ok" {
				failed.Add(1)
			}
			<-sem
		}()
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}
