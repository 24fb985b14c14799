package gen

import (
	"os"
	"testing"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// kube-proxy's output (as the oracle renders it) must not depend on Go map
// order for generated cases; otherwise the differential test would be flaky.
func TestOracleDeterministicOnGeneratedCases(t *testing.T) {
	n := 40
	if os.Getenv("GEN_DET_N") != "" {
		n = 2000
	}
	for i := 0; i < n; i++ {
		c := Generate(3, i)
		in := c.Render()
		for _, b := range oracle.Backends {
			var first string
			for k := 0; k < 4; k++ {
				res, err := oracle.Run(b, c.Settings, in, oracle.RunOptions{})
				if err != nil {
					t.Fatalf("case %d %s: %v", i, b, err)
				}
				if k == 0 {
					first = res.Output
				} else if res.Output != first {
					t.Fatalf("case %d %s: kube-proxy output not deterministic\n%s\n%s", i, b, c.ArgsFile(""), in)
				}
			}
		}
	}
}
