package iptables

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen/genplan"
)

func benchPlan(b *testing.B, services int) *compiler.Plan {
	b.Helper()
	p, err := genplan.Plan(services, 10)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkRender measures plan → text for both views; the figure to watch
// is services per second (services/op is the sub-benchmark size).
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		var p *compiler.Plan
		for _, view := range []View{ViewRestore, ViewSave} {
			b.Run(fmt.Sprintf("%s/%d", view, n), func(b *testing.B) {
				if p == nil {
					p = benchPlan(b, n)
				}
				s := Settings{MasqueradeBit: 14, NFAcct: true, LocalhostNodePorts: true, View: view,
					NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)}
				b.ReportAllocs()
				var size int
				for b.Loop() {
					out, err := Render(p, s)
					if err != nil {
						b.Fatal(err)
					}
					size = len(out)
				}
				b.SetBytes(int64(size))
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "services/s")
			})
		}
	}
}
