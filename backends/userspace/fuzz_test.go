package userspace_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/svc2rules/svc2rules/backends/userspace"
	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
)

// FuzzRender feeds arbitrary manifests through the whole pipeline. For every
// input the compiler accepts, Render must not fail (a big enough range is
// given), must be deterministic, and its rules must parse as iptables-restore
// input with exactly one proxy port per service port, none shared, all in
// the range.
func FuzzRender(f *testing.F) {
	f.Add([]byte(specInput), "", false)
	f.Add([]byte(specInput), "40000-40009", true)
	if inputs, _ := filepath.Glob("../../golden/*/input.yaml"); len(inputs) > 0 {
		for _, p := range inputs {
			if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
				f.Add(data, "", strings.Contains(p, "v6"))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, portRange string, v6 bool) {
		if userspace.ValidatePortRange(portRange) != nil {
			portRange = ""
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "in.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := compiler.Load(compiler.LoadOptions{Paths: []string{p}})
		if err != nil {
			return
		}
		if _, err := compiler.Normalize(in); err != nil {
			return
		}
		opts := compiler.Options{Family: v1.IPv4Protocol, NodeIPs: []string{"192.168.0.2"}, NodeAddresses: []string{"192.168.1.2"}}
		if v6 {
			opts = compiler.Options{Family: v1.IPv6Protocol, NodeIPs: []string{"fd00::2"}}
		}
		plan, _, err := compiler.Build(in, opts)
		if err != nil {
			return
		}
		ports := compiler.BuildUserspace(in)
		s := userspace.Settings{Ports: ports, ProxyPortRange: portRange}
		out, err := userspace.Render(plan, s)
		if err != nil {
			if strings.Contains(err.Error(), "too few free ports") {
				return
			}
			t.Fatalf("Render: %v", err)
		}
		again, _ := userspace.Render(plan, s)
		if again != out {
			t.Fatal("Render is not deterministic")
		}
		pp, err := canon.UserspaceProxyPorts(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := canon.CanonicalUserspace(out); err != nil {
			t.Fatal(err)
		}
		lo, hi := 40000, 60999
		// kube-proxy's own parser; base 0 means "the default range".
		if pr, err := utilnet.ParsePortRange(portRange); err == nil && pr.Base != 0 {
			lo, hi = pr.Base, pr.Base+pr.Size-1
		}
		for spn, p := range pp {
			if p < lo || p > hi {
				t.Fatalf("%s: proxy port %d outside %d-%d", spn, p, lo, hi)
			}
		}
		if _, err := userspace.Render(plan, userspace.Settings{Ports: ports, ProxyPortRange: portRange, Section: userspace.SectionTable}); err != nil {
			t.Fatalf("table: %v", err)
		}
	})
}

// syntheticPorts is a cluster of n Services, each with a TCP and a UDP port,
// three external IPs, a load-balancer IP, NodePorts and 10 backends.
func syntheticPorts(n int) (*compiler.Plan, []*compiler.UserspacePort) {
	plan := &compiler.Plan{Family: v1.IPv4Protocol, Node: compiler.Node{IP: "192.168.0.2", Addresses: []string{"127.0.0.1", "192.168.0.2"}}}
	var ports []*compiler.UserspacePort
	for i := 0; i < n; i++ {
		for j, proto := range []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP} {
			name := fmt.Sprintf("svc%05d", i)
			p := &compiler.UserspacePort{
				Namespace: "bench", Name: name, PortName: strings.ToLower(string(proto)), Protocol: proto,
				SPN:       "bench/" + name + ":" + strings.ToLower(string(proto)),
				ClusterIP: fmt.Sprintf("10.%d.%d.%d", 96+i>>16, (i>>8)&255, i&255),
				Port:      80, NodePort: int32(30000 + (2*i+j)%2768),
				ExternalIPs:     []string{fmt.Sprintf("203.0.%d.%d", (i>>8)&255, i&255), "198.51.100.1", "198.51.100.2"},
				LoadBalancerIPs: []string{fmt.Sprintf("192.0.2.%d", i&255)},
			}
			for k := 0; k < 10; k++ {
				p.Backends = append(p.Backends, fmt.Sprintf("10.244.%d.%d:8080", i&255, k))
			}
			ports = append(ports, p)
		}
	}
	return plan, ports
}

// BenchmarkRender: 1000 Services (2000 service ports, 26000 rules).
func BenchmarkRender(b *testing.B) {
	plan, ports := syntheticPorts(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := userspace.Render(plan, userspace.Settings{Ports: ports}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTable: the same cluster's --userspace-section table.
func BenchmarkTable(b *testing.B) {
	plan, ports := syntheticPorts(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := userspace.Render(plan, userspace.Settings{Ports: ports, Section: userspace.SectionTable}); err != nil {
			b.Fatal(err)
		}
	}
}
