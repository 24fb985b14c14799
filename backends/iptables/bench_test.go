package iptables

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen/genplan"
)

// BenchmarkRender measures plan → text for both views.
func BenchmarkRender(b *testing.B) {
	npa := compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)
	genplan.Bench(b, []View{ViewRestore, ViewSave}, func(v View) string { return string(v) },
		func(p *compiler.Plan, view View) (string, error) {
			return Render(p, Settings{MasqueradeBit: 14, NFAcct: true, LocalhostNodePorts: true, View: view,
				NodePortAddresses: npa})
		})
}
