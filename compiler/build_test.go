package compiler

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

// planFor loads YAML text and builds the plan, failing the test on error.
func planFor(t *testing.T, yamlText string, opts Options) *Plan {
	t.Helper()
	in := &Inputs{SkippedKinds: map[string]int{}}
	if err := in.addFile("test.yaml", []byte(yamlText)); err != nil {
		t.Fatal(err)
	}
	if _, err := Normalize(in); err != nil {
		t.Fatal(err)
	}
	p, _, err := Build(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func epStrings(eps []*Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}

const svcHeader = `apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec:
  clusterIP: 10.96.0.1
  ports: [{name: p, port: 80}]
`

func slice(endpoints string) string {
	return `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-1, namespace: ns, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
ports: [{name: p, port: 8080}]
endpoints:
` + endpoints
}

func TestEndpointOrderIsStringOrder(t *testing.T) {
	p := planFor(t, svcHeader+slice(`- addresses: ["10.0.0.2"]
- addresses: ["10.0.0.10"]
- addresses: ["10.0.0.1"]
`), Options{})
	got := epStrings(p.ServicePorts[0].ClusterEndpoints)
	want := []string{"10.0.0.10:8080", "10.0.0.1:8080", "10.0.0.2:8080"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoint order (-want +got):\n%s", diff)
	}
}

func TestCategorizeEndpoints(t *testing.T) {
	ready := func(ip, node string) string {
		return `- addresses: ["` + ip + `"]
  nodeName: ` + node + "\n"
	}
	terminating := func(ip, node string) string {
		return `- addresses: ["` + ip + `"]
  nodeName: ` + node + `
  conditions: {ready: false, serving: true, terminating: true}
`
	}
	notReady := func(ip, node string) string {
		return `- addresses: ["` + ip + `"]
  nodeName: ` + node + `
  conditions: {ready: false, serving: false, terminating: false}
`
	}
	zoned := func(ip, node, zone string) string {
		return `- addresses: ["` + ip + `"]
  nodeName: ` + node + `
  hints: {forZones: [{name: ` + zone + `}]}
`
	}
	cases := []struct {
		name                      string
		spec                      string // extra spec lines
		endpoints                 string
		zone                      string
		cluster, local, reachable []string
		hasEndpoints              bool
		mode                      string
	}{
		{name: "ready ones only", endpoints: ready("10.0.0.1", "n1") + notReady("10.0.0.2", "n1"),
			cluster: []string{"10.0.0.1:8080"}, reachable: []string{"10.0.0.1:8080"}, hasEndpoints: true},
		{name: "serving-terminating fallback", endpoints: terminating("10.0.0.1", "n2") + notReady("10.0.0.2", "n1"),
			cluster: []string{"10.0.0.1:8080"}, reachable: []string{"10.0.0.1:8080"}, hasEndpoints: true},
		{name: "nothing usable", endpoints: notReady("10.0.0.2", "n1"), hasEndpoints: false},
		{name: "internal Local uses local ready", spec: "  internalTrafficPolicy: Local\n",
			endpoints: ready("10.0.0.1", "n1") + ready("10.0.0.2", "n2"),
			local:     []string{"10.0.0.1:8080"}, reachable: []string{"10.0.0.1:8080"}, hasEndpoints: true},
		{name: "internal Local without local endpoints", spec: "  internalTrafficPolicy: Local\n",
			endpoints: ready("10.0.0.2", "n2"), hasEndpoints: true},
		{name: "external Local: union with local terminating", spec: "  type: NodePort\n  externalTrafficPolicy: Local\n",
			endpoints: terminating("10.0.0.1", "n1") + ready("10.0.0.2", "n2"),
			cluster:   []string{"10.0.0.2:8080"}, local: []string{"10.0.0.1:8080"}, reachable: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, hasEndpoints: true},
		{name: "zone hints used", zone: "a", endpoints: zoned("10.0.0.1", "n1", "a") + zoned("10.0.0.2", "n2", "b"),
			cluster: []string{"10.0.0.1:8080"}, reachable: []string{"10.0.0.1:8080"}, hasEndpoints: true, mode: "PreferSameZone"},
		{name: "zone hints ignored when one endpoint lacks them", zone: "a", endpoints: zoned("10.0.0.1", "n1", "a") + ready("10.0.0.2", "n2"),
			cluster: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, reachable: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, hasEndpoints: true},
		{name: "zone hints ignored when none is for this zone", zone: "c", endpoints: zoned("10.0.0.1", "n1", "a") + zoned("10.0.0.2", "n2", "b"),
			cluster: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, reachable: []string{"10.0.0.1:8080", "10.0.0.2:8080"}, hasEndpoints: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := strings.Replace(svcHeader, "spec:\n", "spec:\n"+tc.spec, 1)
			if strings.Contains(tc.spec, "NodePort") {
				spec = strings.Replace(spec, "port: 80}", "port: 80, nodePort: 30080}", 1)
			}
			p := planFor(t, spec+slice(tc.endpoints), Options{NodeName: "n1", Zone: tc.zone})
			sp := p.ServicePorts[0]
			check := func(what string, want []string, got []*Endpoint) {
				if diff := cmp.Diff(want, epStrings(got)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", what, diff)
				}
			}
			check("cluster", tc.cluster, sp.ClusterEndpoints)
			check("local", tc.local, sp.LocalEndpoints)
			check("reachable", tc.reachable, sp.ReachableEndpoints)
			if sp.HasEndpoints != tc.hasEndpoints {
				t.Errorf("HasEndpoints = %v, want %v", sp.HasEndpoints, tc.hasEndpoints)
			}
			if sp.TopologyMode != tc.mode {
				t.Errorf("TopologyMode = %q, want %q", sp.TopologyMode, tc.mode)
			}
		})
	}
}

func TestServicePortDerivation(t *testing.T) {
	p := planFor(t, `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.041
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  externalIPs: ["192.168.99.1", "2001:db8::5"]
  loadBalancerSourceRanges: [" 203.0.113.5/25", "2001:db8::/32"]
  sessionAffinity: ClientIP
  ports:
  - {name: a, port: 80, nodePort: 30001}
  - {name: b, port: 81, protocol: UDP, nodePort: 30002}
status:
  loadBalancer:
    ingress:
    - ip: 1.2.3.4
    - ip: 5.6.7.8
      ipMode: Proxy
    - hostname: lb.example
    - ip: 2001:db8::9
`, Options{Family: v1.IPv4Protocol})
	if len(p.ServicePorts) != 2 {
		t.Fatalf("want 2 service ports, got %d", len(p.ServicePorts))
	}
	sp := p.ServicePorts[0]
	got := map[string]any{
		"SPN": sp.SPN, "ClusterIP": sp.ClusterIP, "ExternalIPs": sp.ExternalIPs, "VIPs": sp.LoadBalancerVIPs,
		"Ranges": sp.LoadBalancerSourceRanges, "HCNP": sp.HealthCheckNodePort, "Timeout": sp.StickyMaxAgeSeconds,
		"eTPLocal": sp.ExternalPolicyLocal, "Accessible": sp.ExternallyAccessible,
	}
	want := map[string]any{
		"SPN": "ns/lb:a", "ClusterIP": "172.30.0.41", "ExternalIPs": []string{"192.168.99.1"}, "VIPs": []string{"1.2.3.4"},
		"Ranges": []string{"203.0.113.0/25"}, "HCNP": int32(32000), "Timeout": int32(10800),
		"eTPLocal": true, "Accessible": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p.ServicePorts[1].Protocol != v1.ProtocolUDP || p.ServicePorts[1].SPN != "ns/lb:b" {
		t.Errorf("second port: %+v", p.ServicePorts[1])
	}
}

func TestZeroSourceRangeDisablesFirewall(t *testing.T) {
	p := planFor(t, strings.Replace(svcHeader, "spec:\n", "spec:\n  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/8, 0.0.0.0/0]\n", 1), Options{})
	if r := p.ServicePorts[0].LoadBalancerSourceRanges; len(r) != 0 {
		t.Errorf("ranges = %v, want none", r)
	}
}

func TestFamilyFiltering(t *testing.T) {
	dual := `apiVersion: v1
kind: Service
metadata: {name: d, namespace: ns}
spec:
  clusterIP: 10.96.0.5
  clusterIPs: [10.96.0.5, "fd00::5"]
  ipFamilies: [IPv4, IPv6]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: v6only, namespace: ns}
spec:
  clusterIP: "fd00::6"
  ports: [{port: 80}]
`
	v4 := planFor(t, dual, Options{Family: v1.IPv4Protocol})
	v6 := planFor(t, dual, Options{Family: v1.IPv6Protocol})
	if len(v4.ServicePorts) != 1 || v4.ServicePorts[0].ClusterIP != "10.96.0.5" {
		t.Errorf("ipv4 plan: %+v", v4.ServicePorts)
	}
	if len(v6.ServicePorts) != 2 || v6.ServicePorts[0].ClusterIP != "fd00::5" || v6.ServicePorts[1].ClusterIP != "fd00::6" {
		t.Errorf("ipv6 plan: %v", v6.ServicePorts)
	}
}

func TestDuplicateEndpointAcrossSlicesPrefersNonTerminating(t *testing.T) {
	in := svcHeader + slice(`- addresses: ["10.0.0.1"]
`) + strings.Replace(slice(`- addresses: ["10.0.0.1"]
  conditions: {ready: false, serving: true, terminating: true}
`), "name: s-1", "name: s-2", 1)
	p := planFor(t, in, Options{})
	eps := p.ServicePorts[0].Endpoints
	if len(eps) != 1 || !eps[0].Ready {
		t.Errorf("want the ready copy of the duplicate, got %+v", eps)
	}
}

func TestNodeObjectGivesZoneAndIP(t *testing.T) {
	p := planFor(t, svcHeader+`---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {topology.kubernetes.io/zone: z1}}
status:
  addresses: [{type: InternalIP, address: 192.168.5.5}]
`, Options{NodeName: "n1", Zone: "ignored"})
	if p.Node.Zone != "z1" || p.Node.IP != "192.168.5.5" {
		t.Errorf("node = %+v", p.Node)
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "192.168.5.5"}, p.Node.Addresses); diff != "" {
		t.Errorf("addresses: %s", diff)
	}
}

func TestMirroringEndpoints(t *testing.T) {
	p := planFor(t, `apiVersion: v1
kind: Service
metadata: {name: m, namespace: ns}
spec:
  clusterIP: 10.96.0.7
  ports: [{name: a, port: 80}, {name: b, port: 81}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: m, namespace: ns}
subsets:
- addresses: [{ip: 10.1.0.1, nodeName: n1}]
  notReadyAddresses: [{ip: 10.1.0.2}]
  ports: [{name: a, port: 8080}]
- addresses: [{ip: 10.1.0.3}, {ip: 10.1.0.1}]
  ports: [{name: b, port: 8081}]
`, Options{NodeName: "n1"})
	a, b := p.ServicePorts[0], p.ServicePorts[1]
	if diff := cmp.Diff([]string{"10.1.0.1:8080"}, epStrings(a.ClusterEndpoints)); diff != "" {
		t.Errorf("port a: %s", diff)
	}
	if len(a.Endpoints) != 2 || a.Endpoints[1].Ready || !a.Endpoints[0].IsLocal {
		t.Errorf("port a endpoints: %+v %+v", a.Endpoints[0], a.Endpoints[1])
	}
	if diff := cmp.Diff([]string{"10.1.0.1:8081", "10.1.0.3:8081"}, epStrings(b.ClusterEndpoints)); diff != "" {
		t.Errorf("port b: %s", diff)
	}
}

func TestInformerFilters(t *testing.T) {
	in := &Inputs{SkippedKinds: map[string]int{}}
	text := strings.Replace(svcHeader, "namespace: ns}", "namespace: ns, labels: {service.kubernetes.io/service-proxy-name: other}}", 1) + `---
apiVersion: v1
kind: Service
metadata: {name: h, namespace: ns}
spec: {clusterIP: None, ports: [{port: 80}]}
`
	if err := in.addFile("f.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	notes, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Services) != 0 || len(notes) != 2 {
		t.Errorf("services %d notes %v", len(in.Services), notes)
	}
}
