package nft

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen/genplan"
)

// BenchmarkRenderGen measures plan → text on the generated inputs (hack/gen)
// for both views.
func BenchmarkRenderGen(b *testing.B) {
	npa := compiler.ResolveNodePortAddresses(v1.IPv4Protocol, []string{"192.168.0.2/32"})
	genplan.Bench(b, []View{ViewDump, ViewTransaction}, func(v View) string { return string(v) },
		func(p *compiler.Plan, view View) (string, error) {
			return Render(p, Settings{MasqueradeBit: 14, View: view,
				NodePortAddresses: npa})
		})
}
