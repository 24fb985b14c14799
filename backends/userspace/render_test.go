package userspace_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/userspace"
	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// specInput is the input of ../../../shared/spec/userspace.md §0.
const specInput = `apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec:
  clusterIP: 172.30.0.41
  ports:
  - {name: p80, port: 80, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc1, namespace: ns1}
subsets:
- addresses: [{ip: 10.0.1.1}, {ip: 10.0.1.2}, {ip: 10.0.1.3}]
  notReadyAddresses: [{ip: 10.0.1.9}]
  ports:
  - {name: p80, port: 80, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: svc2, namespace: ns2}
spec:
  type: NodePort
  clusterIP: 172.30.0.42
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports:
  - {port: 8080, nodePort: 30080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc2, namespace: ns2}
subsets:
- addresses: [{ip: 10.0.2.1}, {ip: 10.0.2.2}]
  ports:
  - {port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: svc3, namespace: ns3}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.43
  externalIPs: [192.168.99.11, 192.168.0.2]
  loadBalancerSourceRanges: [203.0.113.0/24]
  ports:
  - {name: p80, port: 80, nodePort: 30443, protocol: TCP}
status:
  loadBalancer:
    ingress:
    - ip: 1.2.3.4
    - hostname: lb.example.com
---
apiVersion: v1
kind: Service
metadata: {name: sctp, namespace: ns4}
spec:
  clusterIP: 172.30.0.44
  ports:
  - {name: s, port: 9999, protocol: SCTP}
`

// specRules is the fixed point of spec §5 (sorted service ports, proxy
// ports from 40000-40009 in that order).
const specRules = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-NODEPORT-NON-LOCAL - [0:0]
-A INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "ns2/svc2" -m tcp --dport 40002 -m state --state NEW -j ACCEPT
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 40003 -m state --state NEW -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER
-A OUTPUT -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-HOST
-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "ns2/svc2" -m tcp --dport 30080 -j REDIRECT --to-ports 40002
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 30443 -j REDIRECT --to-ports 40003
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "ns2/svc2" -m tcp --dport 30080 -j DNAT --to-destination 192.168.0.2:40002
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 30443 -j DNAT --to-destination 192.168.0.2:40003
-A KUBE-PORTALS-CONTAINER -d 172.30.0.41/32 -p udp -m comment --comment "ns1/svc1:dns" -m udp --dport 53 -j REDIRECT --to-ports 40000
-A KUBE-PORTALS-CONTAINER -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -j REDIRECT --to-ports 40001
-A KUBE-PORTALS-CONTAINER -d 172.30.0.42/32 -p tcp -m comment --comment "ns2/svc2" -m tcp --dport 8080 -j REDIRECT --to-ports 40002
-A KUBE-PORTALS-CONTAINER -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-CONTAINER -d 192.168.99.11/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-CONTAINER -d 192.168.99.11/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-CONTAINER -d 192.168.0.2/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-CONTAINER -d 192.168.0.2/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-CONTAINER -d 1.2.3.4/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -j REDIRECT --to-ports 40003
-A KUBE-PORTALS-HOST -d 172.30.0.41/32 -p udp -m comment --comment "ns1/svc1:dns" -m udp --dport 53 -j DNAT --to-destination 192.168.0.2:40000
-A KUBE-PORTALS-HOST -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:40001
-A KUBE-PORTALS-HOST -d 172.30.0.42/32 -p tcp -m comment --comment "ns2/svc2" -m tcp --dport 8080 -j DNAT --to-destination 192.168.0.2:40002
-A KUBE-PORTALS-HOST -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:40003
-A KUBE-PORTALS-HOST -d 192.168.99.11/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.0.2:40003
-A KUBE-PORTALS-HOST -d 192.168.0.2/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.0.2:40003
-A KUBE-PORTALS-HOST -d 1.2.3.4/32 -p tcp -m comment --comment "ns3/svc3:p80" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:40003
COMMIT
`

// pipeline runs load → normalise → plan → userspace view on a YAML text.
func pipeline(t testing.TB, yaml string, opts compiler.Options) (*compiler.Plan, []*compiler.UserspacePort) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{f}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compiler.Normalize(in); err != nil {
		t.Fatal(err)
	}
	plan, _, err := compiler.Build(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	return plan, compiler.BuildUserspace(in)
}

func v4Node() compiler.Options {
	return compiler.Options{Family: v1.IPv4Protocol, NodeIPs: []string{"192.168.0.2"}}
}

// stripHeader drops the leading comment block.
func stripHeader(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestRenderSpecFixedPoint(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009"})
	if err != nil {
		t.Fatal(err)
	}
	if s := stripHeader(got); s != specRules {
		t.Errorf("rules differ from spec §5:\n%s", s)
	}
	for _, want := range []string{
		"#   proxy port 40000/udp: ns1/svc1:dns\n",
		"#   no proxy port: ns4/sctp:s (SCTP)\n",
		"from the start of --proxy-port-range 40000-40009",
		"# warning: ns4/sctp:s: SCTP is not supported for user space proxy",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("header lacks %q:\n%s", want, got)
		}
	}
	again, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009"})
	if again != got {
		t.Error("two renders differ")
	}
}

func TestRenderDefaultRangeAndForms(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	for _, r := range []string{"", "0", "0-0"} {
		got, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: r})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "from 40000-60999; --proxy-port-range is unset, so they are placeholders") {
			t.Errorf("range %q: header does not say placeholders:\n%s", r, got)
		}
	}
	a, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "50000+9"})
	b, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "50000-50009"})
	if stripHeader(a) != stripHeader(b) || !strings.Contains(a, "--to-ports 50003") {
		t.Errorf("a+n form differs from a-b form")
	}
}

func TestRenderBindAddress(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009", BindAddress: "192.168.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "REDIRECT") {
		t.Error("specific bind address: no REDIRECT expected")
	}
	want := strings.ReplaceAll(specRules, "-j REDIRECT --to-ports ", "-j DNAT --to-destination 192.168.0.2:")
	if s := stripHeader(got); s != want {
		t.Errorf("bind 192.168.0.2:\n%s", s)
	}
	for _, bad := range []string{"127.0.0.1", "::1", "fd00::1", "not-an-ip"} {
		if _, err := userspace.Render(plan, userspace.Settings{Ports: ports, BindAddress: bad}); err == nil {
			t.Errorf("bind %s: want an error", bad)
		}
	}
}

func TestRenderIPv6(t *testing.T) {
	const in = `apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec:
  type: NodePort
  clusterIP: fd00:96::10
  externalIPs: ["2001:db8::99", 192.0.2.1]
  ports:
  - {port: 80, nodePort: 30080, protocol: TCP}
`
	plan, ports := pipeline(t, in, compiler.Options{Family: v1.IPv6Protocol, NodeIPs: []string{"fd00::2"}})
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ip6tables-restore",
		`-A KUBE-PORTALS-CONTAINER -d fd00:96::10/128 -p tcp -m comment --comment "ns/s" -m tcp --dport 80 -j REDIRECT --to-ports 40000`,
		`-A KUBE-PORTALS-HOST -d fd00:96::10/128 -p tcp -m comment --comment "ns/s" -m tcp --dport 80 -j DNAT --to-destination [fd00::2]:40000`,
		`-A KUBE-PORTALS-HOST -d 2001:db8::99/128 -p tcp -m comment --comment "ns/s" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination [fd00::2]:40000`,
		"# warning: ns/s: externalIP 192.0.2.1 is not IPv6",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "30080") {
		t.Error("the IPv4 external IP cuts the portal list: no NodePort rule expected")
	}
}

func TestRenderErrors(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	noNode, noNodePorts := pipeline(t, specInput, compiler.Options{Family: v1.IPv4Protocol})
	for name, c := range map[string]struct {
		plan *compiler.Plan
		s    userspace.Settings
		want string
	}{
		"no node IP":      {noNode, userspace.Settings{Ports: noNodePorts}, "node's IPv4 address is needed"},
		"range too small": {plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40002"}, "too few free ports"},
		"bad range":       {plan, userspace.Settings{Ports: ports, ProxyPortRange: "9-3"}, "--proxy-port-range"},
		"bad section":     {plan, userspace.Settings{Ports: ports, Section: "json"}, "unknown section"},
		"nil plan":        {nil, userspace.Settings{}, "nil plan"},
	} {
		_, err := userspace.Render(c.plan, c.s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
	if err := userspace.ValidatePortRange("1-70000"); err == nil {
		t.Error("ValidatePortRange(1-70000): want an error")
	}
}

func TestProxyPortsSkipPortsInUse(t *testing.T) {
	const in = `apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec:
  type: NodePort
  clusterIP: 10.96.0.1
  externalIPs: [192.168.0.2]
  ports:
  - {name: px, port: 30001, nodePort: 30000, protocol: TCP}
  - {name: py, port: 30003, nodePort: 30002, protocol: UDP}
`
	plan, ports := pipeline(t, in, v4Node())
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "30000-30005"})
	if err != nil {
		t.Fatal(err)
	}
	pp, err := canon.UserspaceProxyPorts(got)
	if err != nil {
		t.Fatal(err)
	}
	if pp["ns/a:px"] != 30004 || pp["ns/a:py"] != 30005 {
		t.Errorf("proxy ports %v: want the free numbers 30004, 30005", pp)
	}
}

func TestRuleDeduplication(t *testing.T) {
	const in = `apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.1
  externalIPs: [203.0.113.1, 203.0.113.1]
  ports:
  - {port: 80, nodePort: 30000, protocol: TCP}
status:
  loadBalancer:
    ingress: [{ip: 10.96.0.1}, {ip: 198.51.100.1}, {ip: 198.51.100.1}]
`
	plan, ports := pipeline(t, in, v4Node())
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	n := 0
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "-A KUBE-") {
			n++
			if seen[l] {
				t.Errorf("duplicate rule %s", l)
			}
			seen[l] = true
		}
	}
	// ClusterIP 2, external IP 3, LB 198.51.100.1 2, NodePort 3 (LB 10.96.0.1 = ClusterIP rules).
	if n != 10 {
		t.Errorf("%d rules, want 10:\n%s", n, got)
	}
}

func TestTable(t *testing.T) {
	plan, ports := pipeline(t, specInput+`---
apiVersion: v1
kind: Service
metadata: {name: late, namespace: ns5}
spec:
  clusterIP: 172.30.0.51
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}
  internalTrafficPolicy: Local
  ports:
  - {port: 53, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sl-1, namespace: ns6, labels: {kubernetes.io/service-name: sl}}
addressType: IPv4
ports: [{name: "", port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.6.2]
- addresses: [10.0.6.1]
- addresses: [10.0.6.3]
  conditions: {ready: false, serving: true, terminating: true}
---
apiVersion: v1
kind: Service
metadata: {name: sl, namespace: ns6}
spec:
  clusterIP: 172.30.0.61
  ports:
  - {port: 80, protocol: TCP}
`, v4Node())
	got, err := userspace.Render(plan, userspace.Settings{Ports: ports, Section: userspace.SectionTable})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ns1/svc1:p80\n  protocol:    TCP\n  proxy port:  40001 (kube-proxy listens on 0.0.0.0:40001)\n",
		"  backends:    10.0.1.1:80 10.0.1.2:80 10.0.1.3:80 (round robin over 3; from Endpoints ns1/svc1; 1 not-ready address(es) ignored)\n",
		"  affinity:    ClientIP, sliding TTL 10800s after a kube-proxy restart (Endpoints are seen before the Service, so timeoutSeconds 60 is ignored)",
		"  ignored:     externalTrafficPolicy: Local",
		"  held open:   192.168.0.2:80/TCP, *:30443/TCP",
		"  portals:     172.30.0.43:80 (clusterIP), 192.168.99.11:80 (externalIP), 192.168.0.2:80 (externalIP), 1.2.3.4:80 (loadBalancerIP)\n",
		"  ignored:     loadBalancerSourceRanges 203.0.113.0/24",
		"  proxy port:  none: SCTP is not supported for user space proxy",
		// No Endpoints: the Service's own TTL.
		"ns5/late\n  protocol:    UDP\n",
		"  affinity:    ClientIP, sliding TTL 5s",
		"none: kube-proxy reads each datagram and drops it",
		"  ignored:     internalTrafficPolicy: Local",
		// EndpointSlices only: their ready endpoints, the terminating one ignored.
		"  backends:    10.0.6.1:8080 10.0.6.2:8080 (round robin over 2; from the EndpointSlices of ns6/sl",
		"  ignored:     1 terminating (serving) endpoint(s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestPortsFromPlanFallback(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	exact, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009"})
	if err != nil {
		t.Fatal(err)
	}
	approx, err := userspace.Render(plan, userspace.Settings{ProxyPortRange: "40000-40009"})
	if err != nil {
		t.Fatal(err)
	}
	if exact != approx {
		t.Errorf("single-family input: the plan-derived view should give the same rules:\n%s", approx)
	}
}

func TestCompileCLI(t *testing.T) {
	f := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(f, []byte(specInput), 0o644); err != nil {
		t.Fatal(err)
	}
	o := cli.DefaultCompileOptions()
	o.Files, o.Backend, o.NodeIPs, o.ProxyPortRange = []string{f}, "userspace", []string{"192.168.0.2"}, "40000-40009"
	res, err := cli.Compile(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stripHeader(res.Output) != specRules {
		t.Errorf("compile -b userspace:\n%s", res.Output)
	}
	for _, bad := range []func(*cli.CompileOptions){
		func(o *cli.CompileOptions) { o.UserspaceSection = "json" },
		func(o *cli.CompileOptions) { o.ProxyPortRange = "x" },
	} {
		o2 := o
		bad(&o2)
		var ue *cli.UsageError
		if _, err := cli.Compile(o2, nil); err == nil || !asUsage(err, &ue) {
			t.Errorf("want a usage error, got %v", err)
		}
	}
}

func asUsage(err error, ue **cli.UsageError) bool {
	u, ok := err.(*cli.UsageError)
	*ue = u
	return ok
}

func TestCanonUnifiesProxyPorts(t *testing.T) {
	plan, ports := pipeline(t, specInput, v4Node())
	a, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009"})
	b, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "51000-51009"})
	if eq, diff, err := canon.Userspace(a, b); err != nil || !eq {
		t.Errorf("renumbered proxy ports should compare equal: %v %s", err, diff)
	}
	// Swapping two service ports' proxy ports is still a consistent renaming.
	swapped := strings.NewReplacer("40000", "40001", "40001", "40000").Replace(a)
	if eq, _, err := canon.Userspace(a, swapped); err != nil || !eq {
		t.Errorf("swapped proxy ports should compare equal: %v", err)
	}
	// One rule with another port: not one proxy port per service port.
	broken := strings.Replace(a, "192.168.0.2:40002", "192.168.0.2:40009", 1)
	if _, _, err := canon.Userspace(a, broken); err == nil {
		t.Error("inconsistent proxy ports: want an error")
	}
	// Two service ports on one proxy port.
	shared := strings.ReplaceAll(a, "40001", "40000")
	if _, _, err := canon.Userspace(a, shared); err == nil {
		t.Error("shared proxy port: want an error")
	}
	// A real difference stays one.
	other := strings.Replace(a, "--dport 30080", "--dport 30081", 1)
	if eq, _, _ := canon.Userspace(a, other); eq {
		t.Error("a changed NodePort must differ")
	}
	// Block order across service ports is free.
	lines := strings.Split(a, "\n")
	var reordered []string
	var portals []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A KUBE-PORTALS-CONTAINER") {
			portals = append(portals, l)
			continue
		}
		if l == "COMMIT" && len(portals) > 0 {
			// ns3 first, then the others
			var first, rest []string
			for _, p := range portals {
				if strings.Contains(p, "ns3/") {
					first = append(first, p)
				} else {
					rest = append(rest, p)
				}
			}
			reordered = append(reordered, first...)
			reordered = append(reordered, rest...)
			portals = nil
		}
		reordered = append(reordered, l)
	}
	if eq, diff, err := canon.Userspace(a, strings.Join(reordered, "\n")); err != nil || !eq {
		t.Errorf("block order must be free: %v %s", err, diff)
	}
}

func ExampleRender() {
	plan := &compiler.Plan{Family: v1.IPv4Protocol, Node: compiler.Node{IP: "192.168.0.2", Addresses: []string{"127.0.0.1", "192.168.0.2"}}}
	ports := []*compiler.UserspacePort{{Namespace: "ns", Name: "web", SPN: "ns/web", Protocol: v1.ProtocolTCP, ClusterIP: "10.96.0.10", Port: 80}}
	out, _ := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: "40000-40009"})
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "-A KUBE-PORTALS") {
			fmt.Println(l)
		}
	}
	// Output:
	// -A KUBE-PORTALS-CONTAINER -d 10.96.0.10/32 -p tcp -m comment --comment "ns/web" -m tcp --dport 80 -j REDIRECT --to-ports 40000
	// -A KUBE-PORTALS-HOST -d 10.96.0.10/32 -p tcp -m comment --comment "ns/web" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:40000
}
