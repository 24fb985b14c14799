// Package genplan turns internal/gen's generated input into a compiler.Plan,
// the starting point of every backend benchmark. (It is a package of its own
// because compiler's in-package benchmarks import internal/gen.)
package genplan

import (
	"bytes"

	"github.com/svc2rules/svc2rules/compiler"
	"github.com/svc2rules/svc2rules/internal/gen"
)

// Plan generates services × endpoints with gen.Defaults (as JSON, the fast
// path), loads, normalises and builds the plan for node-1 with node IP
// 192.168.0.2.
func Plan(services, endpoints int) (*compiler.Plan, error) {
	var buf bytes.Buffer
	o := gen.Defaults(services, endpoints)
	o.JSON = true
	if err := gen.Write(&buf, o); err != nil {
		return nil, err
	}
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: &buf})
	if err != nil {
		return nil, err
	}
	if _, err := compiler.Normalize(in); err != nil {
		return nil, err
	}
	p, _, err := compiler.Build(in, compiler.Options{NodeName: "node-1", NodeIPs: []string{"192.168.0.2"}})
	return p, err
}
