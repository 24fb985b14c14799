package diff

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/svc2rules/svc2rules/internal/cli"
)

// apply applies hunks to old, checking every context and removed line.
func apply(t testing.TB, old string, hunks []Hunk) string {
	t.Helper()
	x := splitLines(old)
	var out []string
	at := 0 // next line of x to copy
	for _, h := range hunks {
		start := h.OldStart - 1
		if h.OldCount == 0 {
			start = h.OldStart
		}
		if start < at || start > len(x) {
			t.Fatalf("hunk @@ -%d,%d out of order", h.OldStart, h.OldCount)
		}
		out = append(out, x[at:start]...)
		at = start
		for _, l := range h.Lines {
			switch l[0] {
			case ' ', '-':
				if at >= len(x) || x[at] != l[1:] {
					t.Fatalf("hunk @@ -%d: line %d is %q, hunk says %q", h.OldStart, at+1, x[min(at, len(x)-1)], l[1:])
				}
				if l[0] == ' ' {
					out = append(out, x[at])
				}
				at++
			case '+':
				out = append(out, l[1:])
			default:
				t.Fatalf("bad hunk line %q", l)
			}
		}
	}
	out = append(out, x[at:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func TestUnifiedAppliesBack(t *testing.T) {
	cases := [][2]string{
		{"", ""},
		{"a\n", "a\n"},
		{"", "a\nb\n"},
		{"a\nb\n", ""},
		{"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "a\nb\nC\nd\ne\nf\ng\nh\nI\nj\nk\n"},
		{"x\nx\nx\nx\n", "x\ny\nx\n"},
		{"COMMIT\n*nat\nCOMMIT\n", "*filter\nCOMMIT\n*nat\n-A X\nCOMMIT\n"},
	}
	for _, c := range cases {
		h := Unified(c[0], c[1])
		if (c[0] == c[1]) != (h == nil) {
			t.Errorf("%q vs %q: hunks %v", c[0], c[1], h)
		}
		if got := apply(t, c[0], h); got != c[1] {
			t.Errorf("apply(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

func TestUnifiedIsNotQuadratic(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&a, "-A KUBE-SEP-%d -j DNAT\n", i)
		fmt.Fprintf(&b, "-A KUBE-SEP-%d -j DNAT\n", i+1) // every line shifted
		if i%2 == 0 {
			a.WriteString("COMMIT\n") // many repeated (non-anchor) lines
		}
	}
	start := time.Now()
	h := Unified(a.String(), b.String())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200000-line diff took %v", d)
	}
	if got := apply(t, a.String(), h); got != b.String() {
		t.Error("large diff does not apply back")
	}
}

const base = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.1.1], nodeName: node-a}
- {addresses: [10.244.2.2], nodeName: node-b}
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: demo}
spec:
  clusterIP: 10.96.0.11
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: old-1
  namespace: demo
  labels: {kubernetes.io/service-name: old}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.244.1.9]}]
`

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runDiff(t *testing.T, old, new string, mutate func(*cli.CompileOptions)) *Report {
	t.Helper()
	dir := t.TempDir()
	o := cli.DefaultCompileOptions()
	o.NodeName = "node-a"
	o.NodeIPs = []string{"192.168.0.2"}
	if mutate != nil {
		mutate(&o)
	}
	r, err := Run(Options{Compile: o, Old: []string{write(t, dir, "old.yaml", old)}, New: []string{write(t, dir, "new.yaml", new)}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCompareSemantics(t *testing.T) {
	head := strings.Replace(base, "- {addresses: [10.244.1.1], nodeName: node-a}\n", "- {addresses: [10.244.3.3], nodeName: node-c}\n- {addresses: [10.244.4.4], nodeName: node-c, conditions: {ready: false}}\n", 1)
	head = strings.Replace(head, "  type: NodePort\n", "  type: NodePort\n  externalTrafficPolicy: Local\n", 1)
	head = head[:strings.Index(head, "apiVersion: v1\nkind: Service\nmetadata: {name: old")] + `apiVersion: v1
kind: Service
metadata: {name: new, namespace: demo}
spec:
  clusterIP: 10.96.0.12
  ports: [{port: 80, protocol: UDP}]
`
	r := runDiff(t, base, head, nil)
	if !r.Changed() {
		t.Fatal("no change found")
	}
	byKey := map[string]PortChange{}
	for _, p := range r.Ports {
		byKey[p.Key] = p
	}
	web := byKey["demo/web:http/TCP"]
	if web.Change != "changed" ||
		strings.Join(web.Fields, ";") != "externalTrafficPolicy: Cluster → Local" ||
		strings.Join(web.EndpointsAdded, ";") != "10.244.3.3:8080 (node node-c);10.244.4.4:8080 (not ready, node node-c)" ||
		strings.Join(web.EndpointsRemoved, ";") != "10.244.1.1:8080 (node node-a)" ||
		strings.Join(web.Balancing, ";") != "cluster traffic: 2 × 50% (other endpoints)" {
		t.Errorf("web: %+v", web)
	}
	wantTraffic := Traffic{Path: "NodePort 30080", Before: "forwarded to 2 endpoints", After: "DROPPED (externalTrafficPolicy Local, no endpoint on node-a)"}
	if len(web.Traffic) != 1 || web.Traffic[0] != wantTraffic {
		t.Errorf("web traffic: %+v", web.Traffic)
	}
	if old := byKey["demo/old/TCP"]; old.Change != "removed" || old.Traffic[0].After != verdictNone {
		t.Errorf("old: %+v", old)
	}
	if nw := byKey["demo/new/UDP"]; nw.Change != "added" || nw.Traffic[0].After != "REJECTED (no endpoints)" {
		t.Errorf("new: %+v", nw)
	}
	var impacts []string
	for _, im := range r.Impact {
		impacts = append(impacts, fmt.Sprintf("%t %s", im.Breaks, im.Text))
	}
	want := []string{
		"true demo/new UDP cluster IP 10.96.0.12:80: starts to be REJECTED (no endpoints)",
		"true demo/old TCP cluster IP 10.96.0.11:80: becomes unreachable (its rules are removed)",
		"true demo/web:http TCP NodePort 30080: starts to be DROPPED (externalTrafficPolicy Local, no endpoint on node-a)",
		"true demo/web:http TCP: endpoint 10.244.1.1:8080 (node node-a) no longer receives traffic",
	}
	if strings.Join(impacts, "\n") != strings.Join(want, "\n") {
		t.Errorf("impact:\n%s\nwant:\n%s", strings.Join(impacts, "\n"), strings.Join(want, "\n"))
	}
}

func TestChainAnnotationsMatchTheRules(t *testing.T) {
	head := strings.Replace(base, "10.244.2.2", "10.244.2.3", 1)
	r := runDiff(t, base, head, func(o *cli.CompileOptions) { o.IPTablesView = "restore" })
	if len(r.Rules.Chains) == 0 {
		t.Fatal("no chain annotated")
	}
	// Every annotated chain's rules carry its service in their comment.
	commentRE := regexp.MustCompile(`^[-+ ]-A (KUBE-\S+) -m comment --comment "?([^" ]+)`)
	chains := map[string]Chain{}
	for _, c := range r.Rules.Chains {
		chains[c.Name] = c
	}
	checked := 0
	for _, h := range r.Rules.Hunks {
		for _, l := range h.Lines {
			m := commentRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if c, ok := chains[m[1]]; ok {
				checked++
				if !strings.HasPrefix(c.Service, m[2]+" ") {
					t.Errorf("%s annotated %q, its rule says %q", m[1], c.Service, m[2])
				}
				if strings.HasPrefix(m[1], "KUBE-SEP-") && !strings.Contains(l, "10.244.2.") {
					continue
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no annotated chain found in a rule")
	}
	for _, c := range r.Rules.Chains {
		if c.Name == "" || !strings.HasPrefix(c.Service, "demo/web:http tcp") {
			t.Errorf("chain %+v", c)
		}
	}
}

func TestNoChangeAndDeterminism(t *testing.T) {
	r := runDiff(t, base, base, nil)
	if r.Changed() || len(r.Ports) != 0 || r.Unchanged != 2 {
		t.Fatalf("identical inputs: %+v", r)
	}
	head := strings.Replace(base, "10.244.2.2", "10.244.2.3", 1)
	dir := t.TempDir()
	oldPath, newPath := write(t, dir, "old.yaml", base), write(t, dir, "new.yaml", head)
	var outs [2]string
	for i := range outs {
		o := cli.DefaultCompileOptions()
		r, err := Run(Options{Compile: o, Old: []string{oldPath}, New: []string{newPath}})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range Formats {
			if err := Write(&b, f, r); err != nil {
				t.Fatal(err)
			}
		}
		outs[i] = b.String()
	}
	if outs[0] != outs[1] {
		t.Error("two runs give different reports")
	}
}

func TestRenderers(t *testing.T) {
	head := strings.Replace(base, "10.244.2.2", "10.244.2.3", 1)
	r := runDiff(t, base, head, nil)
	r.Old.Label, r.Rules.OldLabel = "base`|<b>\n", "base`|<b>\n"
	var js strings.Builder
	if err := Write(&js, "json", r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Ports) != 1 || back.Rules.Added == 0 || back.Mode != "manifests" {
		t.Errorf("json round trip: %+v", back)
	}
	md := Markdown(r)
	// The label is a code span no backtick in it can close; the newline is escaped.
	if !strings.Contains(md, "`` base`|<b>\\x0a ``") || strings.Contains(md, "<b>\n") || !strings.Contains(md, "```diff\n") || !strings.Contains(md, "| ~ | `demo/web:http` TCP |") {
		t.Errorf("markdown:\n%s", md)
	}
	text := Text(r)
	if !strings.Contains(text, "--- base`|<b>\\x0a\n") || !strings.Contains(text, "~ demo/web:http TCP (changed)") {
		t.Errorf("text:\n%s", text)
	}
	if err := Write(&strings.Builder{}, "html", r); err == nil {
		t.Error("unknown format: no error")
	}
}

func TestMarkdownRuleDiffIsBounded(t *testing.T) {
	var old, new strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&old, "-A KUBE-SERVICES -m comment --comment \"ns/s%d cluster IP\" -j KUBE-SVC-%d\n", i, i)
		fmt.Fprintf(&new, "-A KUBE-SERVICES -m comment --comment \"ns/s%d cluster IP\" -j KUBE-SVL-%d\n", i, i)
	}
	r := Compare(Side{Label: "a", Backend: "iptables", Output: old.String()}, Side{Label: "b", Backend: "iptables", Output: new.String()}, "manifests")
	md := Markdown(r)
	if len(md) > MaxMarkdownRuleBytes+10000 || !strings.Contains(md, "more lines (run svc2rules diff") {
		t.Errorf("markdown of a big diff: %d bytes", len(md))
	}
	if !strings.Contains(Text(r), "KUBE-SVL-1999") {
		t.Error("text output must keep the whole diff")
	}
}

func TestVsBackend(t *testing.T) {
	dir := t.TempDir()
	o := cli.DefaultCompileOptions()
	o.NodeName = "node-a"
	o.NodeIPs = []string{"192.168.0.2"}
	o.NodeAddresses = []string{"10.0.0.5"}
	o.ServiceCIDRs = []string{"10.96.0.0/16"}
	p := write(t, dir, "in.yaml", base)
	r, err := Run(Options{Compile: o, Old: []string{p}, VsBackend: "nft"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "backends" || len(r.Ports) != 0 || r.Unchanged != 2 || !r.Changed() {
		t.Fatalf("%+v", r)
	}
	node := strings.Join(r.Node, "\n")
	if !strings.Contains(node, "NodePorts accepted on: every local address, localhost included → 192.168.0.2") || !strings.Contains(node, "nft rejects traffic to addresses of the service CIDRs (10.96.0.0/16)") {
		t.Errorf("node notes:\n%s", node)
	}
	if _, err := Run(Options{Compile: o, Old: []string{p}, VsBackend: "iptables"}); err == nil {
		t.Error("--vs-backend equal to --backend: no error")
	}
	if _, err := Run(Options{Compile: o, Old: []string{p}, VsBackend: "bogus"}); err == nil {
		t.Error("unknown backend: no error")
	}
}
