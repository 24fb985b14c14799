package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/svc2rules/svc2rules/internal/gen"
)

// BenchmarkCompile is "svc2rules compile -f FILE" in process (load,
// materialize, build, render, write to io.Discard) on the generated YAML
// input (hack/gen) for each backend; profile it with -cpuprofile.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		f := filepath.Join(b.TempDir(), "in.yaml")
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := gen.Write(out, gen.Defaults(n, 10)); err != nil {
			b.Fatal(err)
		}
		out.Close()
		for _, backend := range []string{"iptables", "nft", "ipvs"} {
			b.Run(fmt.Sprintf("%s/%d", backend, n), func(b *testing.B) {
				o := DefaultCompileOptions()
				o.Files, o.NodeName, o.Backend = []string{f}, "node-1", backend
				b.ReportAllocs()
				for b.Loop() {
					res, err := Compile(o, nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := WriteOutput("", res.Output, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "services/s")
			})
		}
	}
}
