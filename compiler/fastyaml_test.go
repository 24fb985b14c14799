package compiler

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/svc2rules/svc2rules/internal/gen"
)

// checkFastYAML fails when fastYAMLToJSON accepts doc but does not give
// exactly what sigs.k8s.io/yaml.YAMLToJSON gives. It reports whether the
// fast path accepted doc.
func checkFastYAML(t testing.TB, name string, doc []byte) bool {
	t.Helper()
	got, ok := fastYAMLToJSON(doc)
	if !ok {
		return false
	}
	want, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: fast path accepted what YAMLToJSON rejects (%v):\n%s", name, err, doc)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: fast path differs:\n input: %q\n fast:  %s\n exact: %s", name, doc, got, want)
	}
	return true
}

// fastYAMLCorpus is every YAML document of the repository's examples,
// golden inputs and fuzz corpus, and a generated input.
func fastYAMLCorpus(t testing.TB) map[string][]byte {
	docs := map[string][]byte{}
	add := func(name string, data []byte) {
		ds, err := splitDocuments(name, data)
		if err != nil {
			return
		}
		for _, d := range ds {
			docs[fmt.Sprintf("%s#%d", name, d.src.Document)] = d.data
		}
	}
	for _, pat := range []string{"../examples/*.yaml", "../examples/*/*.yaml", "../golden/*/*.yaml", "../conformance/oracle/testdata/*.yaml", "../conformance/oracle/testdata/*/*.yaml", "../internal/*/testdata/*.yaml"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil {
				add(f, data)
			}
		}
	}
	files, _ := filepath.Glob("testdata/fuzz/*/*")
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			if b, ok := fuzzCorpusBytes(data); ok {
				add(f, b)
			}
		}
	}
	for i, s := range fuzzSeeds {
		add(fmt.Sprintf("seed%d", i), []byte(s))
	}
	var buf bytes.Buffer
	if err := gen.Write(&buf, gen.Defaults(60, 4)); err != nil {
		t.Fatal(err)
	}
	add("gen", buf.Bytes())
	add("handwritten", []byte(fastYAMLHandwritten))
	return docs
}

// fuzzCorpusBytes decodes a "go test fuzz v1" file holding one []byte.
func fuzzCorpusBytes(data []byte) ([]byte, bool) {
	s := strings.TrimSpace(string(data))
	_, rest, ok := strings.Cut(s, "\n")
	if !ok || !strings.HasPrefix(rest, "[]byte(") || !strings.HasSuffix(rest, ")") {
		return nil, false
	}
	u, err := strconv.Unquote(rest[len("[]byte(") : len(rest)-1])
	if err != nil {
		return nil, false
	}
	return []byte(u), true
}

// fastYAMLHandwritten covers the subset's corners (every document must take
// the fast path, see TestFastYAMLAccepts).
const fastYAMLHandwritten = `a: 1
b: -2
c: +3
d: 0x1F
e: 0o17
f: 0777
g: 1_000
h: 0b101
i: -0b11
j: 9223372036854775808
k: -0
l: y
m: N
nn: on
o: OFF
p: ~
q: null
r:
s: ""
t: ''
u: 'it''s'
v: "a\"b\\c\n\t"
w: <a & b>
x: 10.96.0.1
yy: 10.0.0.0/8
z: a#b
aa: a # comment
ab: "q" # comment
ac: []
ad: {}
ae: -foo
af: http://x:80/y
ag: .foo
ah: 1.2.3
ai: 100m
aj: 200-12
ak: yes please
"quoted key": 1
'single: key': 2
"esc\"key": 3
a b: 4
x:y: 5
"<<": 6
---
- 1
- a: 1
  b:
  - x
  -   y
-   c: 2
- 
  d: 3
-
- # comment
  e: 4
---
# leading comment
kind: Service   # trailing
metadata:

  name: web  
  labels:
    app: web
spec:
  ports:
  - port: 80
    targetPort: 8080
  -   port: 81
      name: b
  selector:
      app: web
`

func TestFastYAMLMatchesYAMLToJSON(t *testing.T) {
	docs := fastYAMLCorpus(t)
	fast := 0
	for name, d := range docs {
		if checkFastYAML(t, name, d) {
			fast++
		}
	}
	t.Logf("%d of %d documents took the fast path", fast, len(docs))
	if fast == 0 {
		t.Fatal("no document took the fast path")
	}
}

// TestFastYAMLAccepts: the generated benchmark input takes the fast path
// whole (the point of it), and so do the handwritten corner cases that
// are inside the subset.
func TestFastYAMLAccepts(t *testing.T) {
	var buf bytes.Buffer
	if err := gen.Write(&buf, gen.Defaults(60, 4)); err != nil {
		t.Fatal(err)
	}
	for _, src := range [][]byte{buf.Bytes(), []byte(fastYAMLHandwritten)} {
		docs, err := splitDocuments("f.yaml", src)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			if _, ok := fastYAMLToJSON(d.data); !ok {
				t.Errorf("document %d: not on the fast path:\n%s", d.src.Document, d.data)
			}
		}
	}
}

// TestFastYAMLRejects: outside the subset, the fast path declines.
func TestFastYAMLRejects(t *testing.T) {
	for _, doc := range []string{
		"a: 1.5\n", "a: 1e3\n", "a: .5\n", "a: .inf\n", "a: 2001-12-14\n", "a: &x 1\n", "a: *x\n", "a: !!str 1\n",
		"a: |\n  x\n", "a: >\n  x\n", "a: [1]\n", "a: {b: 1}\n", "a: b\n  c\n", "a: 'x\n  y'\n", "a:\tb\n",
		"a: b\r\n", "a: é\n", "y: 1\n", "1: 1\n", "<<: {}\n", "a: 1\na: 2\n", "? a\n: b\n", "a: b: c\n", "a: b:\n",
		"%YAML 1.1\n---\na: 1\n", "a: 1\n...\n", "- - a\n", "a : 1\n", "a: \"\\/\"\n", "a: \"\\u00e9\"\n", "plain\n",
		"a:\n  b: 1\n c: 2\n", "- a: 1\n b: 2\n", "a: \"x\"y\n", "a: \"x\"#y\n", "a: -\n", "a: - b\n", "a: @b\n",
		strings.Repeat("a:\n ", 200) + "b: 1\n",
	} {
		if out, ok := fastYAMLToJSON([]byte(doc)); ok {
			t.Errorf("%q: took the fast path (%s)", doc, out)
		}
		checkFastYAML(t, doc, []byte(doc))
	}
}

// fastYAMLValues are scalars with YAML 1.1 and JSON quirks, spliced into
// the corpus by TestFastYAMLMutations.
var fastYAMLValues = []string{
	"y", "Y", "yes", "n", "NO", "on", "Off", "true", "False", "~", "null", "NULL", "", "''", `""`, "'it''s'",
	`"a\"b"`, `"\t\0\e\ "`, "0777", "0o17", "0x1f", "0X1F", "0b101", "-0b11", "1_000", "_1", "0_1", "08", "-0", "+1", "+", "-1",
	"1.5", "1e3", ".5", ".inf", "-.inf", ".nan", "1.", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "1:20", "12:30:00",
	"9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
	"10.96.0.1", "fd00::1", "::1", "1Gi", "100m", "<b>", "a&b", "a #c", "a#c", "a:b", "a: b", "a:", "-a", "- a", "[]", "{}",
	"[a]", "{a: b}", "&a x", "*a", "!!int 1", "|", ">-", "@x", "`x", "%x", "?x", "? x", ":x", ",x", "#x", "x ", "é", "\tx",
}

// TestFastYAMLMutations splices quirky scalars, keys and indentation
// changes into the corpus documents: whenever the fast path accepts a
// variant, it must agree with YAMLToJSON.
func TestFastYAMLMutations(t *testing.T) {
	docs := fastYAMLCorpus(t)
	rng := rand.New(rand.NewSource(1))
	n, fast := 0, 0
	variants := 40
	if testing.Short() {
		variants = 5
	}
	for name, d := range docs {
		lines := strings.Split(string(d), "\n")
		for v := 0; v < variants; v++ {
			ls := append([]string(nil), lines...)
			for m := 0; m < 1+rng.Intn(3); m++ {
				i := rng.Intn(len(ls))
				l := ls[i]
				switch rng.Intn(6) {
				case 0, 1: // replace the value
					if k := strings.Index(l, ": "); k >= 0 {
						l = l[:k+2] + fastYAMLValues[rng.Intn(len(fastYAMLValues))]
					} else if k := strings.Index(l, "- "); k >= 0 {
						l = l[:k+2] + fastYAMLValues[rng.Intn(len(fastYAMLValues))]
					}
				case 2: // replace the key
					if k := strings.Index(l, ":"); k >= 0 {
						ind := len(l) - len(strings.TrimLeft(l, " -"))
						l = l[:ind] + fastYAMLValues[rng.Intn(len(fastYAMLValues))] + l[k:]
					}
				case 3: // change the indentation
					l = strings.Repeat(" ", rng.Intn(5)) + strings.TrimLeft(l, " ")
				case 4: // duplicate or drop the line
					if rng.Intn(2) == 0 {
						ls = append(ls[:i+1], ls[i:]...)
					} else {
						l = ""
					}
				case 5: // a comment or an empty value
					if rng.Intn(2) == 0 {
						l += " # c"
					} else if k := strings.Index(l, ":"); k >= 0 {
						l = l[:k+1]
					}
				}
				ls[i] = l
			}
			doc := []byte(strings.Join(ls, "\n"))
			n++
			if checkFastYAML(t, name, doc) {
				fast++
			}
		}
	}
	t.Logf("%d of %d variants took the fast path", fast, n)
}

// FuzzFastYAML: whatever the fast path accepts, it converts exactly as
// sigs.k8s.io/yaml does.
func FuzzFastYAML(f *testing.F) {
	for _, d := range fastYAMLCorpus(f) {
		f.Add(d)
	}
	for _, v := range fastYAMLValues {
		f.Add([]byte("a: " + v + "\n"))
		f.Add([]byte("- " + v + "\n"))
		f.Add([]byte(v + ": 1\n"))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkFastYAML(t, "fuzz", doc)
	})
}
