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

// TestParallelPayloadIsSequential: the payload built with the service-port
// loop split between two goroutines gives the texts of the payload built in
// one, for both views, on a generated cluster large enough to be split
// (with and without a local-traffic detector, masquerade-all) and on one
// whose service ports repeat across the halves (chains numbered twice).
func TestParallelPayloadIsSequential(t *testing.T) {
	var buf bytes.Buffer
	if err := gen.Write(&buf, gen.Defaults(2*parallelServicePorts, 3)); err != nil {
		t.Fatal(err)
	}
	var plans []*compiler.Plan
	for _, fam := range []v1.IPFamily{v1.IPv4Protocol} {
		in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(buf.Bytes())})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := compiler.Normalize(in); err != nil {
			t.Fatal(err)
		}
		p, _, err := compiler.Build(in, compiler.Options{Family: fam, NodeName: "node-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.ServicePorts) < parallelServicePorts {
			t.Fatalf("%s: only %d service ports", fam, len(p.ServicePorts))
		}
		plans = append(plans, p)
	}
	dup := *plans[0]
	dup.ServicePorts = append(append([]*compiler.ServicePort(nil), dup.ServicePorts...), dup.ServicePorts...)
	plans = append(plans, &dup)
	settings := []Settings{
		{MasqueradeBit: 14, NFAcct: true, LocalhostNodePorts: true, NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)},
		{MasqueradeBit: 3, MasqueradeAll: true, NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"192.168.0.0/16"}),
			LocalDetector: compiler.LocalDetector{Mode: "ClusterCIDR", Value: "10.0.0.0/8"}},
	}
	for i, plan := range plans {
		for j, s := range settings {
			one, two := buildPayloadWith(plan, s, 1), buildPayloadWith(plan, s, 2)
			if got, want := two.restoreText(), one.restoreText(); got != want {
				t.Fatalf("plan %d, settings %d: restore view differs when built in parallel", i, j)
			}
			if got, want := two.saveText(plan.Family), one.saveText(plan.Family); got != want {
				t.Fatalf("plan %d, settings %d: save view differs when built in parallel", i, j)
			}
			if got, want := two.saveTextWith(false), one.saveTextWith(false); got != want {
				t.Fatalf("plan %d, settings %d: save view by name differs when built in parallel", i, j)
			}
		}
	}
}
