package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// nval is the value of one selector for the packet.
type nval struct {
	kind string // addr, proto, port, num, str, states, fib
	addr netip.Addr
	n    uint64
	s    string
	set  map[string]bool
}

func (v nval) String() string {
	switch v.kind {
	case "addr":
		return v.addr.String()
	case "proto":
		return protoName(uint8(v.n))
	case "port", "num":
		return strconv.FormatUint(v.n, 10)
	case "mark":
		return fmt.Sprintf("0x%08x", v.n)
	case "states":
		var out []string
		for k := range v.set {
			out = append(out, k)
		}
		return strings.Join(out, ",")
	}
	return v.s
}

// lhsFork is one possible value of an expression, with its probability
// (numgen gives several).
type lhsFork struct {
	vals []nval
	p    float64
	note string
}

func (m *machine) nftEval(st *state, sels []selector) ([]lhsFork, bool) {
	forks := []lhsFork{{p: 1}}
	p := &st.pkt
	for _, s := range sels {
		var v nval
		switch s.kind {
		case "saddr", "daddr":
			if (s.family == "ip") != (p.fam == 4) {
				return nil, false
			}
			v = nval{kind: "addr", addr: p.src}
			if s.kind == "daddr" {
				v.addr = p.dst
			}
		case "l4proto":
			v = nval{kind: "proto", n: uint64(p.proto)}
		case "dport", "sport":
			if s.proto != "" {
				n, _ := protoNum(s.proto)
				if n != p.proto {
					return nil, false
				}
			}
			v = nval{kind: "port", n: uint64(p.dport)}
			if s.kind == "sport" {
				v.n = uint64(p.sport)
			}
		case "mark":
			v = nval{kind: "mark", n: uint64(p.mark)}
		case "iifname", "oifname":
			name := p.iif
			if s.kind == "oifname" {
				name = p.oif
			}
			if name == "" && (!m.iifSet || s.kind == "oifname") {
				m.assumef("interface unknown: %s evaluated with an empty name (give --iif for pod traffic)", s.kind)
			}
			v = nval{kind: "str", s: name}
		case "nfproto":
			v = nval{kind: "str", s: map[int]string{4: "ipv4", 6: "ipv6"}[p.fam]}
		case "ctstate":
			v = nval{kind: "states", set: map[string]bool{"new": true}}
		case "ctstatus":
			set := map[string]bool{}
			if p.dnat {
				set["dnat"] = true
			}
			if p.snat {
				set["snat"] = true
			}
			v = nval{kind: "states", set: set}
		case "fibsaddr", "fibdaddr":
			a := p.src
			if s.kind == "fibdaddr" {
				a = p.dst
			}
			t := "unicast"
			switch {
			case m.isLocal(a):
				t = "local"
			case a.IsMulticast():
				t = "multicast"
			}
			v = nval{kind: "fib", s: t}
		case "numgen":
			m.forks(s.mod * len(forks))
			var next []lhsFork
			for _, f := range forks {
				for i := 0; i < s.mod; i++ {
					nv := nval{kind: "num", n: uint64(i + s.offset)}
					next = append(next, lhsFork{vals: append(append([]nval(nil), f.vals...), nv), p: f.p / float64(s.mod), note: fmt.Sprintf("numgen random mod %d = %d", s.mod, i+s.offset)})
				}
			}
			forks = next
			continue
		case "random":
			v = nval{kind: "random"}
		default:
			return nil, false
		}
		for i := range forks {
			forks[i].vals = append(forks[i].vals, v)
		}
	}
	return forks, true
}

// compTok reports whether the element component tok matches v.
func compTok(tok string, v nval) bool {
	tok = unquote(tok)
	switch v.kind {
	case "addr":
		if lo, hi, ok := strings.Cut(tok, "-"); ok && !strings.Contains(tok, "/") {
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			return err1 == nil && err2 == nil && v.addr.Compare(a.Unmap()) >= 0 && v.addr.Compare(b.Unmap()) <= 0
		}
		p, err := parsePrefix(tok)
		return err == nil && p.Contains(v.addr)
	case "proto":
		n, ok := protoNum(tok)
		return ok && uint64(n) == v.n
	case "port":
		r, err := parsePortRange(strings.Replace(tok, ":", "-", 1))
		return err == nil && r.has(uint16(v.n))
	case "num", "mark":
		if lo, hi, ok := strings.Cut(tok, "-"); ok {
			a, err1 := strconv.ParseUint(lo, 0, 64)
			b, err2 := strconv.ParseUint(hi, 0, 64)
			return err1 == nil && err2 == nil && v.n >= a && v.n <= b
		}
		n, err := strconv.ParseUint(tok, 0, 64)
		return err == nil && n == v.n
	case "str":
		if strings.HasSuffix(tok, "*") {
			return strings.HasPrefix(v.s, strings.TrimSuffix(tok, "*"))
		}
		return tok == v.s
	case "states":
		for _, x := range strings.Split(tok, ",") {
			if v.set[strings.TrimSpace(x)] {
				return true
			}
		}
		return false
	case "fib":
		for _, x := range strings.Split(tok, ",") {
			if x == v.s {
				return true
			}
		}
		return false
	}
	return false
}

func elemMatches(e *nftElem, vals []nval) bool {
	if len(e.key) != len(vals) {
		return false
	}
	for i, v := range vals {
		if !compTok(e.key[i], v) {
			return false
		}
	}
	return true
}

func keyString(vals []nval) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = v.String()
	}
	return strings.Join(parts, " . ")
}

func (m *machine) lookup(st *state, t *nftTable, name string, vals []nval) (*nftElem, bool) {
	s := t.sets[name]
	if s == nil {
		m.warnf("nft: set or map @%s is not in table %s %s (lookups fail)", name, t.family, t.name)
		return nil, false
	}
	for _, e := range s.elems {
		if elemMatches(e, vals) {
			return e, true
		}
	}
	if !s.isMap && st.dynHas("nft:"+t.family+" "+t.name+" "+name, keyString(vals)) {
		return &nftElem{}, true
	}
	return nil, false
}

// applyMask applies "& MASK" to a numeric value.
func applyMask(v nval, mask string) (nval, bool) {
	if mask == "" {
		return v, true
	}
	mk, err := strconv.ParseUint(mask, 0, 64)
	if err != nil {
		return v, false
	}
	v.n &= mk
	return v, true
}

// relMatch evaluates "LHS op VALUE" for one value.
func relMatch(op, rhs string, v nval) bool {
	switch op {
	case "==":
		return compTok(rhs, v)
	case "!=":
		return !compTok(rhs, v)
	}
	n, err := strconv.ParseUint(unquote(rhs), 0, 64)
	if err != nil {
		return false
	}
	switch op {
	case "<":
		return v.n < n
	case ">":
		return v.n > n
	case "<=":
		return v.n <= n
	case ">=":
		return v.n >= n
	}
	return false
}

type nres struct {
	st     *state
	kind   int
	target string
}

// nftBase runs a base chain.
func (m *machine) nftBase(st *state, t *nftTable, c *nftChain, hook string) []cres {
	return basePolicy(m.nftChain(st, t, c, hook, 0), func(k int) bool { return k == rFall || k == rReturn || k == rContinue },
		c.policy == "drop", Step{Hook: hook, Table: t.family + " " + t.name, Chain: c.name, Note: "end of chain: policy drop"},
		"policy drop of "+t.family+" "+t.name+" chain "+c.name)
}

func (m *machine) nftChain(st *state, t *nftTable, c *nftChain, hook string, depth int) []cres {
	if depth > maxDepth {
		m.warnf("nft: chains nested deeper than %d (a loop?) at %s", maxDepth, c.name)
		panic(errBudget)
	}
	return m.nftFrom(st, t, c, hook, 0, depth)
}

func (m *machine) nftFrom(st *state, t *nftTable, c *nftChain, hook string, start, depth int) []cres {
	for i := start; i < len(c.rules); i++ {
		m.spend()
		res := m.nftRule(st, t, c, i, hook)
		if len(res) == 1 && (res[0].kind == rNoMatch || res[0].kind == rContinue) {
			st = res[0].st
			continue
		}
		var out []cres
		for _, x := range res {
			switch x.kind {
			case rNoMatch, rContinue:
				out = append(out, m.nftFrom(x.st, t, c, hook, i+1, depth)...)
			case rJump, rGoto:
				sub := t.chains[x.target]
				if sub == nil {
					m.warnf("nft: %s to unknown chain %s", map[int]string{rJump: "jump", rGoto: "goto"}[x.kind], x.target)
					out = append(out, m.nftFrom(x.st, t, c, hook, i+1, depth)...)
					continue
				}
				at := len(x.st.steps)
				for _, y := range m.nftChain(x.st, t, sub, hook, depth+1) {
					switch y.kind {
					case rFall, rReturn, rContinue:
						if len(y.st.steps) == at && at > 0 {
							y.st.steps[at-1].Note += " (no rule there matched)"
						}
						if x.kind == rGoto {
							out = append(out, cres{st: y.st, kind: rReturn})
						} else {
							out = append(out, m.nftFrom(y.st, t, c, hook, i+1, depth)...)
						}
					default:
						out = append(out, y)
					}
				}
			default:
				out = append(out, cres{st: x.st, kind: x.kind})
			}
		}
		return out
	}
	return []cres{{st: st, kind: rFall}}
}

// nftRule evaluates one rule; several results when it forks (numgen).
func (m *machine) nftRule(st *state, t *nftTable, c *nftChain, idx int, hook string) []nres {
	r := c.rules[idx]
	step := Step{Hook: hook, Table: t.family + " " + t.name, Chain: c.name, Rule: idx + 1, Text: r.text}
	return m.nftStmts(st, t, r, 0, step, nil)
}

func (m *machine) nftStmts(st *state, t *nftTable, r *nftRule, i int, step Step, notes []string) []nres {
	where := fmt.Sprintf("%s %s chain %s rule %d", t.family, t.name, step.Chain, step.Rule)
	record := func(s *state, more string) {
		ns := append(append([]string(nil), notes...), more)
		var keep []string
		for _, n := range ns {
			if n != "" {
				keep = append(keep, n)
			}
		}
		step.Note = strings.Join(keep, "; ")
		s.step(step)
	}
	for ; i < len(r.stmts); i++ {
		s := r.stmts[i]
		p := &st.pkt
		switch s.kind {
		case "unparsed":
			return []nres{{st: st, kind: rNoMatch}}
		case "match", "lookup", "vmap", "setupdate":
		case "verdict":
			switch s.verdict {
			case "accept":
				if st.acceptBy == "" {
					st.acceptBy = where
				}
				record(st, "accept")
				return []nres{{st: st, kind: rAccept}}
			case "drop":
				st.by = where
				record(st, "drop")
				return []nres{{st: st, kind: rDrop}}
			case "return":
				record(st, "return")
				return []nres{{st: st, kind: rReturn}}
			case "continue":
				continue
			case "jump":
				record(st, "jump "+s.target)
				return []nres{{st: st, kind: rJump, target: s.target}}
			case "goto":
				record(st, "goto "+s.target)
				return []nres{{st: st, kind: rGoto, target: s.target}}
			case "queue":
				m.warnf("nft: queue verdict treated as accept")
				return []nres{{st: st, kind: rAccept}}
			}
			continue
		case "reject":
			st.by = where
			record(st, "reject")
			return []nres{{st: st, kind: rReject}}
		case "masq", "snat":
			p.snat = true
			st.masqBy = where
			note := "masquerade: the source becomes the node's address on the outgoing interface"
			if s.kind == "snat" {
				if a, _, err := parseNATDest(s.natAddr); err == nil && a.IsValid() {
					p.src = a
					note = "snat to " + a.String()
				}
			}
			record(st, note)
			return []nres{{st: st, kind: rAccept}}
		case "redirect":
			if step.Hook == "OUTPUT" {
				p.dst = netip.MustParseAddr("127.0.0.1")
				if p.fam == 6 {
					p.dst = netip.IPv6Loopback()
				}
			} else if m.primary.IsValid() {
				p.dst = m.primary
			}
			if port := strings.TrimPrefix(s.natAddr, ":"); port != "" {
				if n, err := parsePort(port); err == nil {
					p.dport = n
				}
			}
			p.dnat = true
			st.dnatBy = where
			record(st, "redirect to local port "+strconv.Itoa(int(p.dport)))
			return []nres{{st: st, kind: rAccept}}
		case "markset":
			v, _ := parseUint32(s.markVal)
			before := p.mark
			switch s.markOp {
			case "set":
				p.mark = v
			case "or":
				p.mark |= v
			case "xor":
				p.mark ^= v
			case "and":
				p.mark &= v
			}
			notes = append(notes, fmt.Sprintf("mark %#x -> %#x", before, p.mark))
			continue
		case "dnat":
			return m.nftDNAT(st, t, r, i, step, notes, where)
		case "nop":
			continue
		case "unknown":
			m.warnf("nft: statement %q not modelled (ignored)", s.text)
			continue
		}
		// Expressions: evaluate the left side (numgen forks).
		forks, ok := m.nftEval(st, s.lhs)
		if !ok {
			return []nres{{st: st, kind: rNoMatch}}
		}
		if len(forks) > 1 {
			var out []nres
			for _, f := range forks {
				c := st.fork(f.p)
				sub := *s
				// Re-run this statement with the value fixed.
				out = append(out, m.nftStmtWith(c, t, r, i, &sub, f, step, append(append([]string(nil), notes...), f.note+fmt.Sprintf(" (%s)", fracString(f.p))), where)...)
			}
			return out
		}
		res, cont := m.nftExprStmt(st, t, s, forks[0].vals, where)
		if !cont {
			if res.kind == rNoMatch {
				return []nres{{st: st, kind: rNoMatch}}
			}
			if res.note != "" {
				notes = append(notes, res.note)
			}
			if res.kind != rContinue {
				record(st, "")
				if res.kind == rAccept && st.acceptBy == "" {
					st.acceptBy = where
				}
				return []nres{{st: st, kind: res.kind, target: res.target}}
			}
			continue
		}
		if res.note != "" {
			notes = append(notes, res.note)
		}
	}
	if len(notes) > 0 {
		record(st, "")
	}
	return []nres{{st: st, kind: rContinue}}
}

// nftStmtWith finishes statement i with a fixed left value (one numgen
// branch) and goes on with the rest of the rule.
func (m *machine) nftStmtWith(st *state, t *nftTable, r *nftRule, i int, s *nftStmt, f lhsFork, step Step, notes []string, where string) []nres {
	step.Branch = f.p
	res, cont := m.nftExprStmt(st, t, s, f.vals, where)
	if res.note != "" {
		notes = append(notes, res.note)
	}
	if !cont {
		if res.kind == rNoMatch {
			return []nres{{st: st, kind: rNoMatch}}
		}
		if res.kind != rContinue {
			step.Note = strings.Join(notes, "; ")
			st.step(step)
			return []nres{{st: st, kind: res.kind, target: res.target}}
		}
	}
	return m.nftStmts(st, t, r, i+1, step, notes)
}

type exprRes struct {
	kind   int
	target string
	note   string
}

// nftExprStmt evaluates a match, lookup, vmap or set update for a value.
// cont is true when the rule goes on with its next statement.
func (m *machine) nftExprStmt(st *state, t *nftTable, s *nftStmt, vals []nval, where string) (exprRes, bool) {
	switch s.kind {
	case "setupdate":
		key := keyString(vals)
		st.dynAdd("nft:"+t.family+" "+t.name+" "+s.ref, key)
		st.note(fmt.Sprintf("adds %s to @%s (session affinity)", key, s.ref))
		return exprRes{note: fmt.Sprintf("update @%s { %s }", s.ref, key)}, true
	case "lookup":
		_, found := m.lookup(st, t, s.ref, vals)
		if strings.HasPrefix(s.ref, "affinity-") && !found {
			st.note(fmt.Sprintf("%s is not in @%s yet (the first connection; later ones within the set's timeout follow the endpoint it gets)", keyString(vals), s.ref))
		}
		if found == s.neg {
			return exprRes{kind: rNoMatch}, false
		}
		return exprRes{}, true
	case "match":
		if len(vals) == 1 && vals[0].kind == "random" {
			// meta random & MASK < N (iptables-nft's statistic)
			n, err := strconv.ParseUint(s.rhs, 0, 64)
			if err != nil || s.op != "<" {
				return exprRes{kind: rNoMatch}, false
			}
			m.warnf("nft: meta random is treated as always taken (probability %.4g)", float64(n)/0x80000000)
			return exprRes{}, true
		}
		var ok bool
		if s.anon != nil {
			found := false
			for _, e := range s.anon {
				if elemMatches(e, maskAll(vals, s.mask)) {
					found = true
					break
				}
			}
			ok = found == (s.op != "!=")
		} else {
			if len(vals) != 1 {
				return exprRes{kind: rNoMatch}, false
			}
			v, okm := applyMask(vals[0], s.mask)
			ok = okm && relMatch(s.op, s.rhs, v)
		}
		if !ok {
			return exprRes{kind: rNoMatch}, false
		}
		return exprRes{}, true
	case "vmap":
		var e *nftElem
		found := false
		src := "{ ... }"
		if s.ref != "" {
			src = "@" + s.ref
			e, found = m.lookup(st, t, s.ref, vals)
		} else {
			for _, x := range s.anon {
				if elemMatches(x, vals) {
					e, found = x, true
					break
				}
			}
		}
		if !found {
			return exprRes{kind: rNoMatch}, false
		}
		v := e.value
		note := fmt.Sprintf("%s in %s: %s", keyString(vals), src, strings.Join(v, " "))
		if e.comment != "" {
			note += fmt.Sprintf(" (%s)", e.comment)
		}
		if len(v) == 0 {
			return exprRes{kind: rNoMatch}, false
		}
		switch v[0] {
		case "accept":
			return exprRes{kind: rAccept, note: note}, false
		case "drop":
			st.by = where + " (" + src + ")"
			return exprRes{kind: rDrop, note: note}, false
		case "return":
			return exprRes{kind: rReturn, note: note}, false
		case "continue":
			return exprRes{kind: rContinue, note: note}, false
		case "jump", "goto":
			if len(v) < 2 {
				return exprRes{kind: rNoMatch}, false
			}
			k := rJump
			if v[0] == "goto" {
				k = rGoto
			}
			return exprRes{kind: k, target: v[1], note: note}, false
		}
		m.warnf("nft: verdict %q not modelled", strings.Join(v, " "))
		return exprRes{kind: rNoMatch}, false
	}
	return exprRes{kind: rNoMatch}, false
}

func maskAll(vals []nval, mask string) []nval {
	if mask == "" {
		return vals
	}
	out := make([]nval, len(vals))
	for i, v := range vals {
		out[i], _ = applyMask(v, mask)
	}
	return out
}

// nftDNAT applies a dnat statement: a literal address, or a numgen map.
func (m *machine) nftDNAT(st *state, t *nftTable, r *nftRule, i int, step Step, notes []string, where string) []nres {
	s := r.stmts[i]
	apply := func(c *state, addr string, notes []string, branch float64) nres {
		a, port, err := parseDNATValue(addr)
		if err != nil {
			m.warnf("nft: %s: %v", where, err)
			return nres{st: c, kind: rNoMatch}
		}
		if a.IsValid() {
			c.pkt.dst = a
		}
		if port != 0 {
			c.pkt.dport = port
		}
		c.pkt.dnat = true
		c.dnatBy = where
		step.Branch = branch
		step.Note = strings.Join(append(append([]string(nil), notes...), "dnat to "+hostPort(c.pkt.dst, c.pkt.dport)), "; ")
		c.step(step)
		return nres{st: c, kind: rAccept}
	}
	if s.natAddr != "" {
		return []nres{apply(st, s.natAddr, notes, 0)}
	}
	forks, ok := m.nftEval(st, s.natKey)
	if !ok {
		return []nres{{st: st, kind: rNoMatch}}
	}
	var out []nres
	for _, f := range forks {
		c := st
		if len(forks) > 1 {
			c = st.fork(f.p)
		}
		var elems []*nftElem
		if s.natRef != "" {
			if set := t.sets[s.natRef]; set != nil {
				elems = set.elems
			}
		} else {
			elems = s.natMap
		}
		var hit *nftElem
		for _, e := range elems {
			if elemMatches(e, f.vals) {
				hit = e
				break
			}
		}
		if hit == nil {
			out = append(out, nres{st: c, kind: rNoMatch})
			continue
		}
		n := append([]string(nil), notes...)
		if f.note != "" {
			n = append(n, fmt.Sprintf("%s (%s)", f.note, fracString(f.p)))
		}
		branch := 0.0
		if len(forks) > 1 {
			branch = f.p
		}
		out = append(out, apply(c, strings.Join(hit.value, " "), n, branch))
	}
	return out
}

// parseDNATValue reads "IP:port", "[v6]:port", "IP . port" or "IP".
func parseDNATValue(s string) (netip.Addr, uint16, error) {
	if a, p, ok := strings.Cut(s, " . "); ok {
		addr, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("bad dnat address %q", s)
		}
		port, err := parsePort(strings.TrimSpace(p))
		if err != nil {
			return netip.Addr{}, 0, err
		}
		return addr.Unmap(), port, nil
	}
	return parseNATDest(strings.TrimSpace(s))
}
