package genplan

import (
	"fmt"
	"testing"

	"github.com/svc2rules/svc2rules/compiler"
)

// Sizes are the cluster sizes (Services, 10 endpoints each) every backend
// benchmark runs at.
var Sizes = []int{1000, 10000, 30000}

// Bench is a backend benchmark: for each size and each view (or section) a
// sub-benchmark "NAME/SIZE" renders the generated plan (made once per size)
// with render, reporting allocations, bytes of output and services/s, the
// figure to watch.
func Bench[V any](b *testing.B, views []V, name func(V) string, render func(*compiler.Plan, V) (string, error)) {
	for _, n := range Sizes {
		var p *compiler.Plan
		for _, view := range views {
			b.Run(fmt.Sprintf("%s/%d", name(view), n), func(b *testing.B) {
				if p == nil {
					var err error
					if p, err = Plan(n, 10); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				var size int
				for b.Loop() {
					out, err := render(p, view)
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
