package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// A NodePort/LoadBalancer Service with externalTrafficPolicy Local whose only
// endpoint is on another node, and a source-range firewall.
const traceManifests = clusterIPService + `---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: demo}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  externalTrafficPolicy: Local
  loadBalancerSourceRanges: [198.51.100.0/24]
  ports: [{name: http, port: 80, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.10}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-1, namespace: demo, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.2.7], nodeName: node2}
`

var node = []string{"--node-name", "node1", "--node-ip", "192.168.0.10", "--cluster-cidr", "10.244.0.0/16"}

func traceArgs(extra ...string) []string {
	return append(append([]string{"trace", "-f", "-"}, node...), extra...)
}

func TestTraceCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"clusterip from a pod", traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "--from", "pod"),
			[]string{"verdict: DNAT", "100%  DNAT to 10.244.1.5:8080", "not masqueraded", "nat KUBE-SERVICES #", "-j KUBE-SVC-"}},
		{"clusterip from the node", traceArgs("--src", "192.168.0.10", "--dst", "10.96.0.10:80"),
			[]string{"from node", "masqueraded (the destination sees the node's address)", "OUTPUT"}},
		{"nodeport, ETP Local, no local endpoint", traceArgs("--src", "203.0.113.7", "--dst", "192.168.0.10:30080"),
			[]string{"verdict: DROP", "filter KUBE-EXTERNAL-SERVICES", "has no local endpoints", "the client times out"}},
		{"LB IP from a blocked source", traceArgs("--src", "203.0.113.7", "--dst", "203.0.113.10:80"),
			[]string{"verdict: DROP", "KUBE-PROXY-FIREWALL", "other traffic to demo/shop:http will be dropped"}},
		{"nft", traceArgs("-b", "nft", "--src", "203.0.113.7", "--dst", "203.0.113.10:80"),
			[]string{"verdict: DROP", "firewall-check", "ip saddr != { 198.51.100.0/24 } drop"}},
		{"ipvs", traceArgs("-b", "ipvs", "--src", "10.244.1.9", "--dst", "10.96.0.10:80", "--from", "pod"),
			[]string{"verdict: DNAT", "virtual server TCP 10.96.0.10:80", "scheduler rr picks real server 10.244.1.5:8080"}},
		{"userspace", traceArgs("-b", "userspace", "--src", "10.244.1.9", "--dst", "10.96.0.10:80"),
			[]string{"verdict: PROXY", "kube-proxy dials 10.244.1.5:8080", "REDIRECT to local port"}},
		{"udp, no service", traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:53", "--proto", "udp"),
			[]string{"verdict: NO-MATCH"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, traceManifests, c.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestTraceCommandJSON(t *testing.T) {
	r := runCmd(t, traceManifests, traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "-o", "json")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res struct {
		Query    struct{ Src, Dst, Proto, From string }
		Outcomes []struct {
			Probability float64
			Verdict     string
			Endpoint    string
			Masquerade  bool
		}
		Paths []struct {
			Steps []struct{ Hook, Chain string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if res.Query.Dst != "10.96.0.10:80" || len(res.Outcomes) != 1 || res.Outcomes[0].Endpoint != "10.244.1.5:8080" || res.Outcomes[0].Probability != 1 || len(res.Paths) != 1 || len(res.Paths[0].Steps) == 0 {
		t.Errorf("unexpected JSON: %+v", res)
	}
}

// --rules reads rule files: svc2rules' own output, here.
func TestTraceCommandRulesFile(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.yaml", traceManifests)
	rules := filepath.Join(dir, "node.rules")
	if r := runCmd(t, "", append([]string{"compile", "-f", in, "-o", rules}, node...)...); r.code != 0 {
		t.Fatalf("compile: %s", r.stderr)
	}
	r := runCmd(t, "", "trace", "--rules", rules, "--node-ip", "192.168.0.10", "--src", "203.0.113.7", "--dst", "192.168.0.10:30080")
	if r.code != 0 || !strings.Contains(r.stdout, "verdict: DROP") || !strings.Contains(r.stdout, "rules: iptables ("+rules+")") {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// From stdin.
	data := runCmd(t, traceManifests, append([]string{"compile", "-f", "-", "-b", "nft"}, node...)...).stdout
	r = runCmd(t, data, "trace", "--rules", "-", "--src", "10.244.1.9", "--dst", "10.96.0.10:80")
	if r.code != 0 || !strings.Contains(r.stdout, "DNAT to 10.244.1.5:8080") {
		t.Errorf("stdin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestTraceCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.rules", "this is not a rule file\n")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"trace", "-f", "-", "--dst", "10.96.0.10:80"}, 2, "--src"},
		{traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10"), 2, "not IP:PORT"},
		{traceArgs("--src", "10.244.1.9", "--dst", "fd00::1:80"), 2, "[ADDR]:PORT"},
		{traceArgs("--src", "nope", "--dst", "10.96.0.10:80"), 2, "--src"},
		{traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "--proto", "icmp"), 2, "--proto"},
		{traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "--from", "moon"), 2, "--from"},
		{traceArgs("--src", "fd00::9", "--dst", "10.96.0.10:80"), 2, "different IP families"},
		{traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "-o", "yaml"), 2, "-o must be"},
		{[]string{"trace", "--src", "10.244.1.9", "--dst", "10.96.0.10:80"}, 2, "no rules"},
		{traceArgs("--src", "10.244.1.9", "--dst", "10.96.0.10:80", "--rules", bad), 2, "not both"},
		{[]string{"trace", "--rules", bad, "--src", "10.244.1.9", "--dst", "10.96.0.10:80"}, 1, "cannot read"},
		{[]string{"trace", "--rules", filepath.Join(dir, "missing"), "--src", "10.244.1.9", "--dst", "10.96.0.10:80"}, 1, "no such file"},
	} {
		r := runCmd(t, traceManifests, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, c.code, c.msg)
		}
	}
}
