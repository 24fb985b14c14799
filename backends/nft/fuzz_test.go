package nft

import (
	"fmt"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
)

// bytesReader hands out small numbers from fuzz input (zeros when empty).
type bytesReader struct {
	data []byte
	i    int
}

func (r *bytesReader) n(max int) int {
	if r.i >= len(r.data) || max <= 0 {
		return 0
	}
	b := r.data[r.i]
	r.i++
	return int(b) % max
}

func (r *bytesReader) bool() bool { return r.n(2) == 1 }

func pick[T any](r *bytesReader, from ...T) T { return from[r.n(len(from))] }

// randomPlan builds a plan from fuzz bytes: consistent enough to look like
// one the compiler builds (endpoints categorised roughly as kube-proxy
// does), with names, addresses and flags drawn from small pools so that
// collisions (same IPs, same NodePorts, shared endpoints) are frequent.
func randomPlan(data []byte) (*compiler.Plan, Settings) {
	r := &bytesReader{data: data}
	v6 := r.bool()
	family := v1.IPv4Protocol
	ip := func(net, host int) string { return fmt.Sprintf("10.%d.0.%d", net, host) }
	cidrs := []string{"10.0.0.0/8", "192.168.0.0/24", "10.1.0.0/16", "0.0.0.0/0"}
	nodeIP := "192.168.0.2"
	addrs := []string{"127.0.0.1", "192.168.0.2", "192.168.1.2"}
	if v6 {
		family = v1.IPv6Protocol
		ip = func(net, host int) string { return fmt.Sprintf("fd00:%d::%x", net, host) }
		cidrs = []string{"fd00::/8", "2001:db8::/64", "fd00:1::/32", "::/0"}
		nodeIP = "2001:db8::1"
		addrs = []string{"2001:db8::1", "2001:db8:1::2", "::1"}
	}
	plan := &compiler.Plan{
		Family:       family,
		Node:         compiler.Node{Name: "node", IP: nodeIP, Addresses: addrs},
		FeatureGates: compiler.FeatureGates{AllowServiceExternalIPs: r.bool(), KubeProxyNFTablesLocalhostNodePorts: r.bool()},
	}
	if r.bool() {
		plan.ServiceCIDRs = []string{pick(r, cidrs...)}
	}
	nsp := r.n(6)
	seenPorts := map[string]bool{}
	for i := 0; i < nsp; i++ {
		sp := &compiler.ServicePort{
			Namespace: pick(r, "ns1", "ns2", "kube-system"),
			Name:      pick(r, "svc", "lb", "a"),
			PortName:  pick(r, "", "p80", "http"),
			Protocol:  pick(r, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP),
			ClusterIP: ip(96, r.n(4)),
			Port:      int32(pick(r, 80, 443, 53)),
		}
		sp.SPN = sp.Namespace + "/" + sp.Name
		if sp.PortName != "" {
			sp.SPN += ":" + sp.PortName
		}
		// A Service port name is unique within its Service and the
		// compiler keeps one object per name (the later), so a plan never
		// holds one service port twice.
		if seenPorts[sp.SPN+"/"+string(sp.Protocol)] {
			continue
		}
		seenPorts[sp.SPN+"/"+string(sp.Protocol)] = true
		if r.bool() {
			sp.NodePort = int32(30000 + r.n(3))
		}
		for j := r.n(3); j > 0; j-- {
			sp.ExternalIPs = append(sp.ExternalIPs, ip(99, r.n(4)))
		}
		for j := r.n(3); j > 0; j-- {
			sp.LoadBalancerVIPs = append(sp.LoadBalancerVIPs, ip(200, r.n(4)))
		}
		for j := r.n(3); j > 0; j-- {
			sp.LoadBalancerSourceRanges = append(sp.LoadBalancerSourceRanges, pick(r, cidrs[:3]...))
		}
		sp.SessionAffinityClientIP = r.bool()
		sp.StickyMaxAgeSeconds = int32(pick(r, 1, 300, 10800, 86400))
		sp.ExternallyAccessible = sp.NodePort != 0 || len(sp.LoadBalancerVIPs) > 0 || len(sp.ExternalIPs) > 0
		sp.ExternalPolicyLocal = sp.ExternallyAccessible && r.bool()
		sp.InternalPolicyLocal = r.bool()
		sp.UsesClusterEndpoints = !sp.InternalPolicyLocal || sp.ExternallyAccessible
		sp.UsesLocalEndpoints = sp.InternalPolicyLocal || sp.ExternalPolicyLocal
		seen := map[string]bool{}
		for j := r.n(5); j > 0; j-- {
			ep := &compiler.Endpoint{IP: ip(180, r.n(6)), Port: int32(pick(r, 80, 8080)), Ready: true, Serving: true}
			ep.IsLocal = r.bool()
			if ep.IsLocal {
				ep.NodeName = "node"
			}
			if !seen[ep.String()] {
				seen[ep.String()] = true
				sp.Endpoints = append(sp.Endpoints, ep)
			}
		}
		sort.Slice(sp.Endpoints, func(a, b int) bool { return sp.Endpoints[a].String() < sp.Endpoints[b].String() })
		sp.HasEndpoints = len(sp.Endpoints) > 0
		for _, ep := range sp.Endpoints {
			if sp.UsesClusterEndpoints {
				sp.ClusterEndpoints = append(sp.ClusterEndpoints, ep)
			}
			if sp.UsesLocalEndpoints && ep.IsLocal {
				sp.LocalEndpoints = append(sp.LocalEndpoints, ep)
			}
			if sp.UsesClusterEndpoints || (sp.UsesLocalEndpoints && ep.IsLocal) {
				sp.ReachableEndpoints = append(sp.ReachableEndpoints, ep)
			}
		}
		plan.TotalEndpoints += len(sp.Endpoints)
		plan.ServicePorts = append(plan.ServicePorts, sp)
	}
	sort.SliceStable(plan.ServicePorts, func(a, b int) bool { return plan.ServicePorts[a].SPN < plan.ServicePorts[b].SPN })

	s := Settings{MasqueradeAll: r.bool(), MasqueradeBit: r.n(32)}
	switch r.n(4) {
	case 1:
		s.LocalDetector = compiler.LocalDetector{Mode: "ClusterCIDR", Value: cidrs[0]}
	case 2:
		s.LocalDetector = compiler.LocalDetector{Mode: "BridgeInterface", Value: "cbr0"}
	case 3:
		s.LocalDetector = compiler.LocalDetector{Mode: "InterfaceNamePrefix", Value: "veth"}
	}
	var npa []string
	for j := r.n(3); j > 0; j-- {
		npa = append(npa, pick(r, append(cidrs, "127.0.0.0/8", "::1/128", nodeIP+map[bool]string{false: "/32", true: "/128"}[v6])...))
	}
	s.NodePortAddresses = compiler.ResolveNodePortAddresses(family, npa)
	return plan, s
}

// FuzzRender: any plan renders without panicking, deterministically, and
// both views describe the same table state.
func FuzzRender(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 1, 1, 0, 3, 1, 1, 1, 0, 1, 1, 2, 2, 2, 1, 1, 0, 1, 4, 1, 1, 2, 1, 3, 0, 1})
	f.Add([]byte{1, 1, 0, 0, 5, 2, 2, 2, 2, 3, 1, 1, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1, 0, 4, 3, 1, 0, 2, 1, 1, 0, 14, 1, 2, 1})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, many times over and over again"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, s := randomPlan(data)
		s.View = ViewDump
		dump1, err1 := Render(plan, s)
		dump2, err2 := Render(plan, s)
		if (err1 == nil) != (err2 == nil) || dump1 != dump2 {
			t.Fatalf("dump view not deterministic")
		}
		s.View = ViewTransaction
		tx1, err3 := Render(plan, s)
		tx2, _ := Render(plan, s)
		if tx1 != tx2 {
			t.Fatalf("transaction view not deterministic")
		}
		if err1 != nil || err3 != nil {
			t.Fatalf("render failed: %v / %v", err1, err3)
		}
		equal, diff, err := canon.NFT(dump1, tx1)
		if err != nil {
			t.Fatal(err)
		}
		if !equal {
			t.Fatalf("views differ:\n%s", diff)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	// 1000 service ports with 10 endpoints each (one local), a third of them
	// NodePorts, a tenth with session affinity.
	plan := &compiler.Plan{Family: v1.IPv4Protocol, Node: compiler.Node{Name: "node", IP: "192.168.0.2", Addresses: []string{"127.0.0.1", "192.168.0.2"}},
		ServiceCIDRs: []string{"10.96.0.0/16"}, FeatureGates: compiler.FeatureGates{AllowServiceExternalIPs: true}}
	for i := 0; i < 1000; i++ {
		sp := &compiler.ServicePort{Namespace: "ns", Name: fmt.Sprintf("svc%04d", i), PortName: "http", Protocol: v1.ProtocolTCP,
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/256, i%256), Port: 80, UsesClusterEndpoints: true, HasEndpoints: true,
			SessionAffinityClientIP: i%10 == 0, StickyMaxAgeSeconds: 10800}
		sp.SPN = "ns/" + sp.Name + ":http"
		if i%3 == 0 {
			sp.NodePort = int32(30000 + i)
			sp.ExternallyAccessible = true
		}
		for j := 0; j < 10; j++ {
			ep := &compiler.Endpoint{IP: fmt.Sprintf("10.%d.%d.%d", 1+j, i/256, i%256), Port: 8080, Ready: true, Serving: true, IsLocal: j == 0}
			sp.Endpoints = append(sp.Endpoints, ep)
		}
		sort.Slice(sp.Endpoints, func(a, b int) bool { return sp.Endpoints[a].String() < sp.Endpoints[b].String() })
		sp.ClusterEndpoints = sp.Endpoints
		sp.ReachableEndpoints = sp.Endpoints
		plan.TotalEndpoints += 10
		plan.ServicePorts = append(plan.ServicePorts, sp)
	}
	s := Settings{MasqueradeBit: 14, LocalDetector: compiler.LocalDetector{Mode: "ClusterCIDR", Value: "10.0.0.0/8"},
		NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"192.168.0.2/32"})}
	for _, view := range []View{ViewDump, ViewTransaction} {
		b.Run(string(view), func(b *testing.B) {
			s.View = view
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(plan, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
