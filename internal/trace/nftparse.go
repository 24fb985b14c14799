package trace

import (
	"fmt"
	"strconv"
	"strings"
)

// nftables rules, parsed from nft -f scripts (add/flush/delete commands, or
// "table F N { ... }" blocks) and from "nft list table|ruleset" listings,
// which are the same block syntax.

type nftTable struct {
	family string // ip, ip6, inet
	name   string
	chains map[string]*nftChain
	order  []string // chain creation order
	sets   map[string]*nftSet
}

type nftChain struct {
	name     string
	base     bool
	typ      string // filter, nat, route
	hook     string // prerouting, input, forward, output, postrouting
	priority int
	policy   string // accept or drop
	rules    []*nftRule
}

type nftSet struct {
	name    string
	isMap   bool
	keyType []string // component types: ipv4_addr, inet_proto, inet_service, ...
	valType string   // map value type ("verdict" or a data type)
	flags   []string
	elems   []*nftElem
	keys    map[string]bool // the elements' joined keys
}

func elemKey(e *nftElem) string { return strings.Join(e.key, " . ") }

// add adds elements whose key is not there yet (nft: "add" of an existing
// element is a no-op).
func (s *nftSet) add(elems []*nftElem) {
	if s.keys == nil {
		s.keys = map[string]bool{}
		for _, e := range s.elems {
			s.keys[elemKey(e)] = true
		}
	}
	for _, e := range elems {
		k := elemKey(e)
		if !s.keys[k] {
			s.keys[k] = true
			s.elems = append(s.elems, e)
		}
	}
}

func (s *nftSet) remove(elems []*nftElem) {
	drop := map[string]bool{}
	for _, e := range elems {
		drop[elemKey(e)] = true
	}
	kept := s.elems[:0]
	for _, e := range s.elems {
		if !drop[elemKey(e)] {
			kept = append(kept, e)
		}
	}
	s.elems = kept
	s.keys = nil
}

type nftElem struct {
	key     []string // one token per concatenated component (may be a prefix or range)
	value   []string // the mapped value's tokens
	comment string
}

type nftRule struct {
	line  int
	text  string
	stmts []*nftStmt
}

// A selector reads one field of the packet.
type selector struct {
	kind   string // saddr, daddr, l4proto, dport, sport, mark, iifname, oifname, ctstate, ctstatus, fibsaddr, fibdaddr, numgen, random, nfproto, literal
	family string // "ip" or "ip6" for saddr/daddr
	proto  string // "tcp dport": the implied protocol
	mod    int    // numgen
	offset int
	lit    string // literal
}

type nftStmt struct {
	kind string // match, lookup, vmap, verdict, dnat, snat, masq, redirect, markset, setupdate, reject, nop, unknown

	lhs  []selector
	op   string // ==, !=, <, >, <=, >=
	mask string // "& MASK" / "and MASK"
	rhs  string // a value, or "" with anon
	anon []*nftElem
	ref  string // @set
	neg  bool

	verdict string // accept, drop, return, continue, jump, goto
	target  string

	// dnat/snat/redirect: a literal address (and port), or a map lookup.
	natAddr string
	natKey  []selector
	natMap  []*nftElem
	natRef  string

	markOp  string // set, or, xor, and
	markVal string

	text string // for unknown statements
}

func (t *nftTable) chain(name string) *nftChain {
	c := t.chains[name]
	if c == nil {
		c = &nftChain{name: name, policy: "accept"}
		t.chains[name] = c
		t.order = append(t.order, name)
	}
	return c
}

// ---- tokenizer ----

const nl = "\n"

// nftTokenize splits nft text into tokens: words, quoted strings (kept
// with their quotes), the punctuation { } , ; and newlines (as "\n").
// "# ..." comments are dropped; "@ name" is joined to "@name".
func nftTokenize(text string) ([]string, []int, error) {
	var toks []string
	var lines []int
	line := 1
	emit := func(t string) {
		if len(toks) > 0 && toks[len(toks)-1] == "@" && t != nl {
			toks[len(toks)-1] = "@" + t
			return
		}
		toks = append(toks, t)
		lines = append(lines, line)
	}
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n':
			emit(nl)
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '\\' && i+1 < len(text) && text[i+1] == '\n':
			i += 2 // line continuation
			line++
		case c == '{' || c == '}' || c == ',' || c == ';':
			emit(string(c))
			i++
		case c == '"':
			j := i + 1
			for j < len(text) && text[j] != '"' {
				if text[j] == '\\' && j+1 < len(text) {
					j++
				}
				if text[j] == '\n' {
					return nil, nil, fmt.Errorf("line %d: unterminated string", line)
				}
				j++
			}
			if j >= len(text) {
				return nil, nil, fmt.Errorf("line %d: unterminated string", line)
			}
			emit(text[i : j+1])
			i = j + 1
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n{},;\"#", rune(text[j])) {
				j++
			}
			emit(text[i:j])
			i = j
		}
	}
	return toks, lines, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		var b strings.Builder
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' && i+1 < len(inner) {
				i++
			}
			b.WriteByte(inner[i])
		}
		return b.String()
	}
	return s
}

// ---- parser ----

type nftParser struct {
	toks   []string
	lines  []int
	pos    int
	src    string
	rs     *Ruleset
	tables map[string]*nftTable
}

func (p *nftParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *nftParser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *nftParser) line() int {
	if p.pos < len(p.lines) {
		return p.lines[p.pos]
	}
	if len(p.lines) > 0 {
		return p.lines[len(p.lines)-1]
	}
	return 0
}

func (p *nftParser) errf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.src, p.line(), fmt.Sprintf(format, args...))
}

func (p *nftParser) expect(t string) error {
	if got := p.next(); got != t {
		return p.errf("expected %q, found %q", t, got)
	}
	return nil
}

func (p *nftParser) skipSeps() {
	for p.peek() == nl || p.peek() == ";" {
		p.pos++
	}
}

// untilEnd returns the tokens up to the end of a statement: a newline or
// ";" outside braces, or the "}" closing the enclosing block (not consumed).
func (p *nftParser) untilEnd() []string {
	var out []string
	depth := 0
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if depth == 0 && (t == nl || t == ";" || t == "}") {
			break
		}
		p.pos++
		switch t {
		case "{":
			depth++
		case "}":
			depth--
		case nl:
			continue
		}
		out = append(out, t)
	}
	return out
}

// skipBlock skips a balanced { ... } block (the "{" not yet consumed).
func (p *nftParser) skipBlock() error {
	if err := p.expect("{"); err != nil {
		return err
	}
	depth := 1
	for depth > 0 {
		if p.pos >= len(p.toks) {
			return p.errf("unbalanced braces")
		}
		switch p.next() {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return nil
}

var nftFamilies = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}

func (p *nftParser) table(family, name string) *nftTable {
	k := family + " " + name
	t := p.tables[k]
	if t == nil {
		t = &nftTable{family: family, name: name, chains: map[string]*nftChain{}, sets: map[string]*nftSet{}}
		p.tables[k] = t
		p.rs.nft = append(p.rs.nft, t)
	}
	return t
}

func (p *nftParser) dropTable(family, name string) {
	k := family + " " + name
	t := p.tables[k]
	if t == nil {
		return
	}
	delete(p.tables, k)
	for i, x := range p.rs.nft {
		if x == t {
			p.rs.nft = append(p.rs.nft[:i], p.rs.nft[i+1:]...)
			break
		}
	}
}

// familyAndName reads "[FAMILY] NAME" (the family defaults to ip).
func (p *nftParser) familyAndName() (string, string) {
	f := p.next()
	if nftFamilies[f] {
		return f, p.next()
	}
	return "ip", f
}

func (p *nftParser) parse() error {
	for {
		p.skipSeps()
		if p.pos >= len(p.toks) {
			return nil
		}
		t := p.next()
		switch t {
		case "table":
			fam, name := p.familyAndName()
			if p.peek() == "{" {
				if err := p.tableBody(p.table(fam, name)); err != nil {
					return err
				}
			} else {
				p.table(fam, name)
			}
		case "add", "create", "insert", "replace", "flush", "delete", "destroy":
			if err := p.command(t); err != nil {
				return err
			}
		case "list", "reset", "monitor", "describe", "rename":
			p.untilEnd()
		default:
			return p.errf("unexpected %q", t)
		}
	}
}

func (p *nftParser) tableBody(t *nftTable) error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		p.skipSeps()
		switch tok := p.next(); tok {
		case "}":
			return nil
		case "":
			return p.errf("unterminated table block")
		case "chain":
			c := t.chain(p.next())
			if err := p.chainBody(t, c); err != nil {
				return err
			}
		case "set", "map":
			s := p.set(t, p.next(), tok == "map")
			if err := p.setBody(s); err != nil {
				return err
			}
		case "counter", "quota", "ct", "flowtable", "limit", "secmark", "synproxy":
			// Objects that change no verdict: skip "NAME { ... }" or "ct helper NAME { ... }".
			for p.peek() != "{" && p.peek() != "" && p.peek() != nl {
				p.next()
			}
			if p.peek() == "{" {
				if err := p.skipBlock(); err != nil {
					return err
				}
			}
		default:
			// comment "...", flags ...: table properties.
			p.untilEnd()
		}
	}
}

func (p *nftParser) set(t *nftTable, name string, isMap bool) *nftSet {
	s := t.sets[name]
	if s == nil {
		s = &nftSet{name: name, isMap: isMap}
		t.sets[name] = s
	}
	return s
}

var priorityNames = map[string]int{"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100, "out": 100, "in": -200}

func parsePriority(toks []string) (int, error) {
	if len(toks) == 0 {
		return 0, fmt.Errorf("missing priority")
	}
	base, ok := priorityNames[toks[0]]
	if !ok {
		n, err := strconv.Atoi(toks[0])
		if err != nil {
			return 0, fmt.Errorf("bad priority %q", strings.Join(toks, " "))
		}
		base = n
	}
	if len(toks) == 3 && (toks[1] == "+" || toks[1] == "-") {
		n, err := strconv.Atoi(toks[2])
		if err != nil {
			return 0, fmt.Errorf("bad priority %q", strings.Join(toks, " "))
		}
		if toks[1] == "-" {
			n = -n
		}
		return base + n, nil
	}
	if len(toks) != 1 {
		return 0, fmt.Errorf("bad priority %q", strings.Join(toks, " "))
	}
	return base, nil
}

// chainBody reads "{ [type T hook H priority P ;] [policy X ;] [comment S] rules... }".
func (p *nftParser) chainBody(t *nftTable, c *nftChain) error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		p.skipSeps()
		if p.peek() == "}" {
			p.next()
			return nil
		}
		if p.pos >= len(p.toks) {
			return p.errf("unterminated chain %s", c.name)
		}
		line := p.line()
		start := p.pos
		toks := p.untilEnd()
		if len(toks) == 0 {
			continue
		}
		switch toks[0] {
		case "type":
			if err := parseChainType(c, toks); err != nil {
				return p.errf("%v", err)
			}
			continue
		case "policy":
			if len(toks) > 1 {
				c.policy = toks[1]
			}
			continue
		case "comment":
			if len(toks) == 2 {
				continue
			}
		case "devices", "device":
			continue
		}
		r := p.rule(toks, line, c.name)
		r.text = joinTokens(p.toks[start:p.pos])
		c.rules = append(c.rules, r)
	}
}

// rule parses a rule; one it cannot read becomes a rule that never matches,
// with a warning (a live node may hold rules of other agents).
func (p *nftParser) rule(toks []string, line int, chain string) *nftRule {
	r, err := parseNFTRule(toks)
	if err != nil {
		p.rs.warnf("%s:%d: chain %s: %v: rule not evaluated (treated as never matching)", p.src, line, chain, err)
		r = &nftRule{stmts: []*nftStmt{{kind: "unparsed", text: joinTokens(toks)}}}
	}
	r.line = line
	return r
}

func parseChainType(c *nftChain, toks []string) error {
	c.base = true
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "type":
			if i+1 < len(toks) {
				c.typ = toks[i+1]
				i++
			}
		case "hook":
			if i+1 < len(toks) {
				c.hook = toks[i+1]
				i++
			}
		case "device":
			i++
		case "priority":
			j := i + 1
			for j < len(toks) && toks[j] != "policy" && toks[j] != "device" {
				j++
			}
			n, err := parsePriority(toks[i+1 : j])
			if err != nil {
				return err
			}
			c.priority = n
			i = j - 1
		case "policy":
			if i+1 < len(toks) {
				c.policy = toks[i+1]
				i++
			}
		}
	}
	if c.hook == "" {
		return fmt.Errorf("chain %s: type without hook", c.name)
	}
	return nil
}

// joinTokens prints a rule's tokens back as one line.
func joinTokens(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		if t == nl {
			continue
		}
		if b.Len() > 0 && t != "," && t != ";" {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

// setBody reads "{ type A . B [: C] ; flags ... ; elements = { ... } ... }".
func (p *nftParser) setBody(s *nftSet) error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		p.skipSeps()
		tok := p.next()
		switch tok {
		case "}":
			return nil
		case "":
			return p.errf("unterminated set %s", s.name)
		case "type", "typeof":
			toks := p.untilEnd()
			key, val, _ := cutTokens(toks, ":")
			s.keyType = nil
			for _, k := range splitTokens(key, ".") {
				s.keyType = append(s.keyType, strings.Join(k, " "))
			}
			if len(val) > 0 {
				s.isMap = true
				s.valType = strings.Join(val, " ")
			}
		case "flags":
			for _, f := range p.untilEnd() {
				if f != "," {
					s.flags = append(s.flags, f)
				}
			}
		case "elements":
			if err := p.expect("="); err != nil {
				return err
			}
			elems, err := p.elements()
			if err != nil {
				return err
			}
			s.add(elems)
		default:
			p.untilEnd()
		}
	}
}

// elements reads "{ elem , elem ... }".
func (p *nftParser) elements() ([]*nftElem, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var toks []string
	depth := 1
	for {
		if p.pos >= len(p.toks) {
			return nil, p.errf("unterminated element list")
		}
		t := p.next()
		if t == "{" {
			depth++
		}
		if t == "}" {
			depth--
			if depth == 0 {
				break
			}
		}
		if t != nl {
			toks = append(toks, t)
		}
	}
	return parseElements(toks)
}

// parseElements reads the inside of "{ ... }": elements separated by ",".
func parseElements(toks []string) ([]*nftElem, error) {
	var out []*nftElem
	for _, part := range splitTokens(toks, ",") {
		if len(part) == 0 {
			continue
		}
		e := &nftElem{}
		i := 0
		var key []string
		for i < len(part) && part[i] != ":" && part[i] != "comment" && part[i] != "timeout" && part[i] != "expires" && part[i] != "counter" {
			key = append(key, part[i])
			i++
		}
		for i < len(part) && part[i] != ":" {
			switch part[i] {
			case "comment":
				if i+1 < len(part) {
					e.comment = unquote(part[i+1])
				}
				i += 2
			case "counter":
				i++
				for i+1 < len(part) && (part[i] == "packets" || part[i] == "bytes") {
					i += 2
				}
			default:
				i += 2
			}
		}
		if i < len(part) && part[i] == ":" {
			e.value = part[i+1:]
		}
		for _, k := range splitTokens(key, ".") {
			if len(k) != 1 {
				return nil, fmt.Errorf("bad element %q", strings.Join(part, " "))
			}
			e.key = append(e.key, unquote(k[0]))
		}
		if len(e.key) == 0 {
			return nil, fmt.Errorf("empty element in %q", strings.Join(part, " "))
		}
		out = append(out, e)
	}
	return out, nil
}

// splitTokens splits toks at sep tokens (outside braces).
func splitTokens(toks []string, sep string) [][]string {
	var out [][]string
	var cur []string
	depth := 0
	for _, t := range toks {
		switch t {
		case "{":
			depth++
		case "}":
			depth--
		}
		if t == sep && depth == 0 {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, t)
	}
	return append(out, cur)
}

func cutTokens(toks []string, sep string) ([]string, []string, bool) {
	for i, t := range toks {
		if t == sep {
			return toks[:i], toks[i+1:], true
		}
	}
	return toks, nil, false
}

// command reads one add/flush/delete/... command.
func (p *nftParser) command(verb string) error {
	kind := p.next()
	switch kind {
	case "ruleset":
		if verb == "flush" {
			p.rs.nft = nil
			p.tables = map[string]*nftTable{}
		}
		p.untilEnd()
		return nil
	case "table":
		fam, name := p.familyAndName()
		switch verb {
		case "delete", "destroy":
			p.dropTable(fam, name)
			p.untilEnd()
			return nil
		case "flush":
			t := p.table(fam, name)
			for _, c := range t.chains {
				c.rules = nil
			}
			for _, s := range t.sets {
				s.elems, s.keys = nil, nil
			}
			return nil
		}
		t := p.table(fam, name)
		if p.peek() == "{" {
			return p.tableBody(t)
		}
		return nil
	case "chain":
		fam, tname := p.familyAndName()
		t := p.table(fam, tname)
		name := p.next()
		switch verb {
		case "delete", "destroy":
			if _, ok := t.chains[name]; ok {
				delete(t.chains, name)
				for i, n := range t.order {
					if n == name {
						t.order = append(t.order[:i], t.order[i+1:]...)
						break
					}
				}
			}
			p.untilEnd()
			return nil
		case "flush":
			if c := t.chains[name]; c != nil {
				c.rules = nil
			}
			return nil
		}
		c := t.chain(name)
		if p.peek() == "{" {
			return p.chainBody(t, c)
		}
		return nil
	case "rule":
		fam, tname := p.familyAndName()
		t := p.table(fam, tname)
		name := p.next()
		if verb == "delete" || verb == "destroy" || verb == "replace" {
			p.untilEnd()
			p.rs.warnf("%s:%d: \"%s rule\" by handle is not modelled; ignored", p.src, p.line(), verb)
			return nil
		}
		c := t.chain(name)
		line := p.line()
		if p.peek() == "position" || p.peek() == "handle" || p.peek() == "index" {
			p.next()
			p.next()
		}
		start := p.pos
		toks := p.untilEnd()
		r := p.rule(toks, line, name)
		r.text = joinTokens(p.toks[start:p.pos])
		if verb == "insert" {
			c.rules = append([]*nftRule{r}, c.rules...)
		} else {
			c.rules = append(c.rules, r)
		}
		return nil
	case "set", "map":
		fam, tname := p.familyAndName()
		t := p.table(fam, tname)
		name := p.next()
		switch verb {
		case "delete", "destroy":
			delete(t.sets, name)
			p.untilEnd()
			return nil
		case "flush":
			if s := t.sets[name]; s != nil {
				s.elems, s.keys = nil, nil
			}
			return nil
		}
		s := p.set(t, name, kind == "map")
		if p.peek() == "{" {
			return p.setBody(s)
		}
		return nil
	case "element":
		fam, tname := p.familyAndName()
		t := p.table(fam, tname)
		name := p.next()
		elems, err := p.elements()
		if err != nil {
			return err
		}
		s := t.sets[name]
		if s == nil {
			return p.errf("element of unknown set or map %q", name)
		}
		switch verb {
		case "delete", "destroy":
			s.remove(elems)
		default:
			s.add(elems)
		}
		return nil
	default:
		// counters, quotas, flowtables, ...: no verdict depends on them.
		for p.peek() != nl && p.peek() != ";" && p.peek() != "" && p.peek() != "{" {
			p.next()
		}
		if p.peek() == "{" {
			return p.skipBlock()
		}
		return nil
	}
}

// ---- rules ----

// maxNumgen bounds numgen's modulus (kube-proxy's is the number of
// endpoints of a service port).
const maxNumgen = 1 << 16

var verdicts = map[string]bool{"accept": true, "drop": true, "return": true, "continue": true, "queue": true}

// parseNFTRule turns a rule's tokens into statements.
func parseNFTRule(toks []string) (*nftRule, error) {
	r := &nftRule{}
	rp := &ruleParser{toks: toks}
	for rp.pos < len(rp.toks) {
		st, err := rp.stmt()
		if err != nil {
			return nil, fmt.Errorf("%v in %q", err, joinTokens(toks))
		}
		if st != nil {
			r.stmts = append(r.stmts, st)
		}
	}
	return r, nil
}

type ruleParser struct {
	toks []string
	pos  int
}

func (rp *ruleParser) peek() string {
	if rp.pos < len(rp.toks) {
		return rp.toks[rp.pos]
	}
	return ""
}

func (rp *ruleParser) peekAt(n int) string {
	if rp.pos+n < len(rp.toks) {
		return rp.toks[rp.pos+n]
	}
	return ""
}

func (rp *ruleParser) next() string {
	t := rp.peek()
	rp.pos++
	return t
}

// braced reads "{ ... }" and returns its elements.
func (rp *ruleParser) braced() ([]*nftElem, error) {
	if rp.next() != "{" {
		return nil, fmt.Errorf("expected {")
	}
	depth := 1
	var inner []string
	for {
		if rp.pos >= len(rp.toks) {
			return nil, fmt.Errorf("unbalanced {")
		}
		t := rp.next()
		if t == "{" {
			depth++
		}
		if t == "}" {
			depth--
			if depth == 0 {
				break
			}
		}
		inner = append(inner, t)
	}
	return parseElements(inner)
}

// selectorStart reports whether the next tokens start a packet selector.
func (rp *ruleParser) selector() (selector, bool, error) {
	t := rp.peek()
	n1 := rp.peekAt(1)
	switch t {
	case "ip", "ip6":
		switch n1 {
		case "saddr", "daddr":
			rp.pos += 2
			return selector{kind: n1, family: t}, true, nil
		case "protocol", "nexthdr":
			rp.pos += 2
			return selector{kind: "l4proto"}, true, nil
		}
		return selector{}, false, nil
	case "meta":
		switch n1 {
		case "l4proto":
			rp.pos += 2
			return selector{kind: "l4proto"}, true, nil
		case "mark", "iifname", "oifname", "nfproto":
			rp.pos += 2
			return selector{kind: n1}, true, nil
		case "iif", "oif":
			rp.pos += 2
			return selector{kind: n1 + "name"}, true, nil
		case "random":
			rp.pos += 2
			return selector{kind: "random"}, true, nil
		}
		return selector{}, false, nil
	case "mark":
		if n1 == "set" {
			return selector{}, false, nil
		}
		rp.pos++
		return selector{kind: "mark"}, true, nil
	case "iifname", "oifname":
		rp.pos++
		return selector{kind: t}, true, nil
	case "iif", "oif":
		rp.pos++
		return selector{kind: t + "name"}, true, nil
	case "th", "tcp", "udp", "sctp", "udplite":
		if n1 == "dport" || n1 == "sport" {
			rp.pos += 2
			s := selector{kind: n1}
			if t != "th" {
				s.proto = t
			}
			return s, true, nil
		}
		return selector{}, false, nil
	case "ct":
		switch n1 {
		case "state", "status":
			rp.pos += 2
			return selector{kind: "ct" + n1}, true, nil
		}
		return selector{}, false, nil
	case "fib":
		if (n1 == "saddr" || n1 == "daddr") && rp.peekAt(2) == "type" {
			rp.pos += 3
			return selector{kind: "fib" + n1}, true, nil
		}
		if (n1 == "saddr" || n1 == "daddr") && rp.peekAt(2) == "." && rp.peekAt(4) == "type" {
			// fib daddr . iif type local
			rp.pos += 5
			return selector{kind: "fib" + n1}, true, nil
		}
		return selector{}, false, nil
	case "numgen":
		if n1 != "random" && n1 != "inc" {
			return selector{}, false, fmt.Errorf("numgen %s", n1)
		}
		if rp.peekAt(2) != "mod" {
			return selector{}, false, fmt.Errorf("numgen without mod")
		}
		mod, err := strconv.Atoi(rp.peekAt(3))
		if err != nil || mod <= 0 || mod > maxNumgen {
			return selector{}, false, fmt.Errorf("bad numgen modulus %q", rp.peekAt(3))
		}
		rp.pos += 4
		s := selector{kind: "numgen", mod: mod}
		if rp.peek() == "offset" {
			off, err := strconv.Atoi(rp.peekAt(1))
			if err != nil {
				return selector{}, false, fmt.Errorf("bad numgen offset")
			}
			s.offset = off
			rp.pos += 2
		}
		return s, true, nil
	}
	return selector{}, false, nil
}

// concat reads "sel [. sel]...".
func (rp *ruleParser) concat() ([]selector, bool, error) {
	s, ok, err := rp.selector()
	if !ok || err != nil {
		return nil, ok, err
	}
	out := []selector{s}
	for rp.peek() == "." {
		rp.pos++
		s, ok, err := rp.selector()
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, fmt.Errorf("bad concatenation near %q", rp.peek())
		}
		out = append(out, s)
	}
	return out, true, nil
}

var relOps = map[string]string{"==": "==", "eq": "==", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", ">": ">", "gt": ">", "<=": "<=", "le": "<=", ">=": ">=", "ge": ">="}

func (rp *ruleParser) stmt() (*nftStmt, error) {
	t := rp.peek()
	switch {
	case t == "comment":
		rp.pos += 2
		return nil, nil
	case t == "counter":
		rp.pos++
		if rp.peek() == "name" {
			rp.pos += 2
		}
		for rp.peek() == "packets" || rp.peek() == "bytes" {
			rp.pos += 2
		}
		return nil, nil
	case verdicts[t]:
		rp.pos++
		return &nftStmt{kind: "verdict", verdict: t}, nil
	case t == "jump" || t == "goto":
		rp.pos++
		target := rp.next()
		if target == "" {
			return nil, fmt.Errorf("%s without a chain", t)
		}
		return &nftStmt{kind: "verdict", verdict: t, target: target}, nil
	case t == "reject":
		rp.pos++
		if rp.peek() == "with" {
			rp.pos++
			for rp.pos < len(rp.toks) && rp.peek() != "comment" {
				rp.pos++
			}
		}
		return &nftStmt{kind: "reject"}, nil
	case t == "masquerade":
		rp.pos++
		for rp.peek() == "random" || rp.peek() == "fully-random" || rp.peek() == "persistent" || rp.peek() == "," {
			rp.pos++
		}
		if rp.peek() == "to" {
			rp.pos += 2
		}
		return &nftStmt{kind: "masq"}, nil
	case t == "dnat" || t == "snat":
		return rp.nat(t)
	case t == "redirect":
		rp.pos++
		st := &nftStmt{kind: "redirect"}
		if rp.peek() == "to" {
			rp.pos++
			st.natAddr = rp.next()
		}
		return st, nil
	case t == "mark" && rp.peekAt(1) == "set" || t == "meta" && rp.peekAt(1) == "mark" && rp.peekAt(2) == "set":
		if t == "meta" {
			rp.pos++
		}
		rp.pos += 2 // mark set
		return rp.markSet()
	case t == "update" || t == "add" && strings.HasPrefix(rp.peekAt(1), "@"):
		rp.pos++
		ref := strings.TrimPrefix(rp.next(), "@")
		if rp.next() != "{" {
			return nil, fmt.Errorf("%s @%s without {", t, ref)
		}
		key, _, err := rp.concat()
		if err != nil {
			return nil, err
		}
		for rp.peek() != "}" && rp.pos < len(rp.toks) {
			rp.pos++ // timeout ..., counter
		}
		rp.pos++
		return &nftStmt{kind: "setupdate", ref: ref, lhs: key}, nil
	case t == "log":
		rp.pos++
		for rp.peek() == "prefix" || rp.peek() == "level" || rp.peek() == "group" || rp.peek() == "flags" || rp.peek() == "snaplen" || rp.peek() == "queue-threshold" {
			rp.pos += 2
		}
		return nil, nil
	case t == "notrack" || t == "flow" || t == "limit":
		rp.pos++
		return &nftStmt{kind: "unknown", text: t}, nil
	}
	lhs, ok, err := rp.concat()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("unsupported expression %q", t)
	}
	st := &nftStmt{lhs: lhs}
	// Mask: "& 0x4000" or "and 0x4000".
	if rp.peek() == "&" || rp.peek() == "and" {
		rp.pos++
		st.mask = rp.next()
	}
	switch op := rp.peek(); {
	case op == "vmap":
		rp.pos++
		st.kind = "vmap"
		if strings.HasPrefix(rp.peek(), "@") {
			st.ref = strings.TrimPrefix(rp.next(), "@")
		} else {
			st.anon, err = rp.braced()
			if err != nil {
				return nil, err
			}
		}
		return st, nil
	case relOps[op] != "":
		st.op = relOps[op]
		rp.pos++
	default:
		st.op = "=="
	}
	st.kind = "match"
	switch v := rp.peek(); {
	case strings.HasPrefix(v, "@"):
		st.kind = "lookup"
		st.ref = strings.TrimPrefix(rp.next(), "@")
		st.neg = st.op == "!="
	case v == "{":
		st.anon, err = rp.braced()
		if err != nil {
			return nil, err
		}
	case v == "":
		return nil, fmt.Errorf("missing value")
	default:
		st.rhs = rp.next()
		// A comma-separated list ("ct state established,related").
		for rp.peek() == "," {
			rp.pos++
			st.rhs += "," + rp.next()
		}
	}
	return st, nil
}

// nat reads "dnat [ip|ip6] [addr . port] to ADDR" or "... to numgen ... map { }".
func (rp *ruleParser) nat(kind string) (*nftStmt, error) {
	rp.pos++
	st := &nftStmt{kind: kind}
	if rp.peek() == "ip" || rp.peek() == "ip6" {
		rp.pos++
	}
	if rp.peek() == "addr" {
		// "addr . port"
		rp.pos++
		if rp.peek() == "." {
			rp.pos += 2
		}
	}
	if rp.next() != "to" {
		return nil, fmt.Errorf("%s without \"to\"", kind)
	}
	key, ok, err := rp.concat()
	if err != nil {
		return nil, err
	}
	if ok {
		st.natKey = key
		if rp.next() != "map" {
			return nil, fmt.Errorf("%s to an expression without a map", kind)
		}
		if strings.HasPrefix(rp.peek(), "@") {
			st.natRef = strings.TrimPrefix(rp.next(), "@")
		} else {
			st.natMap, err = rp.braced()
			if err != nil {
				return nil, err
			}
		}
	} else {
		st.natAddr = rp.next()
		if rp.peek() == "." { // "IP . port" literal
			rp.pos++
			st.natAddr = joinAddrPort(st.natAddr, rp.next())
		}
	}
	for rp.peek() == "random" || rp.peek() == "fully-random" || rp.peek() == "persistent" || rp.peek() == "," {
		rp.pos++
	}
	return st, nil
}

func joinAddrPort(addr, port string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + port
	}
	return addr + ":" + port
}

// markSet reads what follows "mark set": "mark or X", "meta mark | X",
// "mark xor X", "mark and X", "X".
func (rp *ruleParser) markSet() (*nftStmt, error) {
	st := &nftStmt{kind: "markset", markOp: "set"}
	if rp.peek() == "meta" {
		rp.pos++
	}
	if rp.peek() == "mark" {
		rp.pos++
		op := rp.next()
		switch op {
		case "or", "|":
			st.markOp = "or"
		case "xor", "^":
			st.markOp = "xor"
		case "and", "&":
			st.markOp = "and"
		default:
			return nil, fmt.Errorf("unsupported mark expression %q", op)
		}
	}
	st.markVal = rp.next()
	if _, err := parseUint32(st.markVal); err != nil {
		return nil, err
	}
	return st, nil
}

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return uint32(n), nil
}
