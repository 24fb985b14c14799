package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocatorFindsFieldLines(t *testing.T) {
	text := `# a comment
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    kubernetes.io/service-name: x
spec:
  clusterIP: 10.0.0.1
  ports:
  - name: http
    port: 80
    nodePort: 30000
  - name: https
    port: 443
    nodePort: 30001
  externalIPs: [1.2.3.4, 5.6.7.8]
---

apiVersion: v1
kind: Service
metadata: {name: flow}
spec:
  ports:
    - port: 1
      "nodePort": 2
`
	l := NewLocator("f.yaml", []byte(text))
	src1 := Source{File: "f.yaml", Document: 1, Line: 2}
	src2 := Source{File: "f.yaml", Document: 2, Line: 20}
	cases := []struct {
		src   Source
		field string
		want  int
	}{
		{src1, "", 2},
		{src1, "metadata.name", 5},
		{src1, "metadata.labels[kubernetes.io/service-name]", 7},
		{src1, "spec.clusterIP", 9},
		{src1, "spec.ports", 10},
		{src1, "spec.ports[0]", 11},
		{src1, "spec.ports[0].nodePort", 13},
		{src1, "spec.ports[1].name", 14},
		{src1, "spec.ports[1].nodePort", 16},
		{src1, "spec.externalIPs[1]", 17},    // flow style: the key's line
		{src1, "spec.clusterIPs[0]", 8},      // absent (defaulted): the deepest found
		{src1, "status.loadBalancer", 2},     // absent altogether: the document
		{src2, "metadata.name", 22},          // flow mapping
		{src2, "spec.ports[0].nodePort", 26}, // quoted key, indented sequence
		{Source{File: "f.yaml", Document: 3, Line: 1}, "spec", 1},
	}
	for _, tc := range cases {
		if got := l.Line(tc.src, tc.field); got != tc.want {
			t.Errorf("Line(%d, %q) = %d, want %d", tc.src.Document, tc.field, got, tc.want)
		}
	}
}

func TestLoadAllGoesOnPastBadDocuments(t *testing.T) {
	dir := t.TempDir()
	text := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n" +
		"---\nkey: [unclosed\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: \"eighty\"}]}\n" +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec: {clusterIP: 10.0.0.3, ports: [{port: 80}]}\n"
	p := filepath.Join(dir, "in.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var kept []string
	in, findings, err := LoadAll(LoadOptions{Paths: []string{p}}, func(file string, _ []byte) { kept = append(kept, file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Services) != 2 || len(kept) != 1 {
		t.Fatalf("services %d, kept %v", len(in.Services), kept)
	}
	if len(findings) != 2 {
		t.Fatalf("findings %+v", findings)
	}
	if f := findings[0]; f.Code != "invalid-yaml" || f.Source.Line != 6 {
		t.Errorf("first finding %+v", f)
	}
	if f := findings[1]; f.Code != "invalid-object" || f.Object() != "Service b" || f.Source.Line != 8 {
		t.Errorf("second finding %+v", f)
	}
}

func TestDocumentLimit(t *testing.T) {
	many := strings.Repeat("---\napiVersion: v1\nkind: ConfigMap\n", 11)
	_, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(many), MaxDocuments: 10})
	if !errors.Is(err, ErrTooManyDocuments) || !strings.Contains(err.Error(), "<stdin>") || !strings.Contains(err.Error(), "more than 10") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(many), MaxDocuments: 11}); err != nil {
		t.Fatalf("11 documents with a limit of 11: %v", err)
	}
	list := `{"apiVersion":"v1","kind":"List","items":[` + strings.TrimSuffix(strings.Repeat(`{"apiVersion":"v1","kind":"ConfigMap"},`, 10), ",") + `]}`
	if _, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(list), MaxDocuments: 10}); !errors.Is(err, ErrTooManyDocuments) {
		t.Fatalf("List items count too: err = %v", err)
	}
	json := strings.Repeat(`{"apiVersion":"v1","kind":"ConfigMap"}`+"\n", 11)
	_, _, err = LoadAll(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(json), MaxDocuments: 10}, nil)
	if !errors.Is(err, ErrTooManyDocuments) {
		t.Fatalf("LoadAll, JSON stream: err = %v", err)
	}
}

func TestValidateAll(t *testing.T) {
	text := `apiVersion: v1
kind: Service
metadata: {name: ok, namespace: ns}
spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: "web\" -j ACCEPT", namespace: ns}
spec: {clusterIP: 10.0.0.2, ports: [{port: 80, name: "a b"}, {port: 70000, name: x, targetPort: "Bad_Name"}]}
---
apiVersion: v1
kind: Service
metadata: {name: cip, namespace: ns}
spec: {clusterIP: 10.0.0.3, externalTrafficPolicy: Local, healthCheckNodePort: 30000, loadBalancerSourceRanges: [10.0.0.0/8], ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ep, namespace: ns}
subsets:
- addresses: [{ip: 10.1.1.1, nodeName: "Node 1"}]
  ports: [{port: 80}, {port: 81}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sl, namespace: ns, labels: {kubernetes.io/service-name: ok}}
addressType: IPv4
ports: [{name: a, port: 80}, {name: a, port: 81}]
endpoints:
- addresses: [10.1.1.2]
  hints: {forZones: [{name: "zone a"}]}
`
	in := &Inputs{SkippedKinds: map[string]int{}}
	if err := in.addFile("v.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	findings := ValidateAll(in)
	got := map[string]bool{}
	for _, f := range findings {
		got[f.Object()+"|"+f.Field+"|"+f.Code] = true
		if strings.ContainsAny(f.Message, "\n\r") {
			t.Errorf("raw control character in %q", f.Message)
		}
	}
	for _, want := range []string{
		`Service "ns/web\" -j ACCEPT"|metadata.name|invalid-name`,
		`Service "ns/web\" -j ACCEPT"|spec.ports[0].name|invalid-name`,
		`Service "ns/web\" -j ACCEPT"|spec.ports[1].port|invalid-port`,
		`Service "ns/web\" -j ACCEPT"|spec.ports[1].targetPort|invalid-port`,
		"Service ns/cip|spec.externalTrafficPolicy|forbidden-field",
		"Service ns/cip|spec.healthCheckNodePort|forbidden-field",
		"Service ns/cip|spec.loadBalancerSourceRanges|forbidden-field",
		"Endpoints ns/ep|subsets[0].ports[0].name|required-value",
		"Endpoints ns/ep|subsets[0].addresses[0].nodeName|invalid-name",
		"EndpointSlice ns/sl|ports[1].name|duplicate-value",
		"EndpointSlice ns/sl|endpoints[0].hints.forZones[0].name|invalid-name",
	} {
		if !got[want] {
			t.Errorf("missing finding %s", want)
		}
	}
	if len(in.Services) != 1 || in.Services[0].Name != "ok" || len(in.Endpoints) != 0 || len(in.EndpointSlices) != 0 {
		t.Errorf("invalid objects not removed: %d services, %d endpoints, %d slices", len(in.Services), len(in.Endpoints), len(in.EndpointSlices))
	}
	if _, err := Normalize(in); err != nil {
		t.Errorf("Normalize after ValidateAll: %v", err)
	}
}

func TestInputErrorIsOneSafeLine(t *testing.T) {
	e := &InputError{Source: Source{File: "dir/x\n::error::y.yaml", Line: 3, Document: 1}, Object: "Service ns/web\"\n-A INPUT -j ACCEPT\u202e", Err: errors.New("metadata.name: invalid")}
	want := `dir/x\x0a::error::y.yaml:3 (document 1): Service "ns/web\"\n-A INPUT -j ACCEPT\u202e": metadata.name: invalid`
	if got := e.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ok := &InputError{Source: Source{File: "a.yaml"}, Object: "Service ns/web", Err: errors.New("x")}
	if got := ok.Error(); got != "a.yaml: Service ns/web: x" {
		t.Errorf("plain error changed: %s", got)
	}
}

func TestExpansionLimit(t *testing.T) {
	defer func(old int) { MaxEndpointPorts = old }(MaxEndpointPorts)
	MaxEndpointPorts = 6
	slice := func(name string, ports, eps int) string {
		var b strings.Builder
		b.WriteString("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: " + name + ", labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports:\n")
		for i := 0; i < ports; i++ {
			b.WriteString("- {name: p" + string(rune('a'+i)) + ", port: 80}\n")
		}
		b.WriteString("endpoints:\n")
		for i := 0; i < eps; i++ {
			b.WriteString("- addresses: [10.0.0." + string(rune('1'+i)) + "]\n")
		}
		return b.String()
	}
	text := slice("a", 2, 3) + "---\n" + slice("b", 1, 1)
	in, err := Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Normalize(in); err == nil || !strings.Contains(err.Error(), "EndpointSlice default/b: too many endpoints") {
		t.Fatalf("Normalize: %v", err)
	}
	in, _ = Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(text)})
	fs := ValidateAll(in)
	if len(fs) != 1 || fs[0].Code != "too-many" || fs[0].Name != "b" || len(in.EndpointSlices) != 1 {
		t.Fatalf("ValidateAll: %+v", fs)
	}
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 7\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n"
	in, _ = Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader(deploy)})
	if fs := ValidateAll(in); len(fs) != 1 || fs[0].Field != "spec.replicas" || len(in.Workloads) != 0 {
		t.Fatalf("workloads: %+v", fs)
	}
}

func TestLoadErrorsWithHostileFileNamesAreOneLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a\n::error::b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip(err)
	}
	_, err := Load(LoadOptions{Paths: []string{dir}})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `a\x0a::error::b`) {
		t.Fatalf("err = %q", err)
	}
	if _, _, err := LoadAll(LoadOptions{Paths: []string{dir + "/nope"}}, nil); err == nil || strings.Contains(err.Error(), "\n") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadAll: err = %q", err)
	}
}
