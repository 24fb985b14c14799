package gen

import (
	"testing"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// Generated cases are deterministic, render, and kube-proxy accepts them.
func TestGenerateDeterministicAndAccepted(t *testing.T) {
	for i := 0; i < 60; i++ {
		a, b := Generate(7, i), Generate(7, i)
		if string(a.Render()) != string(b.Render()) || string(a.ArgsFile("")) != string(b.ArgsFile("")) {
			t.Fatalf("case %d: not deterministic", i)
		}
		if !a.Valid() {
			t.Fatalf("case %d: generated case is not valid", i)
		}
		if string(a.Clone().Render()) != string(a.Render()) {
			t.Fatalf("case %d: Clone differs", i)
		}
		s, err := oracle.ParseArgsFile(a.ArgsFile(""))
		if err != nil {
			t.Fatalf("case %d: args: %v", i, err)
		}
		for _, b := range oracle.Backends {
			if _, err := oracle.Run(b, s, a.Render(), oracle.RunOptions{}); err != nil {
				t.Fatalf("case %d %s: kube-proxy rejects the case: %v\n%s\n%s", i, b, err, a.ArgsFile(""), a.Render())
			}
		}
	}
}
