package diff

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/backends/iptables"
	"github.com/svc2rules/svc2rules/compiler"
)

// FuzzUnified: the hunks of any two texts turn the old one into the new one.
func FuzzUnified(f *testing.F) {
	f.Add("", "")
	f.Add("a\nb\nc\n", "a\nc\nd\n")
	f.Add("x\nx\nx\n", "x\n")
	f.Add("COMMIT\n*nat\n:A - [0:0]\n-A A -j B\nCOMMIT\n", "*filter\nCOMMIT\n*nat\n:A - [0:0]\n-A A -j C\nCOMMIT\n")
	f.Add("no newline", "no newline\n")
	f.Fuzz(func(t *testing.T, old, new string) {
		h := Unified(old, new)
		if (old == new) != (h == nil) {
			t.Fatalf("equal %t, %d hunks", old == new, len(h))
		}
		// splitLines marks a missing final newline in the text itself; apply
		// works on what Unified saw.
		want := strings.Join(splitLines(new), "\n")
		if len(splitLines(new)) > 0 {
			want += "\n"
		}
		if got := apply(t, old, h); got != want {
			t.Fatalf("apply: got %q, want %q", got, want)
		}
	})
}

// compileSide is the diff's compile without the CLI: manifests → plan →
// iptables save view (ok false when the manifests are refused).
func fuzzSide(data []byte, label string) (Side, bool) {
	in, err := compiler.Load(compiler.LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data), MaxDocuments: 100})
	if err != nil {
		return Side{}, false
	}
	if _, err := compiler.Normalize(in); err != nil {
		return Side{}, false
	}
	plan, _, err := compiler.Build(in, compiler.Options{Family: v1.IPv4Protocol, NodeName: "node-a", NodeIPs: []string{"192.168.0.2"}})
	if err != nil {
		return Side{}, false
	}
	out, err := iptables.Render(plan, iptables.Settings{MasqueradeBit: 14, NodePortAddresses: compiler.ResolveNodePortAddresses(v1.IPv4Protocol, nil), View: iptables.ViewSave})
	if err != nil {
		return Side{}, false
	}
	return Side{Label: label, Backend: "iptables", Plan: plan, Output: out}, true
}

// FuzzCompare: any two manifest sets compare without panicking, the same
// way twice; the JSON parses back, the text and markdown reports hold no
// raw control character and no line of a refused manifest.
func FuzzCompare(f *testing.F) {
	head := strings.Replace(base, "10.244.2.2", "10.244.2.3", 1)
	f.Add([]byte(base), []byte(head))
	f.Add([]byte(base), []byte(""))
	f.Add([]byte(""), []byte(base))
	f.Add([]byte(base), []byte(strings.Replace(base, "type: NodePort\n", "type: NodePort\n  externalTrafficPolicy: Local\n  sessionAffinity: ClientIP\n", 1)))
	f.Add([]byte(base), []byte(strings.Replace(base, "name: web", "name: \"web\\\"\\n-A INPUT -j ACCEPT\"", 1)))
	f.Fuzz(func(t *testing.T, oldData, newData []byte) {
		a, okA := fuzzSide(oldData, "old")
		b, okB := fuzzSide(newData, "new")
		if !okA || !okB {
			return
		}
		r := Compare(a, b, "manifests")
		var outs [2]string
		for i := range outs {
			r := Compare(a, b, "manifests")
			var w bytes.Buffer
			for _, format := range Formats {
				if err := Write(&w, format, r); err != nil {
					t.Fatal(err)
				}
			}
			outs[i] = w.String()
		}
		if outs[0] != outs[1] {
			t.Fatal("not deterministic")
		}
		var js bytes.Buffer
		if err := Write(&js, "json", r); err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatalf("JSON does not parse back: %v", err)
		}
		if back.Changed() != r.Changed() || len(back.Ports) != len(r.Ports) {
			t.Fatal("JSON round trip lost changes")
		}
		if (a.Output == b.Output) && len(r.Rules.Hunks) > 0 {
			t.Fatal("hunks for equal outputs")
		}
		for _, s := range []string{Text(r), Markdown(r)} {
			if !utf8.ValidString(s) {
				t.Fatal("invalid UTF-8")
			}
			for _, c := range s {
				if c < 0x20 && c != '\n' {
					t.Fatalf("control character %q in the report", c)
				}
			}
			if strings.Contains(s, "-A INPUT -j ACCEPT") {
				t.Fatal("injected rule in the report")
			}
		}
		if got := apply(t, a.Output, r.Rules.Hunks); got != b.Output {
			t.Fatal("rule diff does not apply")
		}
	})
}
