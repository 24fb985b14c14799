package ipvs_test

import (
	"strings"
	"testing"

	"github.com/svc2rules/svc2rules/backends/ipvs"
	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// compileYAML runs the whole compile pipeline (-b ipvs) on manifests given
// inline, with node test-node / 192.168.0.2 unless args say otherwise.
func compileYAML(t testing.TB, manifests string, args ...string) string {
	t.Helper()
	o := cli.DefaultCompileOptions()
	o.Backend = "ipvs"
	o.Files = []string{"-"}
	o.NodeName = "test-node"
	o.NodeIPs = []string{"192.168.0.2", "2001:db8::1"}
	o.ClusterCIDRs = []string{"10.0.0.0/8", "fd00:10::/64"}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "family":
			o.IPFamily = v
		case "section":
			o.IPVSSection = v
		case "scheduler":
			o.IPVSScheduler = v
		case "exclude":
			o.IPVSExcludeCIDRs = compiler.SplitList(v)
		case "node-addresses":
			o.NodeAddresses = compiler.SplitList(v)
		case "nodeport-addresses":
			o.NodePortAddresses = compiler.SplitList(v)
		case "cluster-cidr":
			o.ClusterCIDRs = compiler.SplitList(v)
		case "masquerade-all":
			o.MasqueradeAll = v == "true"
		case "gates":
			o.FeatureGates = v
		case "view":
			o.IPTablesView = v
		default:
			t.Fatalf("unknown test arg %q", a)
		}
	}
	res, err := cli.Compile(o, strings.NewReader(manifests))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return res.Output
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func has(t *testing.T, out, line string) {
	t.Helper()
	for _, l := range lines(out) {
		if l == line {
			return
		}
	}
	t.Errorf("missing line %q in:\n%s", line, out)
}

func hasNot(t *testing.T, out, substr string) {
	t.Helper()
	if strings.Contains(out, substr) {
		t.Errorf("unexpected %q in:\n%s", substr, out)
	}
}

const webService = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns1}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: ns1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.1.5], nodeName: test-node}
- {addresses: [10.244.2.5], nodeName: other}
- {addresses: [10.244.3.5], nodeName: other, conditions: {ready: false, serving: true, terminating: true}}
`

func TestSchedulers(t *testing.T) {
	for _, tc := range []struct {
		scheduler, want string
	}{
		{"", "-A -t 10.96.0.10:80 -s rr"},
		{"rr", "-A -t 10.96.0.10:80 -s rr"},
		{"wlc", "-A -t 10.96.0.10:80 -s wlc"},
		{"sh", "-A -t 10.96.0.10:80 -s sh"}, // sh gets no flag
		{"mh", "-A -t 10.96.0.10:80 -s mh -b mh-port"},
		{"lblcr", "-A -t 10.96.0.10:80 -s lblcr"},
	} {
		t.Run(tc.scheduler, func(t *testing.T) {
			out := compileYAML(t, webService, "section=ipvsadm", "scheduler="+tc.scheduler)
			has(t, out, tc.want)
			// every virtual server gets the same scheduler and flags
			for _, l := range lines(out) {
				if strings.HasPrefix(l, "-A ") && !strings.HasSuffix(l, strings.TrimPrefix(tc.want, "-A -t 10.96.0.10:80")) {
					t.Errorf("%q does not end like %q", l, tc.want)
				}
			}
		})
	}
}

func TestWeightsAndEndpointChoice(t *testing.T) {
	out := compileYAML(t, webService, "section=ipvsadm")
	want := `-A -t 10.96.0.10:80 -s rr
-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1
-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1
-A -t 192.168.0.2:30080 -s rr
-a -t 192.168.0.2:30080 -r 10.244.1.5:8080 -m -w 1
-a -t 192.168.0.2:30080 -r 10.244.2.5:8080 -m -w 1
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}

	// Only a serving+terminating endpoint left: the fallback picks it, weight 1.
	term := strings.Replace(webService, "- {addresses: [10.244.1.5], nodeName: test-node}\n- {addresses: [10.244.2.5], nodeName: other}\n", "", 1)
	out = compileYAML(t, term, "section=ipvsadm")
	has(t, out, "-a -t 10.96.0.10:80 -r 10.244.3.5:8080 -m -w 1")
	hasNot(t, out, "-w 0")
}

func TestSessionAffinityOnEveryVirtualServer(t *testing.T) {
	svc := strings.Replace(webService, "  type: NodePort\n", "  type: NodePort\n  externalIPs: [192.168.99.1]\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}\n", 1)
	out := compileYAML(t, svc, "section=ipvsadm", "scheduler=mh")
	n := 0
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "-A ") {
			n++
			if !strings.HasSuffix(l, " -s mh -p 300 -b mh-port") {
				t.Errorf("%q: want -s mh -p 300 -b mh-port", l)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d virtual servers, want 3 (cluster IP, external IP, NodePort):\n%s", n, out)
	}
}

const lbLocal = `
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  loadBalancerSourceRanges: [198.51.100.0/24]
  ports: [{name: https, port: 443, nodePort: 30443}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.10}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: ns1, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: https, port: 8443}]
endpoints:
- {addresses: [10.244.1.6], nodeName: NODE}
- {addresses: [10.244.2.6], nodeName: other}
`

func TestExternalTrafficPolicyLocal(t *testing.T) {
	local := strings.Replace(lbLocal, "NODE", "test-node", 1)
	out := compileYAML(t, local, "section=ipvsadm")
	has(t, out, "-a -t 203.0.113.10:443 -r 10.244.1.6:8443 -m -w 1")
	hasNot(t, out, "-a -t 203.0.113.10:443 -r 10.244.2.6:8443")
	has(t, out, "-a -t 10.96.0.20:443 -r 10.244.2.6:8443 -m -w 1") // cluster IP unaffected

	// No local endpoint: ipvs mode falls back to all cluster endpoints (no blackhole).
	remote := strings.Replace(lbLocal, "NODE", "elsewhere", 1)
	out = compileYAML(t, remote, "section=ipvsadm")
	for _, vs := range []string{"203.0.113.10:443", "192.168.0.2:30443", "10.96.0.20:443"} {
		has(t, out, "-a -t "+vs+" -r 10.244.1.6:8443 -m -w 1")
		has(t, out, "-a -t "+vs+" -r 10.244.2.6:8443 -m -w 1")
	}
}

func TestSourceRangesAndOutFilter(t *testing.T) {
	local := strings.Replace(lbLocal, "NODE", "test-node", 1)
	sets := compileYAML(t, local, "section=ipset")
	has(t, sets, "add KUBE-LOAD-BALANCER-SOURCE-CIDR 203.0.113.10,tcp:443,198.51.100.0/24")
	hasNot(t, sets, "add KUBE-LOAD-BALANCER-SOURCE-IP ")
	ipt := compileYAML(t, local, "section=iptables")
	has(t, ipt, "-A KUBE-IPVS-OUT-FILTER -s 203.0.113.10 -m ipvs --vaddr 203.0.113.10 --vproto tcp --vport 443 -j DROP")

	// The node IP inside a range: SOURCE-IP entry, no OUT-FILTER rule.
	inside := strings.Replace(local, "[198.51.100.0/24]", "[198.51.100.0/24, 192.168.0.0/16]", 1)
	sets = compileYAML(t, inside, "section=ipset")
	has(t, sets, "add KUBE-LOAD-BALANCER-SOURCE-IP 203.0.113.10,tcp:443,203.0.113.10")
	hasNot(t, compileYAML(t, inside, "section=iptables"), "KUBE-IPVS-OUT-FILTER -s")

	// A zero-length range disables the firewall.
	open := strings.Replace(local, "[198.51.100.0/24]", "[198.51.100.0/24, 0.0.0.0/0]", 1)
	sets = compileYAML(t, open, "section=ipset")
	hasNot(t, sets, "add KUBE-LOAD-BALANCER-FW ")
	hasNot(t, sets, "add KUBE-LOAD-BALANCER-SOURCE-CIDR ")
}

func TestEmptyNodePortAddressesDropHealthCheck(t *testing.T) {
	local := strings.Replace(lbLocal, "NODE", "test-node", 1)
	sets := compileYAML(t, local, "section=ipset")
	has(t, sets, "add KUBE-HEALTH-CHECK-NODE-PORT 32000")
	has(t, sets, "add KUBE-NODE-PORT-LOCAL-TCP 30443")
	// nodeport-addresses matching no non-loopback address: no NodePort VS,
	// no node-port entries and no health-check entry either.
	for _, npa := range []string{"localhost", "10.99.0.0/16"} {
		sets = compileYAML(t, local, "section=ipset", "nodeport-addresses="+npa)
		hasNot(t, sets, "add KUBE-HEALTH-CHECK-NODE-PORT")
		hasNot(t, sets, "add KUBE-NODE-PORT-")
		hasNot(t, compileYAML(t, local, "section=ipvsadm", "nodeport-addresses="+npa), ":30443")
	}
}

func TestNodeAddressesAndBinding(t *testing.T) {
	svc := strings.Replace(webService, "  type: NodePort\n", "  type: NodePort\n  externalIPs: [192.168.1.2, 127.0.0.1, 192.168.99.1]\n", 1)
	out := compileYAML(t, svc, "section=ipvsadm", "node-addresses=192.168.1.2,fe80::1,2001:db8:1::2")
	for _, vs := range []string{"192.168.0.2:30080", "192.168.1.2:30080", "192.168.1.2:80", "127.0.0.1:80", "192.168.99.1:80"} {
		has(t, out, "-A -t "+vs+" -s rr")
	}
	addrs := compileYAML(t, svc, "section=addresses", "node-addresses=192.168.1.2")
	// a node address is not bound; loopback is ("already local" excludes it).
	if want := "10.96.0.10/32\n127.0.0.1/32\n192.168.99.1/32\n"; addrs != want {
		t.Errorf("addresses = %q, want %q", addrs, want)
	}
	sets := compileYAML(t, svc, "section=ipset", "node-addresses=192.168.1.2")
	hasNot(t, sets, "add KUBE-IPVS-IPS 192.168.1.2")
	has(t, sets, "add KUBE-IPVS-IPS 127.0.0.1")
}

func TestLoopBackHasEveryLocalEndpoint(t *testing.T) {
	svc := webService + "- {addresses: [10.244.1.9], nodeName: test-node, conditions: {ready: false, serving: false, terminating: true}}\n"
	sets := compileYAML(t, svc, "section=ipset")
	has(t, sets, "add KUBE-LOOP-BACK 10.244.1.5,tcp:8080,10.244.1.5")
	has(t, sets, "add KUBE-LOOP-BACK 10.244.1.9,tcp:8080,10.244.1.9")
	hasNot(t, sets, "10.244.2.5,tcp:8080,10.244.2.5")
}

func TestMasqueradeVariants(t *testing.T) {
	const prefix = `-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP `
	has(t, compileYAML(t, webService, "section=iptables"), prefix+"dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ")
	has(t, compileYAML(t, webService, "section=iptables", "cluster-cidr="), prefix+"src,dst -j KUBE-MARK-MASQ")
	has(t, compileYAML(t, webService, "section=iptables", "masquerade-all=true"), prefix+"dst,dst -j KUBE-MARK-MASQ")
}

const v6Service = `
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec:
  type: LoadBalancer
  clusterIP: fd00:10:96::a
  ipFamilies: [IPv6]
  externalTrafficPolicy: Local
  healthCheckNodePort: 31000
  loadBalancerSourceRanges: [2001:db8:ffff::/48]
  ports:
  - {name: dns, port: 53, protocol: SCTP, nodePort: 30053}
status: {loadBalancer: {ingress: [{ip: "2001:db8:5::1"}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv6
ports: [{name: dns, port: 5353, protocol: SCTP}]
endpoints:
- {addresses: ["fd00:10::5"], nodeName: test-node}
`

func TestIPv6(t *testing.T) {
	sets := compileYAML(t, v6Service, "family=ipv6", "section=ipset", "node-addresses=fe80::1")
	for _, l := range []string{
		"create KUBE-6-LOAD-BALANCER-SOURCE-CID hash:ip,port,net family inet6 hashsize 1024 maxelem 65536",
		"create KUBE-6-NODE-PORT-LOCAL-SCTP-HAS hash:ip,port family inet6 hashsize 1024 maxelem 65536",
		"create KUBE-6-NODE-PORT-TCP bitmap:port range 0-65535",
		"add KUBE-6-LOAD-BALANCER-SOURCE-CID 2001:db8:5::1,sctp:53,2001:db8:ffff::/48",
		"add KUBE-6-NODE-PORT-SCTP-HASH 2001:db8::1,sctp:30053",
		"add KUBE-6-NODE-PORT-LOCAL-SCTP-HAS 2001:db8::1,sctp:30053",
		"add KUBE-6-LOOP-BACK fd00:10::5,sctp:5353,fd00:10::5",
		"add KUBE-6-IPVS-IPS fd00:10:96::a",
	} {
		has(t, sets, l)
	}
	hasNot(t, sets, "fe80::1") // link-local is never a NodePort address under match-all
	vs := compileYAML(t, v6Service, "family=ipv6", "section=ipvsadm")
	has(t, vs, "-A --sctp-service [2001:db8::1]:30053 -s rr")
	has(t, vs, "-a --sctp-service [2001:db8::1]:30053 -r [fd00:10::5]:5353 -m -w 1")
	if a := compileYAML(t, v6Service, "family=ipv6", "section=addresses"); a != "2001:db8:5::1/128\nfd00:10:96::a/128\n" {
		t.Errorf("addresses = %q", a)
	}
	ipt := compileYAML(t, v6Service, "family=ipv6", "section=iptables")
	has(t, ipt, "-A KUBE-SERVICES -s ::1/128 -j RETURN")
	has(t, ipt, `-A KUBE-NODE-PORT -p sctp -m comment --comment "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" -m set --match-set KUBE-6-NODE-PORT-LOCAL-SCTP-HAS dst,dst -j RETURN`)
	has(t, ipt, "-A KUBE-IPVS-OUT-FILTER -s 2001:db8:5::1 -m ipvs --vaddr 2001:db8:5::1 --vproto sctp --vport 53 -j DROP")
	hasNot(t, ipt, "KUBE-CLUSTER-IP ") // only KUBE-6-*
	// The IPv4 proxier sees nothing of an IPv6-only service, but still has its 17 sets.
	v4 := compileYAML(t, v6Service, "section=ipset")
	if n := strings.Count(v4, "create "); n != 17 || strings.Contains(v4, "add ") {
		t.Errorf("IPv4 proxier sets:\n%s", v4)
	}
}

func TestExternalIPsGate(t *testing.T) {
	svc := strings.Replace(webService, "  type: NodePort\n", "  type: NodePort\n  externalIPs: [192.168.99.1]\n", 1)
	out := compileYAML(t, svc, "section=ipset", "gates=AllowServiceExternalIPs=false")
	hasNot(t, out, "192.168.99.1")
	has(t, compileYAML(t, svc, "section=ipset"), "add KUBE-EXTERNAL-IP 192.168.99.1,tcp:80")
}

func TestRestoreView(t *testing.T) {
	out := compileYAML(t, webService, "section=iptables", "view=restore")
	if !strings.HasPrefix(out, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-NODE-PORT - [0:0]\n:KUBE-LOAD-BALANCER - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN\n") {
		t.Errorf("restore view starts:\n%s", out)
	}
	hasNot(t, out, "-A INPUT")
	if strings.Count(out, "COMMIT\n") != 2 || !strings.Contains(out, "COMMIT\n*filter\n:KUBE-FORWARD - [0:0]\n") {
		t.Errorf("restore view tables:\n%s", out)
	}
}

func TestCollisionLastServicePortWins(t *testing.T) {
	// Two services share an external IP and port: kube-proxy's result depends
	// on Go map order; svc2rules takes the last in (namespace, name) order.
	two := `
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec: {clusterIP: 10.96.0.1, externalIPs: [192.168.99.9], ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: ns}
spec: {clusterIP: 10.96.0.2, externalIPs: [192.168.99.9], ports: [{port: 80}], sessionAffinity: ClientIP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: ns, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{name: "", port: 8080}]
endpoints: [{addresses: [10.244.0.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: ns, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
ports: [{name: "", port: 8080}]
endpoints: [{addresses: [10.244.0.2]}]
`
	out := compileYAML(t, two, "section=ipvsadm")
	has(t, out, "-A -t 192.168.99.9:80 -s rr -p 10800")
	has(t, out, "-a -t 192.168.99.9:80 -r 10.244.0.2:8080 -m -w 1")
	hasNot(t, out, "-a -t 192.168.99.9:80 -r 10.244.0.1:8080")
}

func TestRenderErrors(t *testing.T) {
	plan := &compiler.Plan{Family: "IPv4"}
	for _, s := range []ipvs.Settings{
		{MasqueradeBit: 32},
		{MasqueradeBit: 14, Section: "bogus"},
		{MasqueradeBit: 14, IPTablesView: "bogus"},
		{MasqueradeBit: 14, Scheduler: "rr; rm -rf /"},
	} {
		if _, err := ipvs.Render(plan, s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if _, err := ipvs.Render(nil, ipvs.Settings{}); err == nil {
		t.Error("nil plan accepted")
	}
	if _, err := ipvs.Render(&compiler.Plan{Family: "IPv5"}, ipvs.Settings{}); err == nil {
		t.Error("bad family accepted")
	}
}

func TestEmptyPlan(t *testing.T) {
	out, err := ipvs.Render(&compiler.Plan{Family: "IPv4"}, ipvs.Settings{MasqueradeBit: 14, Section: ipvs.SectionIPTables, IPTablesView: ipvs.IPTablesRestore})
	if err != nil {
		t.Fatal(err)
	}
	want := `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
COMMIT
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}
