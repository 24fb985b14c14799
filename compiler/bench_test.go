package compiler

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/svc2rules/svc2rules/internal/gen"
)

var benchSizes = []int{1000, 10000, 30000}

func genInput(b *testing.B, services int, json bool) []byte {
	b.Helper()
	var buf bytes.Buffer
	o := gen.Defaults(services, 10)
	o.JSON = json
	if err := gen.Write(&buf, o); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkLoad measures decoding (YAML or JSON → typed objects).
func BenchmarkLoad(b *testing.B) {
	for _, n := range benchSizes {
		for _, format := range []string{"yaml", "json"} {
			data := genInput(b, n, format == "json")
			b.Run(fmt.Sprintf("%s/%d", format, n), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data)}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkNormalizeAndBuild measures validation, defaulting, mirroring and
// plan building (decoding excluded).
func BenchmarkNormalizeAndBuild(b *testing.B) {
	for _, n := range benchSizes {
		data := genInput(b, n, true)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				in, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data)})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := Normalize(in); err != nil {
					b.Fatal(err)
				}
				if _, _, err := Build(in, Options{NodeName: "node-1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
