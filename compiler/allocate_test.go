package compiler

import (
	"fmt"
	"net"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	netutils "k8s.io/utils/net"
)

// materializeYAML loads a YAML stream and materializes it.
func materializeYAML(t *testing.T, y string, opts MaterializeOptions) (*Inputs, *Materialized, []Note, error) {
	t.Helper()
	in, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(y)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	notes, m, err := Materialize(in, opts)
	return in, m, notes, err
}

func svcYAML(ns, name, spec string) string {
	return fmt.Sprintf("---\napiVersion: v1\nkind: Service\nmetadata: {namespace: %s, name: %s}\nspec: %s\n", ns, name, spec)
}

func findService(t *testing.T, m *Materialized, ns, name string) *v1.Service {
	t.Helper()
	for _, s := range m.Services {
		if s.Namespace == ns && s.Name == name {
			return s.Service
		}
	}
	t.Fatalf("service %s/%s not found", ns, name)
	return nil
}

// allocated summarises what a Service got: clusterIPs and node ports.
func allocated(s *v1.Service) string {
	var nps []string
	for _, p := range s.Spec.Ports {
		nps = append(nps, fmt.Sprint(p.NodePort))
	}
	return fmt.Sprintf("%v %v np=%s hc=%d", s.Spec.ClusterIPs, s.Spec.IPFamilies, strings.Join(nps, ","), s.Spec.HealthCheckNodePort)
}

func TestAllocateStable(t *testing.T) {
	// 40 Services; allocating them with and without a few others (before
	// and after them in name order) gives every one the same values.
	var base strings.Builder
	for i := 0; i < 40; i++ {
		typ := "ClusterIP"
		if i%4 == 0 {
			typ = "NodePort"
		}
		base.WriteString(svcYAML("app", fmt.Sprintf("svc-%02d", i), fmt.Sprintf("{type: %s, ipFamilyPolicy: PreferDualStack, ports: [{name: a, port: 80}, {name: b, port: 443}]}", typ)))
	}
	_, ref, _, err := materializeYAML(t, base.String(), MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{
		svcYAML("aaa", "first", "{type: NodePort, ports: [{port: 80}]}"),
		svcYAML("zzz", "last", "{type: NodePort, ports: [{port: 80}]}"),
		svcYAML("app", "svc-20a", "{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}"),
	} {
		_, m, _, err := materializeYAML(t, extra+base.String(), MaterializeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			name := fmt.Sprintf("svc-%02d", i)
			if a, b := allocated(findService(t, ref, "app", name)), allocated(findService(t, m, "app", name)); a != b {
				t.Errorf("adding a Service moved app/%s: %s -> %s", name, a, b)
			}
		}
	}
	// And the same input twice gives the same bytes.
	_, a, _, _ := materializeYAML(t, base.String(), MaterializeOptions{})
	ya, _ := a.YAML(nil)
	yr, _ := ref.YAML(nil)
	if string(ya) != string(yr) {
		t.Error("two materializations differ")
	}
}

func TestAllocateValues(t *testing.T) {
	tests := []struct {
		name  string
		input string
		opts  MaterializeOptions
		check func(t *testing.T, m *Materialized)
		err   string
	}{{
		name:  "default SingleStack gets one IPv4 ClusterIP from 10.96.0.0/12, in the upper band",
		input: svcYAML("ns", "a", "{ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIP != s.Spec.ClusterIPs[0] || *s.Spec.IPFamilyPolicy != v1.IPFamilyPolicySingleStack {
				t.Fatalf("got %s", allocated(s))
			}
			ip := netutils.ParseIPSloppy(s.Spec.ClusterIP)
			_, cidr, _ := net.ParseCIDR("10.96.0.0/12")
			_, low, _ := net.ParseCIDR("10.96.0.0/23") // the static band is the first 256 addresses
			if !cidr.Contains(ip) || (low.Contains(ip) && ip.To4()[2] == 0) {
				t.Errorf("ClusterIP %s not in the dynamic part of 10.96.0.0/12", ip)
			}
			if s.Spec.Ports[0].TargetPort.IntVal != 80 {
				t.Errorf("targetPort not defaulted to port: %v", s.Spec.Ports[0].TargetPort)
			}
		},
	}, {
		name:  "PreferDualStack on the default (dual-stack) cluster: IPv4 then IPv6",
		input: svcYAML("ns", "a", "{ipFamilyPolicy: PreferDualStack, ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if len(s.Spec.ClusterIPs) != 2 || netutils.IsIPv6String(s.Spec.ClusterIPs[0]) || !CIDRContains("fd00:10:96::/112", s.Spec.ClusterIPs[1]) ||
				fmt.Sprint(s.Spec.IPFamilies) != "[IPv4 IPv6]" {
				t.Errorf("got %s", allocated(s))
			}
		},
	}, {
		name:  "PreferDualStack on a single-stack cluster: one address",
		input: svcYAML("ns", "a", "{ipFamilyPolicy: PreferDualStack, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{ServiceCIDRs: []string{"10.0.0.0/16"}},
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if len(s.Spec.ClusterIPs) != 1 || !CIDRContains("10.0.0.0/16", s.Spec.ClusterIP) {
				t.Errorf("got %s", allocated(s))
			}
		},
	}, {
		name:  "RequireDualStack with IPv6 first",
		input: svcYAML("ns", "a", "{ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv6, IPv4], ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if len(s.Spec.ClusterIPs) != 2 || !netutils.IsIPv6String(s.Spec.ClusterIP) || netutils.IsIPv6String(s.Spec.ClusterIPs[1]) {
				t.Errorf("got %s", allocated(s))
			}
		},
	}, {
		name:  "RequireDualStack on a single-stack cluster is an error",
		input: svcYAML("ns", "a", "{ipFamilyPolicy: RequireDualStack, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{ServiceCIDRs: []string{"10.0.0.0/16"}},
		err:   "Service ns/a: spec.ipFamilyPolicy: RequireDualStack, but the cluster's service CIDRs (10.0.0.0/16) are single-stack",
	}, {
		name:  "a family the cluster lacks is an error",
		input: svcYAML("ns", "a", "{ipFamilies: [IPv6], ports: [{port: 80}]}"),
		opts:  MaterializeOptions{ServiceCIDRs: []string{"10.0.0.0/16"}},
		err:   "spec.ipFamilies[0]: IPv6 is not configured on this cluster",
	}, {
		name:  "SingleStack with two families is an error",
		input: svcYAML("ns", "a", "{ipFamilyPolicy: SingleStack, ipFamilies: [IPv4, IPv6], ports: [{port: 80}]}"),
		err:   "must be RequireDualStack or PreferDualStack",
	}, {
		name:  "a written IPv4 ClusterIP with PreferDualStack gets the IPv6 secondary",
		input: svcYAML("ns", "a", "{clusterIP: 10.96.5.5, ipFamilyPolicy: PreferDualStack, ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if len(s.Spec.ClusterIPs) != 2 || s.Spec.ClusterIPs[0] != "10.96.5.5" || !netutils.IsIPv6String(s.Spec.ClusterIPs[1]) {
				t.Errorf("got %s", allocated(s))
			}
			if m.ClusterIPs != 1 {
				t.Errorf("counted %d allocations", m.ClusterIPs)
			}
		},
	}, {
		name:  "clusterIPs without clusterIP: clusterIP filled, nothing allocated",
		input: svcYAML("ns", "a", "{clusterIPs: [10.96.5.6], ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "a")
			if s.Spec.ClusterIP != "10.96.5.6" || m.Assumed() {
				t.Errorf("got %s, assumed %v", allocated(s), m.Assumed())
			}
		},
	}, {
		name:  "headless: families, no address; selectorless headless is RequireDualStack",
		input: svcYAML("ns", "h", "{clusterIP: None, selector: {app: x}, ports: [{port: 80}]}") + svcYAML("ns", "hs", "{clusterIP: None, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{ServiceCIDRs: []string{"10.0.0.0/16"}},
		check: func(t *testing.T, m *Materialized) {
			h, hs := findService(t, m, "ns", "h"), findService(t, m, "ns", "hs")
			if h.Spec.ClusterIP != "None" || fmt.Sprint(h.Spec.IPFamilies) != "[IPv4]" {
				t.Errorf("h: %s", allocated(h))
			}
			if *hs.Spec.IPFamilyPolicy != v1.IPFamilyPolicyRequireDualStack || fmt.Sprint(hs.Spec.IPFamilies) != "[IPv4 IPv6]" {
				t.Errorf("hs: %s", allocated(hs))
			}
		},
	}, {
		name:  "ExternalName gets nothing",
		input: svcYAML("ns", "x", "{type: ExternalName, externalName: example.com}"),
		check: func(t *testing.T, m *Materialized) {
			if s := findService(t, m, "ns", "x"); s.Spec.ClusterIP != "" || m.Assumed() {
				t.Errorf("got %s", allocated(s))
			}
		},
	}, {
		name:  "default/kubernetes gets the first address",
		input: svcYAML("default", "kubernetes", "{ports: [{name: https, port: 443}]}"),
		check: func(t *testing.T, m *Materialized) {
			if s := findService(t, m, "default", "kubernetes"); s.Spec.ClusterIP != "10.96.0.1" {
				t.Errorf("got %s", allocated(s))
			}
		},
	}, {
		name: "node ports: NodePort every port, ports sharing a number share it, band",
		input: svcYAML("ns", "np", "{type: NodePort, ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}, {name: web, port: 80}]}") +
			svcYAML("ns", "cip", "{ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			s := findService(t, m, "ns", "np")
			p := s.Spec.Ports
			if p[0].NodePort == 0 || p[0].NodePort != p[1].NodePort || p[2].NodePort == 0 || p[2].NodePort == p[0].NodePort {
				t.Errorf("got %s", allocated(s))
			}
			for _, x := range p {
				if x.NodePort < 30086 || x.NodePort > 32767 {
					t.Errorf("node port %d outside the dynamic band 30086-32767", x.NodePort)
				}
			}
			if c := findService(t, m, "ns", "cip"); c.Spec.Ports[0].NodePort != 0 {
				t.Errorf("ClusterIP Service got a node port")
			}
			if m.NodePorts != 2 {
				t.Errorf("counted %d node ports, want 2", m.NodePorts)
			}
		},
	}, {
		name: "LoadBalancer: node ports unless allocateLoadBalancerNodePorts false; health check port for Local only",
		input: svcYAML("ns", "lb", "{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}") +
			svcYAML("ns", "lb-nonp", "{type: LoadBalancer, allocateLoadBalancerNodePorts: false, externalTrafficPolicy: Local, ports: [{port: 80}]}") +
			svcYAML("ns", "lb-cluster", "{type: LoadBalancer, ports: [{port: 80}]}"),
		check: func(t *testing.T, m *Materialized) {
			lb, nonp, cl := findService(t, m, "ns", "lb"), findService(t, m, "ns", "lb-nonp"), findService(t, m, "ns", "lb-cluster")
			if lb.Spec.Ports[0].NodePort == 0 || lb.Spec.HealthCheckNodePort == 0 || lb.Spec.HealthCheckNodePort == lb.Spec.Ports[0].NodePort {
				t.Errorf("lb: %s", allocated(lb))
			}
			if nonp.Spec.Ports[0].NodePort != 0 || nonp.Spec.HealthCheckNodePort == 0 {
				t.Errorf("lb-nonp: %s", allocated(nonp))
			}
			if cl.Spec.Ports[0].NodePort == 0 || cl.Spec.HealthCheckNodePort != 0 {
				t.Errorf("lb-cluster: %s", allocated(cl))
			}
		},
	}, {
		name:  "--service-node-port-range",
		input: svcYAML("ns", "np", "{type: NodePort, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{NodePortRange: "20000+9"},
		check: func(t *testing.T, m *Materialized) {
			if np := findService(t, m, "ns", "np").Spec.Ports[0].NodePort; np < 20000 || np > 20009 {
				t.Errorf("node port %d outside 20000-20009", np)
			}
		},
	}, {
		name:  "two Services with one ClusterIP is an error",
		input: svcYAML("ns", "a", "{clusterIP: 10.96.1.1, ports: [{port: 80}]}") + svcYAML("ns", "b", "{clusterIP: 10.96.1.1, ports: [{port: 80}]}"),
		err:   "Service ns/b: spec.clusterIPs: 10.96.1.1 is already the ClusterIP of Service ns/a",
	}, {
		name:  "two Services with one node port is an error, whatever the protocols",
		input: svcYAML("ns", "a", "{type: NodePort, ports: [{port: 80, nodePort: 30100}]}") + svcYAML("ns", "b", "{type: NodePort, ports: [{port: 53, protocol: UDP, nodePort: 30100}]}"),
		err:   "Service ns/b: spec.ports[0].nodePort: 30100 is already node port 30100 of Service ns/a (port 80)",
	}, {
		name:  "a healthCheckNodePort equal to a node port is an error",
		input: svcYAML("ns", "a", "{type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 30100, ports: [{port: 80, nodePort: 30100}]}"),
		err:   "spec.healthCheckNodePort: 30100 is already node port 30100 of Service ns/a (port 80)",
	}, {
		name:  "one node port for the TCP and UDP ports of one number is fine",
		input: svcYAML("ns", "a", "{type: NodePort, ports: [{name: u, port: 53, protocol: UDP, nodePort: 30053}, {name: t, port: 53, protocol: TCP, nodePort: 30053}]}"),
		check: func(t *testing.T, m *Materialized) {},
	}, {
		name:  "a full range is an error",
		input: svcYAML("ns", "a", "{type: NodePort, ports: [{port: 80}]}") + svcYAML("ns", "b", "{type: NodePort, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{NodePortRange: "30000-30000"},
		err:   "Service ns/b: no free node port left in 30000-30000",
	}, {
		name:  "--no-allocate: nothing assumed, a Service without ClusterIP stays without",
		input: svcYAML("ns", "a", "{type: NodePort, ports: [{port: 80}]}"),
		opts:  MaterializeOptions{NoAllocate: true},
		check: func(t *testing.T, m *Materialized) {
			if s := findService(t, m, "ns", "a"); s.Spec.ClusterIP != "" || s.Spec.Ports[0].NodePort != 0 || m.Assumed() {
				t.Errorf("got %s", allocated(s))
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m, _, err := materializeYAML(t, tc.input, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error containing %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

// TestAllocateCollisionsAndReserved fills small ranges: written values are
// never handed out, every allocation is distinct, and the order is fixed.
func TestAllocateCollisionsAndReserved(t *testing.T) {
	var y strings.Builder
	y.WriteString(svcYAML("ns", "pinned", "{clusterIP: 10.0.0.3, type: NodePort, ports: [{port: 80, nodePort: 30002}]}"))
	for i := 0; i < 4; i++ {
		y.WriteString(svcYAML("ns", fmt.Sprintf("s%d", i), "{type: NodePort, ports: [{port: 80}]}"))
	}
	opts := MaterializeOptions{ServiceCIDRs: []string{"10.0.0.0/29"}, NodePortRange: "30000-30004"}
	_, m, _, err := materializeYAML(t, y.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, s := range m.Services {
		ip := s.Spec.ClusterIP
		if prev, dup := ips[ip]; dup {
			t.Errorf("%s and %s share %s", prev, s.Name, ip)
		}
		ips[ip] = s.Name
		// /29: .0 network, .7 broadcast, .1 the kubernetes Service.
		if ip == "10.0.0.0" || ip == "10.0.0.7" || ip == "10.0.0.1" {
			t.Errorf("%s got reserved address %s", s.Name, ip)
		}
		np := s.Spec.Ports[0].NodePort
		if prev, dup := ports[np]; dup {
			t.Errorf("%s and %s share node port %d", prev, s.Name, np)
		}
		ports[np] = s.Name
	}
	if ips["10.0.0.3"] != "pinned" || ports[30002] != "pinned" {
		t.Errorf("written values not kept: %v %v", ips, ports)
	}
	// Same input in another document order: same result.
	parts := strings.Split(y.String(), "---\n")
	var rev strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] != "" {
			rev.WriteString("---\n" + parts[i])
		}
	}
	_, m2, _, err := materializeYAML(t, rev.String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Services {
		if a, b := allocated(s.Service), allocated(findService(t, m2, s.Namespace, s.Name)); a != b {
			t.Errorf("%s depends on document order: %s vs %s", s.Name, a, b)
		}
	}
	// One more Service does not fit the /29 (5 usable addresses, all taken).
	y.WriteString(svcYAML("ns", "s9", "{ports: [{port: 80}]}"))
	if _, _, _, err := materializeYAML(t, y.String(), MaterializeOptions{ServiceCIDRs: opts.ServiceCIDRs}); err == nil || !strings.Contains(err.Error(), "no free IPv4 ClusterIP") {
		t.Errorf("want a full-range error, got %v", err)
	}
}

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]string{"": "30000-32767", "30000-32767": "30000-32767", "20000+99": "20000-20099", " 1-1 ": "1-1"} {
		r, err := ParsePortRange(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: got %v %v, want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"x", "30000", "32767-30000", "0-10", "60000-70000", "1+x"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestIPSpace(t *testing.T) {
	_, n, _ := net.ParseCIDR("fd00:10:244::/64")
	s := newIPSpace(n, false, false)
	if got := s.ip(5).String(); got != "fd00:10:244::5" {
		t.Errorf("ip(5) = %s", got)
	}
	if off, ok := s.offset(net.ParseIP("fd00:10:244::1:0")); !ok || off != 65536 {
		t.Errorf("offset = %d %v", off, ok)
	}
	_, n4, _ := net.ParseCIDR("10.96.0.0/12")
	s4 := newIPSpace(n4, true, true)
	if s4.lo != 1 || s4.hi != 1<<20-1 || s4.band != 257 {
		t.Errorf("10.96.0.0/12: lo %d hi %d band %d", s4.lo, s4.hi, s4.band)
	}
}
