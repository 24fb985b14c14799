package canon

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// The iptables comparison parses both texts the way iptables-restore reads
// them and normalises only what kube-proxy itself leaves free:
//   - built-in chains: policy "-" equals ACCEPT, counters are ignored, an
//     empty built-in chain may be declared or not;
//   - chain declaration order, table order, empty tables;
//   - argument quoting (--comment foo equals --comment "foo");
//   - the order of whole service ports in KUBE-SERVICES, KUBE-NODEPORTS,
//     KUBE-EXTERNAL-SERVICES and KUBE-PROXY-FIREWALL (kube-proxy iterates a
//     Go map): each service port keeps the relative order of its own rules,
//     and the "must be the last rule" jumps stay last;
//   - KUBE-IPVS-OUT-FILTER (ipvs mode) is a set.
// Everything else must match token for token.

var builtinChains = map[string]map[string]bool{
	"filter":   {"INPUT": true, "FORWARD": true, "OUTPUT": true},
	"nat":      {"PREROUTING": true, "INPUT": true, "OUTPUT": true, "POSTROUTING": true},
	"mangle":   {"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true},
	"raw":      {"PREROUTING": true, "OUTPUT": true},
	"security": {"INPUT": true, "FORWARD": true, "OUTPUT": true},
}

var serviceChains = map[string]bool{"KUBE-SERVICES": true, "KUBE-NODEPORTS": true, "KUBE-EXTERNAL-SERVICES": true, "KUBE-PROXY-FIREWALL": true}
var setChains = map[string]bool{"KUBE-IPVS-OUT-FILTER": true}
var spnRE = regexp.MustCompile(`^[^/\s]+/[^/\s]+$`)
var counterRE = regexp.MustCompile(`^\[\d+:\d+\]\s*`)

type iptChain struct {
	policy string
	rules  [][]string
}

type iptTable struct {
	chains map[string]*iptChain
}

// Tokenize splits a rule like iptables-restore: whitespace separates,
// double quotes group, a backslash escapes a quote inside quotes.
func Tokenize(line string) ([]string, error) {
	var toks []string
	i, n := 0, len(line)
	for i < n {
		for i < n && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= n {
			break
		}
		var buf strings.Builder
		quoted := false
		for i < n && (quoted || (line[i] != ' ' && line[i] != '\t')) {
			c := line[i]
			switch {
			case c == '"':
				quoted = !quoted
				i++
			case c == '\\' && quoted && i+1 < n && (line[i+1] == '"' || line[i+1] == '\\'):
				buf.WriteByte(line[i+1])
				i += 2
			default:
				buf.WriteByte(c)
				i++
			}
		}
		if quoted {
			return nil, fmt.Errorf("unterminated quote in %q", line)
		}
		toks = append(toks, buf.String())
	}
	return toks, nil
}

func (t *iptTable) ensure(table, chain string, lineno int, create bool) (*iptChain, error) {
	c := t.chains[chain]
	if c != nil {
		return c, nil
	}
	if !builtinChains[table][chain] && !create {
		return nil, fmt.Errorf("line %d: chain %q does not exist in table %s", lineno, chain, table)
	}
	c = &iptChain{policy: "-"}
	if builtinChains[table][chain] {
		c.policy = "ACCEPT"
	}
	t.chains[chain] = c
	return c, nil
}

// ParseIPTables parses iptables-save / iptables-restore text into tables of
// chains of tokenised rules, applying -A/-I/-D/-N/-F/-X/-P as
// iptables-restore would, and checks that every KUBE-* jump target exists.
func ParseIPTables(text string) (map[string]*iptTable, error) {
	tables := map[string]*iptTable{}
	var cur *iptTable
	curName := ""
	for lineno, raw := range strings.Split(text, "\n") {
		lineno++
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "*") {
			if cur != nil {
				return nil, fmt.Errorf("line %d: table %s not committed before %s", lineno, curName, line)
			}
			curName = strings.TrimSpace(line[1:])
			if tables[curName] == nil {
				tables[curName] = &iptTable{chains: map[string]*iptChain{}}
			}
			cur = tables[curName]
			continue
		}
		if line == "COMMIT" {
			if cur == nil {
				return nil, fmt.Errorf("line %d: COMMIT outside a table", lineno)
			}
			cur = nil
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %q outside a table", lineno, line)
		}
		if strings.HasPrefix(line, ":") {
			parts := strings.Fields(line[1:])
			if len(parts) < 2 {
				return nil, fmt.Errorf("line %d: bad chain line %q", lineno, line)
			}
			c, _ := cur.ensure(curName, parts[0], lineno, true)
			if builtinChains[curName][parts[0]] {
				c.policy = "ACCEPT"
				if parts[1] != "-" {
					c.policy = parts[1]
				}
			} else if parts[1] != "-" {
				return nil, fmt.Errorf("line %d: user chain %s with policy %s", lineno, parts[0], parts[1])
			}
			continue
		}
		line = counterRE.ReplaceAllString(line, "")
		toks, err := Tokenize(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", lineno, err)
		}
		if len(toks) == 0 {
			continue
		}
		op := toks[0]
		switch op {
		case "--append":
			op = "-A"
		case "--insert":
			op = "-I"
		case "--delete":
			op = "-D"
		case "--new-chain", "--new":
			op = "-N"
		case "--delete-chain":
			op = "-X"
		case "--flush":
			op = "-F"
		case "--policy":
			op = "-P"
		}
		switch op {
		case "-A", "-I", "-D":
			if len(toks) < 2 {
				return nil, fmt.Errorf("line %d: %s without chain", lineno, op)
			}
			c, err := cur.ensure(curName, toks[1], lineno, false)
			if err != nil {
				return nil, err
			}
			args := toks[2:]
			switch op {
			case "-A":
				c.rules = append(c.rules, args)
			case "-I":
				pos := 1
				if len(args) > 0 {
					if n, err := strconv.Atoi(args[0]); err == nil {
						pos, args = n, args[1:]
					}
				}
				if pos < 1 || pos > len(c.rules)+1 {
					return nil, fmt.Errorf("line %d: -I position %d out of range", lineno, pos)
				}
				c.rules = append(c.rules[:pos-1], append([][]string{args}, c.rules[pos-1:]...)...)
			case "-D":
				idx := -1
				if len(args) == 1 {
					if n, err := strconv.Atoi(args[0]); err == nil {
						idx = n - 1
					}
				}
				if idx < 0 {
					for i, r := range c.rules {
						if cmp.Equal(r, args) {
							idx = i
							break
						}
					}
				}
				if idx < 0 || idx >= len(c.rules) {
					return nil, fmt.Errorf("line %d: -D of a rule that does not exist", lineno)
				}
				c.rules = append(c.rules[:idx], c.rules[idx+1:]...)
			}
		case "-N":
			if len(toks) != 2 {
				return nil, fmt.Errorf("line %d: bad -N", lineno)
			}
			if cur.chains[toks[1]] != nil {
				return nil, fmt.Errorf("line %d: chain %s already exists", lineno, toks[1])
			}
			cur.ensure(curName, toks[1], lineno, true)
		case "-F":
			if len(toks) == 1 {
				for _, c := range cur.chains {
					c.rules = nil
				}
			} else {
				c, err := cur.ensure(curName, toks[1], lineno, false)
				if err != nil {
					return nil, err
				}
				c.rules = nil
			}
		case "-X":
			if len(toks) == 1 {
				for name := range cur.chains {
					if !builtinChains[curName][name] {
						delete(cur.chains, name)
					}
				}
			} else {
				if cur.chains[toks[1]] == nil {
					return nil, fmt.Errorf("line %d: -X of unknown chain %s", lineno, toks[1])
				}
				delete(cur.chains, toks[1])
			}
		case "-P":
			if len(toks) != 3 {
				return nil, fmt.Errorf("line %d: bad -P", lineno)
			}
			c, err := cur.ensure(curName, toks[1], lineno, false)
			if err != nil {
				return nil, err
			}
			c.policy = toks[2]
			if c.policy == "-" {
				c.policy = "ACCEPT"
			}
		default:
			return nil, fmt.Errorf("line %d: unsupported command %q", lineno, toks[0])
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("table %s not committed at end of input", curName)
	}
	for tname, t := range tables {
		for cname, c := range t.chains {
			for _, r := range c.rules {
				for i := 0; i+1 < len(r); i++ {
					if (r[i] == "-j" || r[i] == "--jump" || r[i] == "-g" || r[i] == "--goto") && strings.HasPrefix(r[i+1], "KUBE-") && t.chains[r[i+1]] == nil {
						return nil, fmt.Errorf("table %s: rule in %s jumps to undeclared chain %s", tname, cname, r[i+1])
					}
				}
			}
		}
	}
	return tables, nil
}

func commentOf(rule []string) (string, bool) {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "--comment" {
			return rule[i+1], true
		}
	}
	return "", false
}

func spnKey(rule []string) (string, bool) {
	c, ok := commentOf(rule)
	if !ok || c == "" {
		return "", false
	}
	first, _, _ := strings.Cut(c, " ")
	if spnRE.MatchString(first) {
		return first, true
	}
	return "", false
}

func isLastRule(rule []string) bool {
	c, ok := commentOf(rule)
	return ok && strings.Contains(c, "must be the last rule")
}

func renderTok(t string) string {
	if t == "" || strings.ContainsAny(t, " \t\"\\") {
		return `"` + strings.ReplaceAll(strings.ReplaceAll(t, `\`, `\\`), `"`, `\"`) + `"`
	}
	return t
}

func renderRule(chain string, r []string) string {
	parts := make([]string, 0, len(r)+2)
	parts = append(parts, "-A", chain)
	for _, a := range r {
		parts = append(parts, renderTok(a))
	}
	return strings.Join(parts, " ")
}

func canonicalChain(chain string, rules [][]string) [][]string {
	if setChains[chain] {
		out := append([][]string(nil), rules...)
		sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], "\x00") < strings.Join(out[j], "\x00") })
		return out
	}
	if !serviceChains[chain] {
		return rules
	}
	tail := len(rules)
	for tail > 0 && isLastRule(rules[tail-1]) {
		tail--
	}
	body := rules[:tail]
	last := append([][]string(nil), rules[tail:]...)
	sort.Slice(last, func(i, j int) bool { return strings.Join(last[i], "\x00") < strings.Join(last[j], "\x00") })
	var out, run [][]string
	flush := func() {
		sort.SliceStable(run, func(i, j int) bool {
			a, _ := spnKey(run[i])
			b, _ := spnKey(run[j])
			return a < b
		})
		out = append(out, run...)
		run = nil
	}
	for _, r := range body {
		if _, ok := spnKey(r); ok {
			run = append(run, r)
		} else {
			flush()
			out = append(out, r)
		}
	}
	flush()
	return append(out, last...)
}

// CanonicalIPTables returns the canonical line form of iptables text (see
// the package comment): equal canonical forms mean the same rules up to what
// kube-proxy leaves random.
func CanonicalIPTables(text string) ([]string, error) {
	tables, err := ParseIPTables(text)
	if err != nil {
		return nil, err
	}
	return canonicalLines(tables, false, func(_, chain string, rules [][]string) []string {
		var out []string
		for _, r := range canonicalChain(chain, rules) {
			out = append(out, renderRule(chain, r))
		}
		return out
	}), nil
}

// canonicalLines renders parsed tables in canonical order: tables by name,
// empty ACCEPT built-in chains left out, chains sorted by name with built-in
// chains last (or first with builtinFirst), declarations then each chain's
// rules as chainLines renders them.
func canonicalLines(tables map[string]*iptTable, builtinFirst bool, chainLines func(table, chain string, rules [][]string) []string) []string {
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var lines []string
	for _, tname := range names {
		t := tables[tname]
		var chains []string
		for n, c := range t.chains {
			if builtinChains[tname][n] && len(c.rules) == 0 && c.policy == "ACCEPT" {
				continue
			}
			chains = append(chains, n)
		}
		if len(chains) == 0 {
			continue
		}
		sort.Slice(chains, func(i, j int) bool {
			bi, bj := builtinChains[tname][chains[i]], builtinChains[tname][chains[j]]
			if bi != bj {
				return bi == builtinFirst
			}
			return chains[i] < chains[j]
		})
		lines = append(lines, "*"+tname)
		for _, n := range chains {
			p := "-"
			if builtinChains[tname][n] {
				p = t.chains[n].policy
			}
			lines = append(lines, ":"+n+" "+p)
		}
		for _, n := range chains {
			lines = append(lines, chainLines(tname, n, t.chains[n].rules)...)
		}
		lines = append(lines, "COMMIT")
	}
	return lines
}

// IPTables compares kube-proxy's expected iptables text with svc2rules'
// output. It returns a go-cmp diff of the canonical forms when they differ,
// and an error when either text does not parse.
func IPTables(want, got string) (equal bool, diff string, err error) {
	w, err := CanonicalIPTables(want)
	if err != nil {
		return false, "", fmt.Errorf("expected output: %w", err)
	}
	g, err := CanonicalIPTables(got)
	if err != nil {
		return false, "", fmt.Errorf("svc2rules output is not valid iptables-restore input: %w", err)
	}
	if cmp.Equal(w, g) {
		return true, "", nil
	}
	return false, cmp.Diff(w, g), nil
}
