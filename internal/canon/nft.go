package canon

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// The nft comparison executes each script on an empty model of the nftables
// state (the flat command syntax knftables writes: add/create/insert/delete/
// destroy/flush of table/chain/set/map/counter/rule/element, # comments), so
// that both forms kube-proxy can produce -- the fresh-node transaction with
// its add+delete and add+flush pairs, and knftables' Fake.Dump() -- give the
// same state. The state is rendered as a dump (one object, rule or element
// per line) and normalised like upstream's sortNFTablesTransaction
// (pkg/proxy/nftables/helpers_test.go): lines stable-sorted by object type
// (table > chain > rule > set > map > element > other), then by object name,
// then, except for rules, which keep their order within a chain, by the
// whole line.
//
// Token-level normalisation only: runs of blanks collapse, and { } , ; are
// separate tokens outside quoted strings (nft parses both spellings alike).
// A multi-element "add element ... { a, b }" line becomes one line per
// element. The block syntax (table ip x { chain y { ... } }) is rejected.
//
// This is a Go port of the team's nftcmp.py (kpcompare nft).

var nftFamilies = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}
var nftVerbs = map[string]bool{"add": true, "create": true, "insert": true, "replace": true, "delete": true, "destroy": true, "flush": true}
var nftObjects = map[string]bool{"table": true, "chain": true, "set": true, "map": true, "rule": true, "element": true, "counter": true, "quota": true, "limit": true}
var nftObjectOrder = map[string]int{"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}

// tokenizeNFT splits a command line: blanks separate, { } , ; are tokens of
// their own, double-quoted strings (with backslash escapes) are one token.
func tokenizeNFT(line string) ([]string, error) {
	var toks []string
	i, n := 0, len(line)
	for i < n {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '{' || c == '}' || c == ',' || c == ';':
			toks = append(toks, line[i:i+1])
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
			for j < n && !strings.ContainsRune(" \t{},;\"", rune(line[j])) {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks, nil
}

// splitTop splits tokens at top-level commas (outside nested braces),
// dropping empty parts.
func splitTop(tokens []string) [][]string {
	var out [][]string
	var cur []string
	depth := 0
	for _, t := range tokens {
		switch t {
		case "{":
			depth++
		case "}":
			depth--
		}
		if t == "," && depth == 0 {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, t)
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

// nftElemKey is an element's key: its tokens up to the value or options.
func nftElemKey(e []string) string {
	var key []string
	for _, t := range e {
		if t == ":" || t == "comment" || t == "timeout" || t == "expires" || t == "counter" {
			break
		}
		key = append(key, t)
	}
	return strings.Join(key, "\x00")
}

type nftChain struct {
	spec  []string
	rules [][]string
}

type nftContainer struct {
	kind     string // "set" or "map"
	spec     []string
	elements [][]string
	present  map[string]bool // elements, joined with NUL
}

type nftCounterKey struct{ kind, name string }

type nftTable struct {
	spec     []string
	chains   map[string]*nftChain
	sets     map[string]*nftContainer
	counters map[nftCounterKey][]string
}

type nftTableKey struct{ family, name string }

func short(s string) string {
	if len(s) > 80 {
		return s[:80]
	}
	return s
}

// executeNFT runs a script on an empty state.
func executeNFT(text string) (map[nftTableKey]*nftTable, error) {
	tables := map[nftTableKey]*nftTable{}
	for lineno, raw := range strings.Split(text, "\n") {
		lineno++
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		toks, err := tokenizeNFT(line)
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
			return nil, fmt.Errorf("line %d: unsupported nft syntax (only flat commands such as 'add rule ...' are supported): %s", lineno, short(line))
		}
		verb := toks[0]
		if len(toks) < 3 || !nftObjects[toks[1]] {
			return nil, fmt.Errorf("line %d: cannot parse: %s", lineno, short(line))
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
		key := nftTableKey{fam, rest[0]}
		rest = rest[1:]
		if obj == "table" {
			switch verb {
			case "add", "create":
				t := tables[key]
				if t == nil {
					t = &nftTable{chains: map[string]*nftChain{}, sets: map[string]*nftContainer{}, counters: map[nftCounterKey][]string{}}
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
			return nil, fmt.Errorf("line %d: table %s %s does not exist", lineno, key.family, key.name)
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
					s = &nftContainer{kind: obj, present: map[string]bool{}}
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
				clear(t.sets[name].present)
			default:
				return nil, fmt.Errorf("line %d: unsupported: %s %s", lineno, verb, obj)
			}
		case "counter", "quota", "limit":
			switch verb {
			case "add", "create":
				t.counters[nftCounterKey{obj, name}] = rest
			case "delete", "destroy":
				delete(t.counters, nftCounterKey{obj, name})
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
			switch verb {
			case "add":
				c.rules = append(c.rules, rest)
			case "insert":
				c.rules = append([][]string{rest}, c.rules...)
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
					j := strings.Join(e, "\x00")
					if !s.present[j] {
						s.present[j] = true
						s.elements = append(s.elements, e)
					}
				}
			case "delete", "destroy":
				keys := map[string]bool{}
				for _, e := range elems {
					keys[nftElemKey(e)] = true
				}
				kept := s.elements[:0:0]
				for _, e := range s.elements {
					if !keys[nftElemKey(e)] {
						kept = append(kept, e)
					} else {
						delete(s.present, strings.Join(e, "\x00"))
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

func count(toks []string, s string) int {
	n := 0
	for _, t := range toks {
		if t == s {
			n++
		}
	}
	return n
}

func withSpec(prefix string, spec []string) string {
	if len(spec) == 0 {
		return prefix
	}
	return prefix + " " + strings.Join(spec, " ")
}

// renderNFT prints a state as a dump, one object, rule or element per line.
func renderNFT(tables map[nftTableKey]*nftTable) []string {
	keys := make([]nftTableKey, 0, len(tables))
	for k := range tables {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].family != keys[j].family {
			return keys[i].family < keys[j].family
		}
		return keys[i].name < keys[j].name
	})
	var lines []string
	for _, k := range keys {
		t := tables[k]
		p := k.family + " " + k.name
		lines = append(lines, withSpec("add table "+p, t.spec))
		chains := make([]string, 0, len(t.chains))
		for n := range t.chains {
			chains = append(chains, n)
		}
		sort.Strings(chains)
		for _, n := range chains {
			lines = append(lines, withSpec("add chain "+p+" "+n, t.chains[n].spec))
		}
		var containers []string
		for _, kind := range []string{"set", "map"} {
			var names []string
			for n, s := range t.sets {
				if s.kind == kind {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				lines = append(lines, withSpec("add "+kind+" "+p+" "+n, t.sets[n].spec))
			}
			containers = append(containers, names...)
		}
		counters := make([]nftCounterKey, 0, len(t.counters))
		for c := range t.counters {
			counters = append(counters, c)
		}
		sort.Slice(counters, func(i, j int) bool {
			if counters[i].kind != counters[j].kind {
				return counters[i].kind < counters[j].kind
			}
			return counters[i].name < counters[j].name
		})
		for _, c := range counters {
			lines = append(lines, withSpec("add "+c.kind+" "+p+" "+c.name, t.counters[c]))
		}
		for _, n := range chains {
			for _, r := range t.chains[n].rules {
				lines = append(lines, "add rule "+p+" "+n+" "+strings.Join(r, " "))
			}
		}
		for _, n := range containers {
			elems := make([]string, 0, len(t.sets[n].elements))
			for _, e := range t.sets[n].elements {
				elems = append(elems, strings.Join(e, " "))
			}
			sort.Strings(elems)
			for _, e := range elems {
				lines = append(lines, "add element "+p+" "+n+" { "+e+" }")
			}
		}
	}
	return lines
}

// sortNFTablesTransaction is upstream's test helper of that name.
func sortNFTablesTransaction(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	words := make(map[string][]string, len(out))
	for _, l := range out {
		if _, ok := words[l]; !ok {
			words[l] = strings.Split(l, " ")
		}
	}
	compare := func(li, lj string) int {
		wi, wj := words[li], words[lj]
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
	sort.SliceStable(out, func(i, j int) bool { return compare(out[i], out[j]) < 0 })
	return out
}

// CanonicalNFT is the normal form of an nft -f script used by NFT.
func CanonicalNFT(text string) ([]string, error) {
	tables, err := executeNFT(text)
	if err != nil {
		return nil, err
	}
	return sortNFTablesTransaction(renderNFT(tables)), nil
}

// NFT compares two nft -f scripts for the kube-proxy table (kube-proxy's
// first, svc2rules' second) by the state they create; diff is a line diff
// of the normal forms (- kube-proxy, + svc2rules) when they differ.
func NFT(want, got string) (equal bool, diff string, err error) {
	w, err := CanonicalNFT(want)
	if err != nil {
		return false, "", fmt.Errorf("expected output: %w", err)
	}
	g, err := CanonicalNFT(got)
	if err != nil {
		return false, "", fmt.Errorf("svc2rules output is not a supported nft -f script: %w", err)
	}
	if cmp.Equal(w, g) {
		return true, "", nil
	}
	return false, cmp.Diff(w, g), nil
}
