package compiler

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// fuzzSeeds are the hand-written seeds of FuzzLoad (testdata/fuzz/FuzzLoad
// holds the corpus the fuzzer found interesting; the examples and golden
// inputs are added too when present).
var fuzzSeeds = []string{
	"",
	"---\n---\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}]\n",
	`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}}]}`,
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{port: 80}]\nendpoints: [{addresses: [10.0.0.1], hints: {forZones: [{name: a}]}}]\n",
	"apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: [{addresses: [{ip: 10.0.0.1}], notReadyAddresses: [{ip: 10.0.0.2}], ports: [{port: 80}]}]\n",
	// Hostile names: each must be rejected by validation.
	"apiVersion: v1\nkind: Service\nmetadata: {name: \"web\\\" -j ACCEPT\\n-A INPUT -j ACCEPT #\", namespace: demo}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80, name: \"SVC2RULES_EOF\\nrm -rf /\"}]}\n",
	// Alias bomb, deep nesting, a huge scalar.
	"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
	strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
	"kind: List\napiVersion: v1\nitems:\n- kind: List\n  apiVersion: v1\n  items:\n  - kind: List\n    apiVersion: v1\n    items: []\n",
}

func addSeedFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
}

// FuzzLoad: no input makes the loader, the validation, the normalisation or
// the plan builder panic or hang; every error names where it comes from;
// LoadAll, ValidateAll and the Locator (check's path) agree with Load.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	addSeedFiles(f, "../examples/*.yaml", "../golden/*/input.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		opts := LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data), MaxDocuments: 500}
		in, err := Load(opts)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			var ie *InputError
			if errors.As(err, &ie) && ie.Source.File != "<stdin>" {
				t.Fatalf("error does not name the input: %v", err)
			}
		} else {
			if _, err := Normalize(in); err == nil {
				for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
					if _, _, err := Build(in, Options{Family: fam, NodeName: "node-a", Zone: "a"}); err != nil {
						t.Fatalf("Build after a successful Normalize: %v", err)
					}
				}
			} else if !strings.HasPrefix(err.Error(), "<stdin>") {
				t.Fatalf("validation error does not name the input: %v", err)
			}
		}

		// check's path: never fails where Load succeeded, and leaves only
		// objects Normalize accepts.
		opts.Stdin = bytes.NewReader(data)
		all, findings, err2 := LoadAll(opts, nil)
		if err2 != nil && err == nil {
			t.Fatalf("LoadAll failed (%v) where Load succeeded", err2)
		}
		if err2 == nil {
			if err == nil && len(findings) > 0 {
				t.Fatalf("LoadAll found %v where Load succeeded", findings)
			}
			findings = append(findings, ValidateAll(all)...)
			loc := NewLocator("<stdin>", data)
			for _, fd := range findings {
				if l := loc.Line(fd.Source, fd.Field); l < 0 || l > bytes.Count(data, []byte("\n"))+1 {
					t.Fatalf("line %d of %+v out of the input", l, fd)
				}
				if strings.ContainsAny(fd.Message, "\n\r") && fd.Code != "invalid-yaml" && fd.Code != "invalid-object" {
					t.Fatalf("raw newline in %q", fd.Message)
				}
			}
			if _, err := Normalize(all); err != nil {
				t.Fatalf("Normalize after ValidateAll: %v", err)
			}
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%d bytes took %v", len(data), d)
		}
	})
}
