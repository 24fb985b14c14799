package compiler

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/svc2rules/svc2rules/internal/gen"
)

// loadBoth loads data with parallel decoding and with one worker (the
// sequential path) and returns both results.
func loadBoth(t *testing.T, data []byte, maxDocs int) (par, seq *Inputs, perr, serr error) {
	t.Helper()
	opts := func() LoadOptions {
		return LoadOptions{Paths: []string{"-"}, Stdin: bytes.NewReader(data), MaxDocuments: maxDocs}
	}
	prev := runtime.GOMAXPROCS(4)
	par, perr = Load(opts())
	runtime.GOMAXPROCS(1)
	seq, serr = Load(opts())
	runtime.GOMAXPROCS(prev)
	return
}

// TestParallelLoadSameObjects: decoding in parallel gives the objects, in
// the order, that decoding one document after the other gives.
func TestParallelLoadSameObjects(t *testing.T) {
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		o := gen.Defaults(300, 3)
		o.JSON = json
		if err := gen.Write(&buf, o); err != nil {
			t.Fatal(err)
		}
		buf.WriteString(extraDocs(json))
		par, seq, perr, serr := loadBoth(t, buf.Bytes(), 0)
		if perr != nil || serr != nil {
			t.Fatalf("json=%v: errors %v / %v", json, perr, serr)
		}
		if !reflect.DeepEqual(par, seq) {
			t.Fatalf("json=%v: parallel and sequential loads differ", json)
		}
		if len(par.Services) != 300 || len(par.EndpointSlices) != 300 || par.SkippedKinds["v1/ConfigMap"] != 1 {
			t.Fatalf("json=%v: %d services, %d slices, skipped %v", json, len(par.Services), len(par.EndpointSlices), par.SkippedKinds)
		}
	}
}

func extraDocs(json bool) string {
	if json {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}` + "\n" +
			`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"}}]}` + "\n"
	}
	return "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: node-1}}\n"
}

// TestParallelLoadEarliestErrorWins: with bad documents far apart, the
// error of the first in input order is reported, whichever worker meets
// its document first, and it is the error the sequential path reports.
func TestParallelLoadEarliestErrorWins(t *testing.T) {
	bad := map[string]string{
		"yaml":  "apiVersion: v1\nkind: Service\nmetadata: {name: bad-%d\n",
		"type":  "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad-%d\nspec:\n  ports: 80\n",
		"kind":  "apiVersion: v1\nmetadata:\n  name: bad-%d\n",
		"items": "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Service, metadata: {name: bad-%d}, spec: {ports: 8}}]\n",
	}
	for name, tmpl := range bad {
		for _, first := range []int{5, 130, 611} {
			var b strings.Builder
			for i := 0; i < 800; i++ {
				b.WriteString("---\n")
				if i == first || i == first+70 || i == 790 {
					fmt.Fprintf(&b, tmpl, i)
					continue
				}
				fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata:\n  name: s-%d\n  namespace: ns\nspec:\n  clusterIP: 10.96.%d.%d\n  ports:\n  - port: 80\n", i, i/200, i%200+1)
			}
			_, _, perr, serr := loadBoth(t, []byte(b.String()), 0)
			if perr == nil || serr == nil || perr.Error() != serr.Error() {
				t.Fatalf("%s at %d: parallel error %v, sequential %v", name, first, perr, serr)
			}
			if want := fmt.Sprintf("(document %d)", first+1); !strings.Contains(perr.Error(), want) {
				t.Fatalf("%s at %d: error %q does not name %s", name, first, perr, want)
			}
		}
	}
	// The document limit is met in the same place.
	var b strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c%d\n", i)
	}
	_, _, perr, serr := loadBoth(t, []byte(b.String()), 300)
	if perr == nil || serr == nil || perr.Error() != serr.Error() || !strings.Contains(perr.Error(), "(document 301)") {
		t.Fatalf("document limit: parallel error %v, sequential %v", perr, serr)
	}
}
