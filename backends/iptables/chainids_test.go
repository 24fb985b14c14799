package iptables

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen"
)

// TestSaveByIDIsSaveByName: grouping the save view's rules by the chain ids
// numbered while building gives the text grouping them by chain name gives,
// on the golden inputs, a generated cluster, and a plan whose service ports
// repeat (the same chains in two service ports: the by-name fallback).
func TestSaveByIDIsSaveByName(t *testing.T) {
	var plans []*compiler.Plan
	files, _ := filepath.Glob("../../golden/*/input.yaml")
	var buf bytes.Buffer
	if err := gen.Write(&buf, gen.Defaults(300, 4)); err != nil {
		t.Fatal(err)
	}
	inputs := [][]byte{buf.Bytes()}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			inputs = append(inputs, data)
		}
	}
	for _, data := range inputs {
		for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data)})
			if err != nil {
				continue
			}
			if _, err := compiler.Normalize(in); err != nil {
				continue
			}
			p, _, err := compiler.Build(in, compiler.Options{Family: fam, NodeName: "node-1"})
			if err == nil {
				plans = append(plans, p)
			}
		}
	}
	if len(plans) < 10 {
		t.Fatalf("only %d plans", len(plans))
	}
	// Repeated service ports: every chain of the first ones gets two ids.
	dup := *plans[0]
	dup.ServicePorts = append(append([]*compiler.ServicePort(nil), dup.ServicePorts...), dup.ServicePorts[:5]...)
	plans = append(plans, &dup)
	s := Settings{MasqueradeBit: 14, NFAcct: true, LocalhostNodePorts: true,
		NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil),
		LocalDetector:     compiler.LocalDetector{Mode: "ClusterCIDR", Value: "10.0.0.0/8"}}
	for i, plan := range plans {
		got := buildPayload(plan, s).saveTextWith(true)
		want := buildPayload(plan, s).saveTextWith(false)
		if got != want {
			t.Fatalf("plan %d: save view by chain id differs from by name", i)
		}
	}
}
