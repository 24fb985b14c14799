package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitDocumentsKeepsLines(t *testing.T) {
	text := "# leading comment\n\napiVersion: v1\nkind: A\n---\n--- # empty\nkind: B\n...\n---\n\n  \nkind: C\n"
	docs, err := splitDocuments("f.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var got []Source
	for _, d := range docs {
		got = append(got, d.src)
	}
	want := []Source{{File: "f.yaml", Document: 1, Line: 3}, {File: "f.yaml", Document: 2, Line: 7}, {File: "f.yaml", Document: 3, Line: 12}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLoadJSONStreamListsAndSkippedKinds(t *testing.T) {
	dir := t.TempDir()
	json := `{"apiVersion":"v1","kind":"List","items":[
  {"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"ns"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}},
  {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"}}]}
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSliceList","items":[{"metadata":{"name":"a-1","namespace":"ns","labels":{"kubernetes.io/service-name":"a"}},"addressType":"IPv4","endpoints":[]}]}
`
	if err := os.WriteFile(filepath.Join(dir, "in.json"), []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: b, namespace: ns}\n  spec: {clusterIP: 10.96.0.2, ports: [{port: 81}]}\n"
	if err := os.WriteFile(filepath.Join(dir, "in.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := Load(LoadOptions{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Services) != 2 || len(in.EndpointSlices) != 1 {
		t.Fatalf("services %d slices %d", len(in.Services), len(in.EndpointSlices))
	}
	if in.Services[0].Name != "a" || in.Services[0].Source.Line != 1 || in.EndpointSlices[0].Source.Line != 4 {
		t.Errorf("sources: %+v %+v", in.Services[0].Source, in.EndpointSlices[0].Source)
	}
	if diff := cmp.Diff(map[string]int{"v1/ConfigMap": 1}, in.SkippedKinds); diff != "" {
		t.Errorf("skipped kinds: %s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		opts LoadOptions
		want string
	}{
		{"no input", LoadOptions{}, "no input"},
		{"missing file", LoadOptions{Paths: []string{filepath.Join(dir, "nope.yaml")}}, "no such file"},
		{"empty dir", LoadOptions{Paths: []string{t.TempDir()}}, "holds no *.yaml"},
		{"no kind", LoadOptions{Paths: []string{write("k.yaml", "apiVersion: v1\nmetadata: {name: x}\n")}}, "k.yaml:1 (document 1): object has no kind"},
		{"too large", LoadOptions{Paths: []string{write("big.yaml", strings.Repeat("#", 100))}, MaxBytes: 10}, "larger than 10 bytes"},
		{"stdin twice", LoadOptions{Paths: []string{"-", "-"}, Stdin: strings.NewReader("")}, "more than once"},
		{"nested lists", LoadOptions{Paths: []string{write("l.yaml", "kind: List\napiVersion: v1\nitems:\n- kind: List\n  apiVersion: v1\n  items:\n  - kind: List\n    apiVersion: v1\n    items:\n    - kind: List\n      apiVersion: v1\n      items:\n      - kind: List\n        apiVersion: v1\n        items: []\n")}}, "nested too deeply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidationErrorIsInputError(t *testing.T) {
	in := &Inputs{SkippedKinds: map[string]int{}}
	text := "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name, namespace: ns}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n"
	if err := in.addFile("v.yaml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	_, err := Normalize(in)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Object != "Service ns/Bad_Name" || ie.Source.Line != 1 {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("error should name the field: %v", err)
	}
}
