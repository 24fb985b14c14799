package ipvs_test

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/ipvs"
	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen/genplan"
)

// BenchmarkRender measures plan → text for the script and each section.
func BenchmarkRender(b *testing.B) {
	name := func(sec ipvs.Section) string {
		if sec == "" {
			return "script"
		}
		return string(sec)
	}
	npa := compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil)
	genplan.Bench(b, []ipvs.Section{ipvs.SectionScript, ipvs.SectionIPVSAdm, ipvs.SectionIPSet, ipvs.SectionIPTables}, name,
		func(p *compiler.Plan, sec ipvs.Section) (string, error) {
			return ipvs.Render(p, ipvs.Settings{MasqueradeBit: 14, Section: sec,
				NodePortAddresses: npa})
		})
}
