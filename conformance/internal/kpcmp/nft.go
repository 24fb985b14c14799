// Package kpcmp compares svc2rules' nft and ipvs output with kube-proxy's,
// normalising only what kube-proxy itself leaves random. It is a Go port of
// the team's kpcompare tools (nftcmp.py, ipvscmp.py); iptables text is
// compared with the main module's internal/canon.
package kpcmp

import (
	"fmt"
	"sort"
	"strings"
)

// The nft comparison executes each script on an empty model of the nftables
// state (flat command syntax as knftables writes it: add/create/insert/
// delete/destroy/flush of table/chain/set/map/counter/rule/element, `#`
// comments), so that both forms kube-proxy can produce (the first-sync
// transaction, with its add+delete / add+flush pairs, and knftables'
// Fake.Dump()) give the same state. The state is rendered one object or
// element per line and normalised exactly like upstream's
// sortNFTablesTransaction (pkg/proxy/nftables/helpers_test.go): lines
// stable-sorted by object type (table > chain > rule > set > map > element >
// other), then by object name, then (except rules, which keep their order
// within a chain) by the whole line.
//
// Token-level normalisation only: runs of blanks collapse, and `{ } , ;` are
// separated by single blanks outside quoted strings (nft parses both spellings
// identically). Multi-element `add element ... { a, b }` lines are split into
// one line per element. The block syntax is not supported.

var nftFamilies = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}
var nftVerbs = map[string]bool{"add": true, "create": true, "insert": true, "replace": true, "delete": true, "destroy": true, "flush": true}
var nftObjs = map[string]bool{"table": true, "chain": true, "set": true, "map": true, "rule": true, "element": true, "counter": true, "quota": true, "limit": true}
var nftObjectOrder = map[string]int{"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}

func nftTokenize(line string) ([]string, error) {
	var toks []string
	i, n := 0, len(line)
	for i < n {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case strings.IndexByte("{},;", c) >= 0:
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := i + 1
			for j < n && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= n {
				return nil, fmt.Errorf("unterminated quote: %s", line)
			}
			toks = append(toks, line[i:j+1])
			i = j + 1
		default:
			j := i
			for j < n && strings.IndexByte(" \t{},;\"", line[j]) < 0 {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks, nil
}

func splitTop(tokens []string) [][]string {
	var out [][]string
	var cur []string
	depth := 0
	for _, t := range tokens {
		if t == "{" {
			depth++
		} else if t == "}" {
			depth--
		}
		if t == "," && depth == 0 {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
		} else {
			cur = append(cur, t)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func braceBody(tokens []string, where string) ([]string, error) {
	if len(tokens) == 0 {
		return nil, nil
	}
	if tokens[0] != "{" || tokens[len(tokens)-1] != "}" {
		s := strings.Join(tokens, " ")
		if len(s) > 80 {
			s = s[:80]
		}
		return nil, fmt.Errorf("%s: expected { ... }, got %s", where, s)
	}
	return tokens[1 : len(tokens)-1], nil
}

func elemKey(etoks []string) string {
	var key []string
	for _, t := range etoks {
		if t == ":" || t == "comment" || t == "timeout" || t == "expires" || t == "counter" {
			break
		}
		key = append(key, t)
	}
	return strings.Join(key, " ")
}

type nftChain struct {
	spec  []string
	rules []string
}

type nftSet struct {
	kind     string
	spec     []string
	elements []string
}

type nftTable struct {
	spec     []string
	chains   map[string]*nftChain
	sets     map[string]*nftSet
	counters map[string][]string // "kind name" -> spec
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80]
	}
	return s
}

// nftExecute runs a flat nft script on an empty state.
func nftExecute(text string) (map[string]*nftTable, error) {
	tables := map[string]*nftTable{}
	for lineno, raw := range strings.Split(text, "\n") {
		lineno++
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		toks, err := nftTokenize(line)
		if err != nil {
			return nil, err
		}
		for len(toks) > 0 && toks[len(toks)-1] == ";" && count(toks, "{") == count(toks, "}") {
			toks = toks[:len(toks)-1]
		}
		if len(toks) == 0 {
			continue
		}
		if toks[0] == "table" || !nftVerbs[toks[0]] {
			return nil, fmt.Errorf("line %d: unsupported nft syntax (only flat commands such as 'add rule ...' are supported): %s", lineno, trunc(line))
		}
		verb := toks[0]
		if len(toks) < 3 || !nftObjs[toks[1]] {
			return nil, fmt.Errorf("line %d: cannot parse: %s", lineno, trunc(line))
		}
		obj := toks[1]
		rest := toks[2:]
		fam := "ip"
		if len(rest) > 0 && nftFamilies[rest[0]] {
			fam, rest = rest[0], rest[1:]
		}
		if len(rest) == 0 {
			return nil, fmt.Errorf("line %d: missing table name", lineno)
		}
		key := fam + " " + rest[0]
		rest = rest[1:]
		if obj == "table" {
			switch verb {
			case "add", "create":
				t := tables[key]
				if t == nil {
					t = &nftTable{chains: map[string]*nftChain{}, sets: map[string]*nftSet{}, counters: map[string][]string{}}
					tables[key] = t
				}
				if len(rest) > 0 {
					t.spec = rest
				}
			case "delete", "destroy":
				if tables[key] == nil && verb == "delete" {
					return nil, fmt.Errorf("line %d: delete of a table that does not exist", lineno)
				}
				delete(tables, key)
			case "flush":
				t := tables[key]
				if t == nil {
					return nil, fmt.Errorf("line %d: flush of a table that does not exist", lineno)
				}
				for _, c := range t.chains {
					c.rules = nil
				}
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s table", lineno, verb)
			}
			continue
		}
		t := tables[key]
		if t == nil {
			return nil, fmt.Errorf("line %d: table %s does not exist", lineno, key)
		}
		if len(rest) == 0 {
			return nil, fmt.Errorf("line %d: missing object name", lineno)
		}
		name := rest[0]
		rest = rest[1:]
		switch obj {
		case "chain":
			switch verb {
			case "add", "create":
				c := t.chains[name]
				if c == nil {
					c = &nftChain{}
					t.chains[name] = c
				}
				if len(rest) > 0 {
					c.spec = rest
				}
			case "delete", "destroy":
				if t.chains[name] == nil && verb == "delete" {
					return nil, fmt.Errorf("line %d: delete of a chain that does not exist: %s", lineno, name)
				}
				delete(t.chains, name)
			case "flush":
				if t.chains[name] == nil {
					return nil, fmt.Errorf("line %d: flush of a chain that does not exist: %s", lineno, name)
				}
				t.chains[name].rules = nil
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s chain", lineno, verb)
			}
		case "set", "map":
			switch verb {
			case "add", "create":
				s := t.sets[name]
				if s == nil {
					s = &nftSet{kind: obj}
					t.sets[name] = s
				}
				if len(rest) > 0 {
					s.spec = rest
				}
			case "delete", "destroy":
				if t.sets[name] == nil && verb == "delete" {
					return nil, fmt.Errorf("line %d: delete of a %s that does not exist: %s", lineno, obj, name)
				}
				delete(t.sets, name)
			case "flush":
				if t.sets[name] == nil {
					return nil, fmt.Errorf("line %d: flush of a %s that does not exist: %s", lineno, obj, name)
				}
				t.sets[name].elements = nil
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s %s", lineno, verb, obj)
			}
		case "counter", "quota", "limit":
			switch verb {
			case "add", "create":
				t.counters[obj+" "+name] = rest
			case "delete", "destroy":
				delete(t.counters, obj+" "+name)
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s %s", lineno, verb, obj)
			}
		case "rule":
			c := t.chains[name]
			if c == nil {
				return nil, fmt.Errorf("line %d: rule for a chain that does not exist: %s", lineno, name)
			}
			if len(rest) > 0 && (rest[0] == "position" || rest[0] == "handle" || rest[0] == "index") {
				return nil, fmt.Errorf("line %d: rule positions/handles are not supported", lineno)
			}
			r := strings.Join(rest, " ")
			switch verb {
			case "add":
				c.rules = append(c.rules, r)
			case "insert":
				c.rules = append([]string{r}, c.rules...)
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s rule", lineno, verb)
			}
		case "element":
			s := t.sets[name]
			if s == nil {
				return nil, fmt.Errorf("line %d: element for a set/map that does not exist: %s", lineno, name)
			}
			body, err := braceBody(rest, fmt.Sprintf("line %d", lineno))
			if err != nil {
				return nil, err
			}
			elems := splitTop(body)
			switch verb {
			case "add", "create":
				for _, e := range elems {
					es := strings.Join(e, " ")
					if !contains(s.elements, es) {
						s.elements = append(s.elements, es)
					}
				}
			case "delete", "destroy":
				keys := map[string]bool{}
				for _, e := range elems {
					keys[elemKey(e)] = true
				}
				var kept []string
				for _, e := range s.elements {
					if !keys[elemKey(strings.Split(e, " "))] {
						kept = append(kept, e)
					}
				}
				s.elements = kept
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s element", lineno, verb)
			}
		}
	}
	return tables, nil
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func withSpec(s string, spec []string) string {
	if len(spec) > 0 {
		return s + " " + strings.Join(spec, " ")
	}
	return s
}

func nftRender(tables map[string]*nftTable) []string {
	var lines []string
	for _, key := range sortedKeys(tables) {
		t := tables[key]
		lines = append(lines, withSpec("add table "+key, t.spec))
		for _, n := range sortedKeys(t.chains) {
			lines = append(lines, withSpec("add chain "+key+" "+n, t.chains[n].spec))
		}
		for _, kind := range []string{"set", "map"} {
			for _, n := range sortedKeys(t.sets) {
				if t.sets[n].kind == kind {
					lines = append(lines, withSpec("add "+kind+" "+key+" "+n, t.sets[n].spec))
				}
			}
		}
		for _, kn := range sortedKeys(t.counters) {
			kind, n, _ := strings.Cut(kn, " ")
			lines = append(lines, withSpec("add "+kind+" "+key+" "+n, t.counters[kn]))
		}
		for _, n := range sortedKeys(t.chains) {
			for _, r := range t.chains[n].rules {
				lines = append(lines, "add rule "+key+" "+n+" "+r)
			}
		}
		for _, kind := range []string{"set", "map"} {
			for _, n := range sortedKeys(t.sets) {
				if t.sets[n].kind != kind {
					continue
				}
				elems := append([]string(nil), t.sets[n].elements...)
				sort.Strings(elems)
				for _, e := range elems {
					lines = append(lines, "add element "+key+" "+n+" { "+e+" }")
				}
			}
		}
	}
	return lines
}

// sortNFTablesTransaction is a port of upstream's sortNFTablesTransaction
// (pkg/proxy/nftables/helpers_test.go).
func sortNFTablesTransaction(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	cmp := func(li, lj string) int {
		wi, wj := strings.Split(li, " "), strings.Split(lj, " ")
		if len(wi) < 5 || len(wj) < 5 {
			return 0
		}
		if wi[1] != wj[1] {
			oi, oj := nftObjectOrder[wi[1]], nftObjectOrder[wj[1]]
			switch {
			case oi > oj:
				return -1
			case oi < oj:
				return 1
			}
			return 0
		}
		if wi[4] != wj[4] {
			if wi[4] < wj[4] {
				return -1
			}
			return 1
		}
		if wi[1] == "rule" {
			return 0
		}
		return strings.Compare(li, lj)
	}
	sort.SliceStable(out, func(i, j int) bool { return cmp(out[i], out[j]) < 0 })
	return out
}

// CanonicalNFT returns the normalised line form of an nft -f script.
func CanonicalNFT(text string) ([]string, error) {
	t, err := nftExecute(text)
	if err != nil {
		return nil, err
	}
	return sortNFTablesTransaction(nftRender(t)), nil
}

// NFT compares kube-proxy's nft output (want) with svc2rules' (got). diff is
// a summary plus a short unified diff of the normalised forms.
func NFT(want, got string) (equal bool, diff string, err error) {
	w, err := CanonicalNFT(want)
	if err != nil {
		return false, "", fmt.Errorf("kube-proxy output: %w", err)
	}
	g, err := CanonicalNFT(got)
	if err != nil {
		return false, "", fmt.Errorf("svc2rules output is not a supported nft -f script: %w", err)
	}
	if equalLines(w, g) {
		return true, "", nil
	}
	return false, LineDiff(w, g), nil
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
