package ipvs_test

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/ipvs"
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

// BenchmarkRender measures plan → text for the script and each section; the
// figure to watch is services per second.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		var p *compiler.Plan
		for _, sec := range []ipvs.Section{ipvs.SectionScript, ipvs.SectionIPVSAdm, ipvs.SectionIPSet, ipvs.SectionIPTables} {
			name := string(sec)
			if name == "" {
				name = "script"
			}
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				if p == nil {
					p = benchPlan(b, n)
				}
				s := ipvs.Settings{MasqueradeBit: 14, Section: sec,
					NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)}
				b.ReportAllocs()
				var size int
				for b.Loop() {
					out, err := ipvs.Render(p, s)
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
