package nft

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen"
)

// TestOpsTextIsKnftables: opsText writes exactly what knftables'
// Transaction.String() writes for the same operations, for both views, on
// every golden input and on a generated cluster, under several settings.
func TestOpsTextIsKnftables(t *testing.T) {
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	files, _ := filepath.Glob("../../golden/*/input.yaml")
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			inputs = append(inputs, input{f, data})
		}
	}
	var buf bytes.Buffer
	// 2,500 Services: large enough for opsText to write in two halves.
	if err := gen.Write(&buf, gen.Defaults(2500, 4)); err != nil {
		t.Fatal(err)
	}
	inputs = append(inputs, input{"gen", buf.Bytes()})
	if len(inputs) < 10 {
		t.Fatalf("only %d inputs", len(inputs))
	}
	settings := []Settings{
		{MasqueradeBit: 14, NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"192.168.0.2/32"})},
		{MasqueradeBit: 3, MasqueradeAll: true, NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil),
			LocalDetector: compiler.LocalDetector{Mode: "ClusterCIDR", Value: "10.0.0.0/8"}},
		{MasqueradeBit: 14, LocalDetector: compiler.LocalDetector{Mode: "InterfaceNamePrefix", Value: "veth"},
			NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"127.0.0.0/8", "192.168.0.0/16"})},
	}
	n, halves := 0, 0
	for _, in := range inputs {
		for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			loaded, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(in.data)})
			if err != nil {
				continue
			}
			if _, err := compiler.Normalize(loaded); err != nil {
				continue
			}
			plan, _, err := compiler.Build(loaded, compiler.Options{Family: fam, NodeName: "node-1", FeatureGates: "KubeProxyNFTablesLocalhostNodePorts=true"})
			if err != nil {
				continue
			}
			for _, s := range settings {
				for _, view := range []View{ViewDump, ViewTransaction} {
					s.View = view
					ops, family, fake, err := renderOps(plan, s)
					if err != nil {
						continue
					}
					got := opsText(ops, family, kubeProxyTable, fake.NewTransaction)
					if len(ops) >= parallelTextOps {
						halves++
					}
					want := knftablesText(ops, fake.NewTransaction())
					if got != want {
						t.Fatalf("%s %s %s: opsText differs from knftables:\n%s", in.name, fam, view, firstDiff(got, want))
					}
					n++
				}
			}
		}
	}
	t.Logf("%d renders compared (%d written in halves)", n, halves)
	if halves == 0 {
		t.Fatalf("no render was large enough to be written in halves")
	}
	if n < 20 {
		t.Fatalf("only %d renders compared", n)
	}
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-200)
	return "opsText:   ..." + a[lo:min(len(a), i+200)] + "\nknftables: ..." + b[lo:min(len(b), i+200)]
}
