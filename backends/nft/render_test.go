package nft

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
)

// testPlan compiles manifests for a node named test-node (192.168.0.2 /
// 2001:db8::1) with ServiceCIDRs 172.30.0.0/16 and fd00:10:96::/112.
func testPlan(t testing.TB, family v1.IPFamily, gates, manifests string) *compiler.Plan {
	t.Helper()
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(manifests)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compiler.Normalize(in); err != nil {
		t.Fatal(err)
	}
	plan, _, err := compiler.Build(in, compiler.Options{
		Family:        family,
		NodeName:      "test-node",
		NodeIPs:       []string{"192.168.0.2", "2001:db8::1"},
		NodeAddresses: []string{"192.168.1.2", "2001:db8:1::2"},
		ServiceCIDRs:  []string{"172.30.0.0/16", "fd00:10:96::/112"},
		FeatureGates:  gates,
	})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// testSettings are kube-proxy's defaults for the family: mark bit 14,
// ClusterCIDR detector 10.0.0.0/8 / fd00:10::/64, nodeport-addresses primary.
func testSettings(t testing.TB, family v1.IPFamily, view View) Settings {
	t.Helper()
	det, err := compiler.NewLocalDetector(family, "", []string{"10.0.0.0/8", "fd00:10::/64"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return Settings{
		MasqueradeBit:     14,
		LocalDetector:     det,
		NodePortAddresses: compiler.ResolveNodePortAddresses(family, compiler.ExpandNodePortAddressKeywords([]string{"primary"}, "192.168.0.2", "2001:db8::1")),
		View:              view,
	}
}

func render(t testing.TB, plan *compiler.Plan, s Settings) string {
	t.Helper()
	out, err := Render(plan, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func clusterIPService(ns, name, ip, port string, eps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {namespace: %s, name: %s}
spec:
  clusterIP: %q
  ports: [{name: p80, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: %s, name: %s-1, labels: {kubernetes.io/service-name: %s}}
addressType: %s
ports: [{name: p80, port: %s, protocol: TCP}]
endpoints:
`, ns, name, ip, ns, name, name, map[bool]string{true: "IPv6", false: "IPv4"}[strings.Contains(ip, ":")], port)
	for _, ep := range eps {
		fmt.Fprintf(&b, "- {addresses: [%q], nodeName: test-node}\n", ep)
	}
	return b.String()
}

// TestEndpointDNATRules is upstream's TestEndpointDNATRules: one endpoint is
// a plain "dnat to", several a numgen map (IPv6 bracketed only in the first).
func TestEndpointDNATRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family v1.IPFamily
		svcIP  string
		epIPs  []string
		want   string
	}{
		{"ipv4 single endpoint", v1.IPv4Protocol, "172.30.0.41", []string{"10.180.0.1"}, "meta l4proto tcp dnat to 10.180.0.1:80"},
		{"ipv6 single endpoint", v1.IPv6Protocol, "fd00:172:30::41", []string{"fd00:10:180::1"}, "meta l4proto tcp dnat to [fd00:10:180::1]:80"},
		{"ipv4 multiple endpoints", v1.IPv4Protocol, "172.30.0.41", []string{"10.180.0.1", "10.180.0.2"},
			"meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.1 . 80 , 1 : 10.180.0.2 . 80 }"},
		{"ipv6 multiple endpoints", v1.IPv6Protocol, "fd00:172:30::41", []string{"fd00:10:180::1", "fd00:10:180::2"},
			"meta l4proto tcp dnat ip6 addr . port to numgen random mod 2 map { 0 : fd00:10:180::1 . 80 , 1 : fd00:10:180::2 . 80 }"},
		{"string order of endpoints", v1.IPv4Protocol, "172.30.0.41", []string{"10.180.0.2", "10.180.0.10", "10.180.0.1"},
			"meta l4proto tcp dnat ip addr . port to numgen random mod 3 map { 0 : 10.180.0.10 . 80 , 1 : 10.180.0.1 . 80 , 2 : 10.180.0.2 . 80 }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan(t, tc.family, "", clusterIPService("ns1", "svc1", tc.svcIP, "80", tc.epIPs...))
			fam := "ip"
			if tc.family == v1.IPv6Protocol {
				fam = "ip6"
			}
			prefix := "add rule " + fam + " kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 "
			var rules []string
			for _, l := range strings.Split(render(t, plan, testSettings(t, tc.family, ViewDump)), "\n") {
				if strings.HasPrefix(l, prefix) {
					rules = append(rules, strings.TrimPrefix(l, prefix))
				}
			}
			if len(rules) != 1 || rules[0] != tc.want {
				t.Errorf("service chain rules %q, want [%q]", rules, tc.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	plan := testPlan(t, v1.IPv4Protocol, "", clusterIPService("ns1", "svc1", "172.30.0.41", "80", "10.180.0.1"))
	s := testSettings(t, v1.IPv4Protocol, ViewDump)
	if _, err := Render(nil, s); err == nil {
		t.Error("nil plan: no error")
	}
	for _, bit := range []int{-1, 32} {
		bad := s
		bad.MasqueradeBit = bit
		if _, err := Render(plan, bad); err == nil {
			t.Errorf("masquerade bit %d: no error", bit)
		}
	}
	bad := s
	bad.View = "list"
	if _, err := Render(plan, bad); err == nil {
		t.Error("unknown view: no error")
	}
	badPlan := *plan
	badPlan.Family = "IPv5"
	if _, err := Render(&badPlan, s); err == nil {
		t.Error("unknown family: no error")
	}
	s.View = ""
	if out := render(t, plan, s); !strings.HasPrefix(out, "add table ip kube-proxy") {
		t.Errorf("empty view is not the dump:\n%s", out)
	}
}

// scenarios exercises every object kind: no endpoints, ETP/ITP Local,
// NodePorts of three protocols, LB source ranges, affinity, hairpin, a
// value change of an element (an external IP equal to another service's
// cluster IP), long names (comment truncation).
const scenarioManifests = `
apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: lb}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.10
  externalTrafficPolicy: Local
  healthCheckNodePort: 30100
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  loadBalancerSourceRanges: [192.168.0.0/24, 203.0.113.0/25]
  externalIPs: [192.168.99.1]
  ports:
  - {name: http, port: 80, protocol: TCP, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
status: {loadBalancer: {ingress: [{ip: 5.6.7.8}, {ip: 5.6.7.9}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: lb-1, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.180.0.1], nodeName: test-node}
- {addresses: [10.180.1.1], nodeName: other}
---
apiVersion: v1
kind: Service
metadata: {namespace: ns2, name: noeps}
spec:
  type: NodePort
  clusterIP: 172.30.0.20
  internalTrafficPolicy: Local
  ports:
  - {name: sctp, port: 9999, protocol: SCTP, nodePort: 30999}
---
apiVersion: v1
kind: Service
metadata: {namespace: ns3, name: shadow}
spec:
  clusterIP: 172.30.0.30
  externalIPs: [172.30.0.50]
  ports: [{port: 9999, protocol: SCTP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns3, name: shadow-1, labels: {kubernetes.io/service-name: shadow}}
addressType: IPv4
ports: [{name: "", port: 9999, protocol: SCTP}]
endpoints:
- {addresses: [10.180.0.5], nodeName: test-node}
- {addresses: [10.180.0.6], nodeName: test-node}
---
apiVersion: v1
kind: Service
metadata: {namespace: ns4, name: twin}
spec:
  clusterIP: 172.30.0.50
  ports: [{port: 9999, protocol: SCTP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns4, name: twin-1, labels: {kubernetes.io/service-name: twin}}
addressType: IPv4
ports: [{name: "", port: 9999, protocol: SCTP}]
endpoints:
- {addresses: [10.180.2.1], nodeName: other}
---
apiVersion: v1
kind: Service
metadata:
  namespace: a-very-long-namespace-name-of-exactly-sixty-three-characters-xx
  name: a-very-long-service-name-of-exactly-sixty-three-characters-xxxx
spec:
  clusterIP: 172.30.0.40
  ports: [{name: port-name-15chr, port: 80}]
`

func TestViewsAgree(t *testing.T) {
	plan := testPlan(t, v1.IPv4Protocol, "KubeProxyNFTablesLocalhostNodePorts=true", scenarioManifests)
	for _, mod := range []func(*Settings){
		func(*Settings) {},
		func(s *Settings) { s.MasqueradeAll = true; s.MasqueradeBit = 0 },
		func(s *Settings) {
			s.LocalDetector = compiler.LocalDetector{}
			s.NodePortAddresses = compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"127.0.0.0/8", "192.168.0.0/16"})
		},
		func(s *Settings) {
			s.LocalDetector = compiler.LocalDetector{Mode: "InterfaceNamePrefix", Value: "veth"}
			s.NodePortAddresses = compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)
		},
	} {
		s := testSettings(t, v1.IPv4Protocol, ViewDump)
		mod(&s)
		dump := render(t, plan, s)
		s.View = ViewTransaction
		tx := render(t, plan, s)
		equal, diff, err := canon.NFT(dump, tx)
		if err != nil {
			t.Fatal(err)
		}
		if !equal {
			t.Errorf("dump and transaction give different states:\n%s", diff)
		}
	}
}

func TestScenarioDetails(t *testing.T) {
	plan := testPlan(t, v1.IPv4Protocol, "KubeProxyNFTablesLocalhostNodePorts=true", scenarioManifests)
	s := testSettings(t, v1.IPv4Protocol, ViewDump)
	dump := render(t, plan, s)
	s.View = ViewTransaction
	tx := render(t, plan, s)

	longSPN := "a-very-long-namespace-name-of-exactly-sixty-three-characters-xx/a-very-long-service-name-of-exactly-sixty-three-characters-xxxx:port-name-15chr"
	for _, want := range []string{
		// ns4/twin's cluster IP replaces the element of ns3/shadow's
		// external IP (same key, another value): the last one wins.
		"add element ip kube-proxy service-ips { 172.30.0.50 . sctp . 9999 : goto service-",
		// 128-byte element comment.
		`add element ip kube-proxy no-endpoint-services { 172.30.0.40 . tcp . 80 comment "` + longSPN[:128] + `" : goto reject-chain }`,
		// Firewall: the node IP is in a range, so the LB IPs are allowed too.
		"ip saddr != { 192.168.0.0/24 , 203.0.113.0/25 , 5.6.7.8 , 5.6.7.9 } drop",
		"add set ip kube-proxy affinity-",
		"flags dynamic,timeout ; timeout 300s ; }",
		"add element ip kube-proxy localhost-nodeport-reject-ports { sctp . 30999 : goto localhost-nodeport-reject-sctp }",
		"add element ip kube-proxy no-endpoint-nodeports { sctp . 30999 comment \"ns2/noeps:sctp\" : goto reject-chain }",
		"add element ip kube-proxy hairpin-connections { 10.180.0.1 . 10.180.0.1 . tcp . 8080 }",
		"add rule ip kube-proxy nodeport-endpoints-check ip daddr 127.0.0.0/8 meta l4proto . th dport vmap @localhost-nodeport-reject-ports",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	if strings.Contains(dump, longSPN) {
		t.Error("element comment not truncated")
	}
	for _, want := range []string{
		"delete element ip kube-proxy service-ips { 172.30.0.50 . sctp . 9999 }\n",
		"add chain ip kube-proxy filter-input\ndelete chain ip kube-proxy filter-input\n",
		"add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }\nflush set ip kube-proxy nodeport-ips\nadd element ip kube-proxy nodeport-ips { 192.168.0.2 }\n",
	} {
		if !strings.Contains(tx, want) {
			t.Errorf("transaction lacks %q", want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	plan := testPlan(t, v1.IPv4Protocol, "", scenarioManifests)
	for _, view := range []View{ViewDump, ViewTransaction} {
		s := testSettings(t, v1.IPv4Protocol, view)
		a, b := render(t, plan, s), render(t, plan, s)
		if a != b {
			t.Errorf("%s: two renders differ", view)
		}
	}
}
