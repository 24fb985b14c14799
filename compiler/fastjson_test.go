package compiler

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/svc2rules/svc2rules/internal/gen"
)

// checkFastJSON fails when fastJSONToJSON accepts doc but does not give
// exactly what sigs.k8s.io/yaml.YAMLToJSON gives.
func checkFastJSON(t testing.TB, name string, doc []byte) bool {
	t.Helper()
	got, ok := fastJSONToJSON(doc)
	if !ok {
		return false
	}
	want, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: fast JSON path accepted what YAMLToJSON rejects (%v):\n%s", name, err, doc)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: fast JSON path differs:\n input: %q\n fast:  %s\n exact: %s", name, doc, got, want)
	}
	return true
}

// fastJSONCorpus is the YAML corpus as JSON (compact and indented, as
// kubectl -o json writes it), the JSON seeds and a generated JSON stream.
func fastJSONCorpus(t testing.TB) map[string][]byte {
	docs := map[string][]byte{}
	for name, d := range fastYAMLCorpus(t) {
		j, err := yaml.YAMLToJSON(d)
		if err != nil {
			continue
		}
		docs[name+"/compact"] = j
		var ind bytes.Buffer
		if json.Indent(&ind, j, "", "    ") == nil {
			docs[name+"/indented"] = ind.Bytes()
		}
	}
	var buf bytes.Buffer
	o := gen.Defaults(60, 4)
	o.JSON = true
	if err := gen.Write(&buf, o); err != nil {
		t.Fatal(err)
	}
	ds, err := splitDocuments("gen.json", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		docs["gen.json#"+string(rune('0'+d.src.Document%10))+d.src.File] = d.data
	}
	docs["handwritten"] = []byte(`{"b": 1, "a": [true, false, null, -0, -12, 123456789012345678, "x\"y\\z\n\t\b\f\r\u00e9\u0000<&>", {}, []],
"c" : 1, "esc\"key": {"Kind": "a", "kind": "b"}, "": ""}`)
	return docs
}

func TestFastJSONMatchesYAMLToJSON(t *testing.T) {
	fast, n := 0, 0
	for name, d := range fastJSONCorpus(t) {
		n++
		if checkFastJSON(t, name, d) {
			fast++
		}
	}
	t.Logf("%d of %d documents took the fast JSON path", fast, n)
	if fast < n/2 {
		t.Fatalf("only %d of %d documents took the fast JSON path", fast, n)
	}
}

func TestFastJSONRejects(t *testing.T) {
	for _, doc := range []string{
		`{"a": 1.5}`, `{"a": 1e3}`, `{"a": 1234567890123456789}`, `{"a": "\/"}`, `{"a": "\ud83d\ude00"}`, `{"a":1,"a":2}`,
		`{"a" : 1}`, "{\"a\":\t1}", "{\"a\": 1}\r\n", `{"a": "é"}`, `{"` + strings.Repeat("k", 1001) + `": 1}`,
		strings.Repeat("[", 101) + strings.Repeat("]", 101), `{"a": 01}`, `{"a": tru}`, `{"a": 1,}`, `{"a": 1} x`,
	} {
		if out, ok := fastJSONToJSON([]byte(doc)); ok {
			t.Errorf("%q: took the fast path (%s)", doc, out)
		}
		checkFastJSON(t, doc, []byte(doc))
	}
}

// TestFastJSONMutations changes bytes, tokens and spacing of the corpus
// documents: whenever the fast path accepts a variant, it must agree with
// YAMLToJSON.
func TestFastJSONMutations(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	tokens := []string{`"y"`, `"<<"`, `"a: b"`, `"#"`, ` `, "\n", `1`, `-1`, `1.0`, `true`, `null`, `"\u0041"`, `"\\"`, `{}`, `[]`, `,`, `:`, `"`, `\`, `"---"`, "\n---\n", "\n...\n", `"\/"`, `"k"`}
	n, fast := 0, 0
	variants := 8
	if testing.Short() {
		variants = 3
	}
	for name, d := range fastJSONCorpus(t) {
		for v := 0; v < variants; v++ {
			b := []byte(string(d))
			for m := 0; m < 1+rng.Intn(3); m++ {
				i := rng.Intn(len(b) + 1)
				switch rng.Intn(3) {
				case 0:
					b = append(b[:i], append([]byte(tokens[rng.Intn(len(tokens))]), b[i:]...)...)
				case 1:
					if i < len(b) {
						b = append(b[:i], b[i+1:]...)
					}
				case 2:
					if i < len(b) {
						b[i] = " \n:,{}[]\"0a-"[rng.Intn(12)]
					}
				}
			}
			n++
			if checkFastJSON(t, name, b) {
				fast++
			}
		}
	}
	t.Logf("%d of %d variants took the fast JSON path", fast, n)
}

func FuzzFastJSON(f *testing.F) {
	for _, d := range fastJSONCorpus(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkFastJSON(t, "fuzz", doc)
	})
}
