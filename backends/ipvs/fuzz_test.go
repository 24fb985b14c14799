package ipvs_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/ipvs"
	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/canon"
)

// fuzzManifests turns fuzz bytes into a small but valid set of manifests:
// services of every type with random ports, protocols, policies, affinity,
// external IPs, LB ingress and source ranges, and slices with random
// endpoints (local or not, any condition, duplicates, both families).
func fuzzManifests(data []byte) string {
	i := 0
	next := func(n int) int {
		if i >= len(data) || n <= 0 {
			return 0
		}
		v := int(data[i]) % n
		i++
		return v
	}
	var b strings.Builder
	protos := []string{"TCP", "UDP", "SCTP"}
	types := []string{"ClusterIP", "NodePort", "LoadBalancer"}
	v4 := func(k int) string { return fmt.Sprintf("10.%d.0.%d", k%3, 1+k%5) }
	v6 := func(k int) string { return fmt.Sprintf("fd00:%x::%x", k%3, 1+k%5) }
	nsvc := 1 + next(4)
	for s := 0; s < nsvc; s++ {
		typ := types[next(3)]
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: ns%d}\nspec:\n  type: %s\n", s, s%2, typ)
		fmt.Fprintf(&b, "  clusterIP: 172.30.0.%d\n  clusterIPs: [172.30.0.%d, \"fd00:96::%x\"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: PreferDualStack\n", 1+s, 1+s, 1+s)
		if typ != "ClusterIP" && next(2) == 0 {
			fmt.Fprintf(&b, "  externalTrafficPolicy: Local\n")
			if typ == "LoadBalancer" {
				fmt.Fprintf(&b, "  healthCheckNodePort: %d\n", 32000+s)
			}
		}
		if next(3) == 0 {
			fmt.Fprintf(&b, "  internalTrafficPolicy: Local\n")
		}
		if next(3) == 0 {
			fmt.Fprintf(&b, "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: %d}}\n", 1+next(200))
		}
		if next(3) == 0 {
			fmt.Fprintf(&b, "  externalIPs: [%s, %q]\n", "192.168.99."+fmt.Sprint(next(4)), "2001:db8:99::"+fmt.Sprint(next(4)))
		}
		if typ == "LoadBalancer" && next(2) == 0 {
			fmt.Fprintf(&b, "  loadBalancerSourceRanges: [%s]\n", []string{"192.168.0.0/16", "203.0.113.0/24", "0.0.0.0/0", "2001:db8::/32", "198.51.100.0/24, 2001:db8:1::/48"}[next(5)])
		}
		nports := 1 + next(2)
		b.WriteString("  ports:\n")
		for p := 0; p < nports; p++ {
			fmt.Fprintf(&b, "  - {name: p%d, port: %d, protocol: %s", p, 80+10*p+next(3), protos[next(3)])
			if typ != "ClusterIP" {
				fmt.Fprintf(&b, ", nodePort: %d", 30000+10*s+p)
			}
			b.WriteString("}\n")
		}
		if typ == "LoadBalancer" {
			fmt.Fprintf(&b, "status: {loadBalancer: {ingress: [{ip: 203.0.113.%d}, {ip: \"2001:db8:5::%d\"}]}}\n", next(3), next(3))
		}
		for _, fam := range []string{"IPv4", "IPv6"} {
			fmt.Fprintf(&b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s%d-%s, namespace: ns%d, labels: {kubernetes.io/service-name: s%d}}\naddressType: %s\n", s, strings.ToLower(fam), s%2, s, fam)
			b.WriteString("ports:\n")
			for p := 0; p < nports; p++ {
				fmt.Fprintf(&b, "- {name: p%d, port: %d, protocol: %s}\n", p, 8080+p, protos[next(3)])
			}
			b.WriteString("endpoints:\n")
			for e, n := 0, next(5); e < n; e++ {
				ip := v4(next(15))
				if fam == "IPv6" {
					ip = v6(next(15))
				}
				fmt.Fprintf(&b, "- {addresses: [%q], nodeName: %s, conditions: {ready: %v, serving: %v, terminating: %v}}\n",
					ip, []string{"test-node", "other"}[next(2)], next(3) != 0, next(2) == 0, next(3) == 0)
			}
		}
	}
	return b.String()
}

// FuzzRender checks invariants of Render over generated inputs: it is
// deterministic; every section is well-formed (17 sets with valid names,
// real servers under their virtual server, iptables that parses); the
// script embeds exactly the section payloads; KUBE-IPVS-IPS is the address list.
func FuzzRender(f *testing.F) {
	f.Add([]byte{}, "rr", false)
	f.Add([]byte{3, 1, 0, 0, 0, 1, 2, 1, 1, 2, 1, 4, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "mh", true)
	f.Add(bytes.Repeat([]byte{2, 0, 1}, 40), "sh", false)
	f.Fuzz(func(t *testing.T, data []byte, sched string, v6 bool) {
		if len(sched) > 8 {
			sched = sched[:8]
		}
		plan := fuzzPlan(t, fuzzManifests(data), v6)
		if plan == nil {
			t.Fatalf("generated manifests do not compile:\n%s", fuzzManifests(data))
		}
		var npa []string
		if len(data) > 0 && data[0]%4 == 0 {
			npa = []string{"192.168.0.0/24", "2001:db8::/64"}
		}
		s := ipvs.Settings{Scheduler: sched, MasqueradeBit: 14, NodePortAddresses: compiler.ResolveNodePortAddresses(plan.Family, npa)}
		script, err := ipvs.Render(plan, s)
		if err != nil {
			for _, r := range sched {
				if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
					return // invalid scheduler names are refused
				}
			}
			t.Fatalf("Render: %v", err)
		}
		again, _ := ipvs.Render(plan, s)
		if again != script {
			t.Fatal("Render is not deterministic")
		}
		section := func(sec ipvs.Section, view ipvs.IPTablesView) string {
			s2 := s
			s2.Section, s2.IPTablesView = sec, view
			out, err := ipvs.Render(plan, s2)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(script, "\n"+out+"SVC2RULES_EOF\n") {
				if sec != ipvs.SectionIPTables || view != ipvs.IPTablesSave {
					t.Errorf("script does not embed the %s payload", sec)
				}
			}
			return out
		}
		sets := section(ipvs.SectionIPSet, "")
		if n := strings.Count(sets, "create "); n != 17 {
			t.Errorf("%d sets, want 17", n)
		}
		var ipvsIPs []string
		for _, l := range lines(sets) {
			fields := strings.Fields(l)
			if len(fields) < 3 || len(fields[1]) > 31 || !strings.HasPrefix(fields[1], "KUBE-") {
				t.Errorf("bad ipset line %q", l)
			}
			if fields[0] == "add" && strings.HasSuffix(fields[1], "-IPVS-IPS") {
				ipvsIPs = append(ipvsIPs, fields[2])
			}
		}
		addrs := section(ipvs.SectionAddresses, "")
		if len(lines(addrs)) != len(ipvsIPs) && addrs != "" {
			t.Errorf("addresses %q vs KUBE-IPVS-IPS %v", addrs, ipvsIPs)
		}
		for _, ip := range ipvsIPs {
			if !strings.Contains(addrs, ip+"/") {
				t.Errorf("KUBE-IPVS-IPS %s not bound", ip)
			}
		}
		cur := ""
		for _, l := range lines(section(ipvs.SectionIPVSAdm, "")) {
			switch {
			case l == "":
			case strings.HasPrefix(l, "-A "):
				cur = strings.Fields(l)[2]
				if !strings.Contains(l, " -s ") {
					t.Errorf("no scheduler: %q", l)
				}
			case strings.HasPrefix(l, "-a "):
				if strings.Fields(l)[2] != cur || !strings.HasSuffix(l, " -m -w 1") {
					t.Errorf("real server line %q (under %q)", l, cur)
				}
			default:
				t.Errorf("bad ipvsadm line %q", l)
			}
		}
		for _, view := range []ipvs.IPTablesView{ipvs.IPTablesSave, ipvs.IPTablesRestore} {
			if _, err := canon.CanonicalIPTables(section(ipvs.SectionIPTables, view)); err != nil {
				t.Errorf("iptables %s view does not parse: %v", view, err)
			}
		}
	})
}

func fuzzPlan(t *testing.T, manifests string, v6 bool) *compiler.Plan {
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(manifests)})
	if err != nil {
		t.Logf("load: %v", err)
		return nil
	}
	if _, err := compiler.Normalize(in); err != nil {
		t.Logf("normalize: %v", err)
		return nil
	}
	fam := v1.IPv4Protocol
	if v6 {
		fam = v1.IPv6Protocol
	}
	p, _, err := compiler.Build(in, compiler.Options{Family: fam, NodeName: "test-node", NodeIPs: []string{"192.168.0.2", "2001:db8::1"}, NodeAddresses: []string{"192.168.1.2", "fe80::1"}})
	if err != nil {
		t.Logf("build: %v", err)
		return nil
	}
	return p
}
