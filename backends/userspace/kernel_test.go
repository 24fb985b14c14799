package userspace_test

// The kernel test: as root, compile a small input with the userspace
// backend, load the rules with iptables-restore into a fresh "node" network
// namespace, listen on the assigned proxy ports in it (standing in for
// kube-proxy's proxy sockets) and check that connections to the ClusterIP,
// an external IP and a NodePort, from a "pod" namespace (PREROUTING,
// KUBE-*-CONTAINER chains) and from the node itself (OUTPUT, KUBE-*-HOST
// chains), reach the listener. Skipped when not root or without ip /
// iptables-restore; with SVC2RULES_E2E=require a skip is a failure.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/svc2rules/svc2rules/internal/canon"
	"github.com/svc2rules/svc2rules/internal/cli"
)

const kernelInput = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: kt}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  externalIPs: [203.0.113.10]
  ports:
  - {name: http, port: 80, nodePort: 30080, protocol: TCP, targetPort: 8080}
  - {name: dns, port: 53, nodePort: 30053, protocol: UDP, targetPort: 53}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: kt}
subsets:
- addresses: [{ip: 10.244.0.5}]
  ports:
  - {name: http, port: 8080, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
`

const (
	nodeIP = "10.99.0.1"
	podIP  = "10.99.0.2"
)

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SVC2RULES_E2E") == "require" {
		t.Fatalf("SVC2RULES_E2E=require, but: "+format, args...)
	}
	t.Skipf(format, args...)
}

func run(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on an OS thread switched into the named network namespace;
// sockets created by f stay in that namespace.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if e := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); e != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns %s: %v", ns, e)
	}
	defer func() {
		if e := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); e != nil {
			// Leave the thread locked: the runtime discards it with the goroutine.
			t.Errorf("setns back: %v", e)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

func TestKernelUserspace(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root")
	}
	for _, tool := range []string{"ip", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not found", tool)
		}
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "input.yaml")
	if err := os.WriteFile(in, []byte(kernelInput), 0o644); err != nil {
		t.Fatal(err)
	}
	o := cli.DefaultCompileOptions()
	o.Files = []string{in}
	o.Backend = "userspace"
	o.NodeIPs = []string{nodeIP}
	o.ProxyPortRange = "45000-45009"
	res, err := cli.Compile(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := canon.UserspaceProxyPorts(res.Output)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, dnsPort := ports["kt/web:http"], ports["kt/web:dns"]
	if httpPort == 0 || dnsPort == 0 {
		t.Fatalf("proxy ports missing: %v", ports)
	}

	suffix := strconv.Itoa(os.Getpid())
	node, pod := "s2r-us-node-"+suffix, "s2r-us-pod-"+suffix
	run(t, "", "ip", "netns", "add", node)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", node).Run() })
	run(t, "", "ip", "netns", "add", pod)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", pod).Run() })
	veth, peer := "us"+suffix+"n", "us"+suffix+"p"
	if len(veth) > 15 {
		veth, peer = veth[len(veth)-15:], peer[len(peer)-15:]
	}
	run(t, "", "ip", "link", "add", veth, "netns", node, "type", "veth", "peer", "name", peer, "netns", pod)
	for _, c := range [][]string{
		{"-n", node, "link", "set", "lo", "up"},
		{"-n", node, "link", "set", veth, "up"},
		{"-n", node, "addr", "add", nodeIP + "/24", "dev", veth},
		{"-n", node, "route", "add", "default", "via", podIP},
		{"-n", pod, "link", "set", "lo", "up"},
		{"-n", pod, "link", "set", peer, "up"},
		{"-n", pod, "addr", "add", podIP + "/24", "dev", peer},
		{"-n", pod, "route", "add", "default", "via", nodeIP},
	} {
		run(t, "", "ip", c...)
	}
	run(t, res.Output, "ip", "netns", "exec", node, "iptables-restore")

	// kube-proxy's proxy sockets: listen on 0.0.0.0:<proxy port> in the node.
	var ln net.Listener
	var pc net.PacketConn
	inNetns(t, node, func() {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", httpPort)); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", dnsPort)); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	defer pc.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "proxy-port %d\n", httpPort)
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("proxy-port %d got %s\n", dnsPort, buf[:n])), addr)
		}
	}()

	tcpCheck := func(from, target string) {
		t.Helper()
		var line string
		var err error
		inNetns(t, from, func() {
			var c net.Conn
			c, err = net.DialTimeout("tcp4", target, 3*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
		})
		if err != nil {
			t.Errorf("tcp from %s to %s: %v", from, target, err)
			return
		}
		if want := fmt.Sprintf("proxy-port %d\n", httpPort); line != want {
			t.Errorf("tcp from %s to %s: got %q, want %q", from, target, line, want)
		}
	}
	udpCheck := func(from, target string) {
		t.Helper()
		var reply string
		var err error
		inNetns(t, from, func() {
			var c net.Conn
			c, err = net.Dial("udp4", target)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err = c.Write([]byte("ping")); err != nil {
				return
			}
			buf := make([]byte, 512)
			var n int
			n, err = c.Read(buf)
			reply = string(buf[:n])
		})
		if err != nil {
			t.Errorf("udp from %s to %s: %v", from, target, err)
			return
		}
		if want := fmt.Sprintf("proxy-port %d got ping\n", dnsPort); reply != want {
			t.Errorf("udp from %s to %s: got %q, want %q", from, target, reply, want)
		}
	}

	// From a pod: PREROUTING → KUBE-PORTALS-CONTAINER / KUBE-NODEPORT-CONTAINER, REDIRECT.
	tcpCheck(pod, "10.96.0.10:80")
	tcpCheck(pod, "203.0.113.10:80")
	tcpCheck(pod, nodeIP+":30080")
	udpCheck(pod, "10.96.0.10:53")
	udpCheck(pod, nodeIP+":30053")
	// From the node itself: OUTPUT → KUBE-PORTALS-HOST / KUBE-NODEPORT-HOST, DNAT to the node IP.
	tcpCheck(node, "10.96.0.10:80")
	tcpCheck(node, nodeIP+":30080")
	udpCheck(node, "10.96.0.10:53")

	// The kernel kept the rules as written (iptables-save is a fixed point,
	// up to the header comments and counters).
	out, err := exec.Command("ip", "netns", "exec", node, "iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	equal, diff, err := canon.Userspace(res.Output, string(out))
	if err != nil {
		t.Fatal(err)
	}
	if !equal {
		t.Errorf("iptables-save differs from the loaded rules:\n%s", diff)
	}
}
