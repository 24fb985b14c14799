package trace

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// iptBuiltin runs a table's built-in chain at a hook.
func (m *machine) iptBuiltin(st *state, t *iptTable, hook string) []cres {
	c := t.chains[hook]
	return basePolicy(m.iptChain(st, t, c, hook, 0), func(k int) bool { return k == rFall || k == rReturn },
		c.policy == "DROP", Step{Hook: hook, Table: t.name, Chain: c.name, Note: "end of chain: policy DROP"},
		"policy DROP of "+t.name+" "+c.name)
}

func (m *machine) iptChain(st *state, t *iptTable, c *iptChain, hook string, depth int) []cres {
	if depth > maxDepth {
		m.warnf("iptables: chains nested deeper than %d (a loop?) at %s", maxDepth, c.name)
		panic(errBudget)
	}
	return m.iptFrom(st, t, c, hook, 0, depth)
}

func (m *machine) iptFrom(st *state, t *iptTable, c *iptChain, hook string, start, depth int) []cres {
	for i := start; i < len(c.rules); i++ {
		m.spend()
		r := c.rules[i]
		forks := m.iptMatch(st, r, t, c, i, hook)
		if len(forks) == 1 && !forks[0].matched {
			continue
		}
		var out []cres
		for _, f := range forks {
			if !f.matched {
				out = append(out, m.iptFrom(f.st, t, c, hook, i+1, depth)...)
				continue
			}
			res := m.iptTarget(f, t, c, r, i, hook, depth)
			if len(forks) == 1 && len(res) == 1 && res[0].kind == rContinue {
				st = res[0].st
				goto next
			}
			for _, x := range res {
				if x.kind == rContinue {
					out = append(out, m.iptFrom(x.st, t, c, hook, i+1, depth)...)
				} else {
					out = append(out, x)
				}
			}
		}
		return out
	next:
	}
	return []cres{{st: st, kind: rFall}}
}

type mfork struct {
	st      *state
	matched bool
	note    string  // a random match's choice
	branch  float64 // its probability
}

// iptMatch evaluates a rule's matches. It returns one fork, or two when a
// random match (statistic) decides.
func (m *machine) iptMatch(st *state, r *iptRule, t *iptTable, c *iptChain, idx int, hook string) []mfork {
	no := []mfork{{st: st}}
	if r.target == "\x00unparsed" {
		return no
	}
	p := &st.pkt
	if r.src.set && r.src.pfx.Contains(p.src) == r.src.neg {
		return no
	}
	if r.dst.set && r.dst.pfx.Contains(p.dst) == r.dst.neg {
		return no
	}
	if r.iif.set && m.ifMatch(r.iif.name, p.iif, "-i") == r.iif.neg {
		return no
	}
	if r.oif.set && m.ifMatch(r.oif.name, p.oif, "-o") == r.oif.neg {
		return no
	}
	if r.proto.set && r.proto.num != 0 && (r.proto.num == p.proto) == r.proto.neg {
		return no
	}
	prob := 1.0
	var randomNote string
	var effects []func(*state)
	for _, mt := range r.matches {
		ok, pr, eff, note := m.iptMatchOne(st, mt, r)
		if !ok {
			return no
		}
		if pr < 1 {
			prob *= pr
			randomNote = note
		}
		if eff != nil {
			effects = append(effects, eff)
		}
	}
	if prob >= 1 {
		for _, e := range effects {
			e(st)
		}
		return []mfork{{st: st, matched: true}}
	}
	m.forks(2)
	yes := st.fork(prob)
	for _, e := range effects {
		e(yes)
	}
	nope := st.fork(1 - prob)
	nope.step(Step{Hook: hook, Table: t.name, Chain: c.name, Rule: idx + 1, Text: r.text, Note: randomNote + ": not taken, next rule", Branch: 1 - prob})
	return []mfork{{st: yes, matched: true, note: randomNote + ": taken", branch: prob}, {st: nope}}
}

// ifMatch is iptables' interface match ("veth+" matches a prefix).
func (m *machine) ifMatch(pattern, name, flag string) bool {
	if name == "" {
		if !m.iifSet || flag == "-o" {
			m.assumef("interface unknown: %s %s evaluated as not matching (give --iif for pod traffic)", flag, pattern)
		}
		return false
	}
	if strings.HasSuffix(pattern, "+") {
		return strings.HasPrefix(name, strings.TrimSuffix(pattern, "+"))
	}
	return pattern == name
}

// ctStates: the conntrack states of the first packet of a connection.
func ctStates(p *packet, virtual bool) map[string]bool {
	s := map[string]bool{"NEW": true}
	if virtual {
		if p.dnat {
			s["DNAT"] = true
		}
		if p.snat {
			s["SNAT"] = true
		}
	}
	return s
}

func anyIn(list string, set map[string]bool) bool {
	for _, x := range strings.Split(list, ",") {
		if set[strings.ToUpper(strings.TrimSpace(x))] {
			return true
		}
	}
	return false
}

func portMatch(spec string, port uint16) bool {
	for _, part := range strings.Split(spec, ",") {
		r, err := parsePortRange(part)
		if err == nil && r.has(port) {
			return true
		}
	}
	return false
}

func parseMarkMask(s string) (uint32, uint32, error) {
	v, mask, hasMask := strings.Cut(s, "/")
	val, err := parseUint32(v)
	if err != nil {
		return 0, 0, err
	}
	mk := uint32(0xffffffff)
	if hasMask {
		mk, err = parseUint32(mask)
		if err != nil {
			return 0, 0, err
		}
	}
	return val, mk, nil
}

// addrType is the addrtype match's classification of an address.
func (m *machine) addrTypes(a netip.Addr) map[string]bool {
	t := map[string]bool{}
	switch {
	case !a.IsValid() || a.IsUnspecified():
		t["UNSPEC"] = true
	case a.IsMulticast():
		t["MULTICAST"] = true
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		t["BROADCAST"] = true
	default:
		t["UNICAST"] = true
	}
	if m.isLocal(a) {
		t["LOCAL"] = true
	}
	return t
}

// iptMatchOne evaluates one "-m NAME ..." match: whether it matches, with
// which probability (random matches), and what it changes when it does.
func (m *machine) iptMatchOne(st *state, mt *iptMatch, r *iptRule) (ok bool, prob float64, effect func(*state), note string) {
	p := &st.pkt
	prob = 1
	all := func(f func(o opt) bool) bool {
		for _, o := range mt.opts {
			if f(o) == o.neg {
				return false
			}
		}
		return true
	}
	arg := func(o opt, i int) string {
		if i < len(o.args) {
			return o.args[i]
		}
		return ""
	}
	switch mt.name {
	case "comment", "nfacct", "limit", "hashlimit", "pkttype":
		return true, 1, nil, ""
	case "tcp", "udp", "sctp", "udplite":
		want, _ := protoNum(mt.name)
		if p.proto != want {
			return false, 1, nil, ""
		}
		return all(func(o opt) bool {
			switch o.name {
			case "--dport", "--destination-port":
				return portMatch(arg(o, 0), p.dport)
			case "--sport", "--source-port":
				return portMatch(arg(o, 0), p.sport)
			case "--syn":
				return p.proto == 6
			case "--tcp-flags":
				return arg(o, 1) == "SYN" || strings.Contains(arg(o, 1), "SYN") && !strings.Contains(arg(o, 1), "ACK")
			}
			return true
		}), 1, nil, ""
	case "multiport":
		return all(func(o opt) bool {
			switch o.name {
			case "--dports", "--destination-ports":
				return portMatch(arg(o, 0), p.dport)
			case "--sports", "--source-ports":
				return portMatch(arg(o, 0), p.sport)
			case "--ports":
				return portMatch(arg(o, 0), p.dport) || portMatch(arg(o, 0), p.sport)
			}
			return true
		}), 1, nil, ""
	case "icmp", "icmp6":
		return false, 1, nil, ""
	case "conntrack":
		return all(func(o opt) bool {
			switch o.name {
			case "--ctstate":
				return anyIn(arg(o, 0), ctStates(p, true))
			case "--ctstatus":
				return false // a first packet is neither EXPECTED, SEEN_REPLY, ASSURED nor CONFIRMED
			case "--ctproto":
				n, _ := protoNum(arg(o, 0))
				return n == p.proto
			case "--ctdir":
				return strings.EqualFold(arg(o, 0), "ORIGINAL")
			}
			m.warnf("iptables: conntrack option %s not modelled (assumed to match)", o.name)
			return !o.neg
		}), 1, nil, ""
	case "state":
		return all(func(o opt) bool { return anyIn(arg(o, 0), ctStates(p, false)) }), 1, nil, ""
	case "mark", "connmark":
		cur := p.mark
		if mt.name == "connmark" {
			cur = 0
		}
		return all(func(o opt) bool {
			v, mask, err := parseMarkMask(arg(o, 0))
			if err != nil {
				m.warnf("iptables: bad mark %q", arg(o, 0))
				return false
			}
			return cur&mask == v
		}), 1, nil, ""
	case "addrtype":
		return all(func(o opt) bool {
			switch o.name {
			case "--src-type":
				return anyIn(arg(o, 0), m.addrTypes(p.src))
			case "--dst-type":
				return anyIn(arg(o, 0), m.addrTypes(p.dst))
			}
			return !o.neg // --limit-iface-in/out
		}), 1, nil, ""
	case "statistic":
		mode, _ := mt.get("--mode")
		switch arg(mode, 0) {
		case "random":
			o, found := mt.get("--probability")
			if !found {
				return true, 1, nil, ""
			}
			f, err := strconv.ParseFloat(arg(o, 0), 64)
			if err != nil || f < 0 || f > 1 {
				m.warnf("iptables: bad probability %q", arg(o, 0))
				return false, 1, nil, ""
			}
			// The kernel keeps lround(p * 2^31) and matches when a random
			// u32 & 0x7fffffff is below it.
			q := math.Round(f*0x80000000) / 0x80000000
			if o.neg {
				q = 1 - q
			}
			if q >= 1 {
				return true, 1, nil, ""
			}
			if q <= 0 {
				return false, 1, nil, ""
			}
			return true, q, nil, fmt.Sprintf("statistic random %s", fracString(q))
		case "nth":
			o, _ := mt.get("--every")
			n, err := strconv.Atoi(arg(o, 0))
			if err != nil || n <= 0 {
				return false, 1, nil, ""
			}
			m.assumef("statistic nth: treated as a random choice of 1 in %d", n)
			return true, 1 / float64(n), nil, fmt.Sprintf("statistic nth every %d", n)
		}
		return true, 1, nil, ""
	case "recent":
		name := "DEFAULT"
		if o, found := mt.get("--name"); found {
			name = arg(o, 0)
		}
		key := p.src
		if _, rdest := mt.get("--rdest"); rdest {
			key = p.dst
		}
		list := "recent:" + name
		neg := false
		for _, o := range mt.opts {
			if o.neg {
				neg = true
			}
		}
		if _, set := mt.get("--set"); set {
			return !neg, 1, func(s *state) {
				s.dynAdd(list, key.String())
				s.note(fmt.Sprintf("records %s in recent list %s (session affinity)", key, name))
			}, ""
		}
		has := st.dynHas(list, key.String())
		secs := ""
		if o, found := mt.get("--seconds"); found {
			secs = " within " + arg(o, 0) + "s"
		}
		if !has {
			st.note(fmt.Sprintf("no earlier connection from %s in recent list %s%s (the first connection; later ones follow the endpoint it gets)", key, name, secs))
		}
		if _, rm := mt.get("--remove"); rm && has {
			return !neg, 1, func(s *state) { s.dynDel(list, key.String()) }, ""
		}
		return has != neg, 1, nil, ""
	case "set":
		o, found := mt.get("--match-set")
		if !found || len(o.args) < 2 {
			return false, 1, nil, ""
		}
		s := m.rs.ipsets[o.args[0]]
		if s == nil {
			m.warnf("ipset %s is not in the rules: its matches are evaluated as not matching (give the ipset save output too)", o.args[0])
			return o.neg, 1, nil, ""
		}
		return s.has(strings.Split(o.args[1], ","), p) != o.neg, 1, nil, ""
	case "physdev":
		return all(func(o opt) bool {
			m.assumef("not bridged: physdev %s evaluated as not matching", o.name)
			return false
		}), 1, nil, ""
	case "ipvs":
		return all(func(o opt) bool {
			v := p.ipvs
			if v == nil {
				return false
			}
			switch o.name {
			case "--ipvs":
				return true
			case "--vaddr":
				pf, err := parsePrefix(arg(o, 0))
				return err == nil && pf.Contains(v.addr)
			case "--vport":
				return portMatch(arg(o, 0), v.port)
			case "--vproto":
				n, _ := protoNum(arg(o, 0))
				return n == v.proto
			case "--vdir":
				return strings.EqualFold(arg(o, 0), "ORIGINAL")
			case "--vmethod":
				return strings.EqualFold(arg(o, 0), "MASQ")
			}
			return true
		}), 1, nil, ""
	case "iprange":
		return all(func(o opt) bool {
			lo, hi, _ := strings.Cut(arg(o, 0), "-")
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			if err1 != nil || err2 != nil {
				return false
			}
			x := p.src
			if o.name == "--dst-range" {
				x = p.dst
			}
			return x.Compare(a) >= 0 && x.Compare(b) <= 0
		}), 1, nil, ""
	}
	m.warnf("iptables: match %q is not modelled: rules using it are evaluated as not matching", mt.name)
	return false, 1, nil, ""
}

// iptTarget applies a matched rule's target.
func (m *machine) iptTarget(f mfork, t *iptTable, c *iptChain, r *iptRule, idx int, hook string, depth int) []cres {
	st := f.st
	p := &st.pkt
	step := Step{Hook: hook, Table: t.name, Chain: c.name, Rule: idx + 1, Text: r.text, Branch: f.branch}
	prefix := ""
	if f.note != "" {
		prefix = f.note + "; "
	}
	where := fmt.Sprintf("%s %s rule %d", t.name, c.name, idx+1)
	arg := func(names ...string) string {
		if o, ok := r.topt(names...); ok && len(o.args) > 0 {
			return o.args[0]
		}
		return ""
	}
	done := func(kind int, note string) []cres {
		step.Note = prefix + note
		st.step(step)
		return []cres{{st: st, kind: kind}}
	}
	switch r.target {
	case "":
		return done(rContinue, "matched (no target)")
	case "ACCEPT":
		if st.acceptBy == "" {
			st.acceptBy = where
		}
		return done(rAccept, "ACCEPT")
	case "DROP":
		st.by = where
		return done(rDrop, "DROP")
	case "REJECT":
		st.by = where
		with := arg("--reject-with")
		if with == "" {
			with = "icmp-port-unreachable"
			if p.fam == 6 {
				with = "icmp6-port-unreachable"
			}
		}
		return done(rReject, "REJECT with "+with)
	case "RETURN":
		return done(rReturn, "RETURN")
	case "DNAT":
		if t.name != "nat" {
			return done(rContinue, "DNAT outside the nat table: ignored")
		}
		a, port, err := parseNATDest(arg("--to-destination"))
		if err != nil {
			m.warnf("iptables: %s: %v", where, err)
			return done(rContinue, "bad DNAT")
		}
		if a.IsValid() {
			p.dst = a
		}
		if port != 0 {
			p.dport = port
		}
		p.dnat = true
		st.dnatBy = where
		return done(rAccept, "DNAT to "+hostPort(p.dst, p.dport))
	case "SNAT", "MASQUERADE":
		if t.name != "nat" {
			return done(rContinue, r.target+" outside the nat table: ignored")
		}
		p.snat = true
		st.masqBy = where
		if r.target == "SNAT" {
			if a, _, err := parseNATDest(arg("--to-source")); err == nil && a.IsValid() {
				p.src = a
				return done(rAccept, "SNAT to "+a.String())
			}
		}
		return done(rAccept, "MASQUERADE: the source becomes the node's address on the outgoing interface")
	case "REDIRECT":
		if t.name != "nat" {
			return done(rContinue, "REDIRECT outside the nat table: ignored")
		}
		if hook == "OUTPUT" {
			p.dst = netip.MustParseAddr("127.0.0.1")
			if p.fam == 6 {
				p.dst = netip.IPv6Loopback()
			}
		} else if m.primary.IsValid() {
			p.dst = m.primary
		} else {
			m.assumef("REDIRECT: the incoming interface's address is unknown (give --node-ip)")
		}
		if port := arg("--to-ports"); port != "" {
			if r, err := parsePortRange(port); err == nil {
				p.dport = r.lo
			}
		}
		p.dnat = true
		st.dnatBy = where
		return done(rAccept, "REDIRECT to local port "+fmt.Sprint(p.dport))
	case "MARK":
		before := p.mark
		for _, o := range r.targetOpts {
			if len(o.args) == 0 {
				continue
			}
			v, mask, err := parseMarkMask(o.args[0])
			if err != nil {
				m.warnf("iptables: %s: bad mark %q", where, o.args[0])
				continue
			}
			switch o.name {
			case "--set-xmark":
				p.mark = p.mark&^mask ^ v
			case "--set-mark":
				p.mark = p.mark&^mask | v
			case "--or-mark":
				p.mark |= v
			case "--and-mark":
				p.mark &= v
			case "--xor-mark":
				p.mark ^= v
			}
		}
		return done(rContinue, fmt.Sprintf("MARK %#x -> %#x", before, p.mark))
	case "LOG", "NFLOG", "TRACE", "CONNMARK", "CT", "NOTRACK", "CHECKSUM", "TCPMSS", "CLASSIFY", "AUDIT", "NFQUEUE":
		return done(rContinue, r.target+" (no effect on the verdict here)")
	}
	sub := t.chains[r.target]
	if sub == nil {
		m.warnf("iptables: %s: target %s is neither a known target nor a chain of table %s (ignored)", where, r.target, t.name)
		return done(rContinue, "unknown target "+r.target+": ignored")
	}
	verb := "jump"
	if r.isGoto {
		verb = "goto"
	}
	step.Note = prefix + verb + " " + r.target
	st.step(step)
	at := len(st.steps)
	var out []cres
	for _, x := range m.iptChain(st, t, sub, hook, depth+1) {
		switch x.kind {
		case rFall, rReturn:
			if len(x.st.steps) == at {
				x.st.steps[at-1].Note += " (no rule there matched)"
			}
			if r.isGoto {
				x.kind = rReturn
			} else {
				x.kind = rContinue
			}
		}
		out = append(out, x)
	}
	return out
}

// fracString prints a probability as a fraction when it is close to 1/n.
func fracString(p float64) string {
	if p > 0 {
		n := math.Round(1 / p)
		if n >= 2 && math.Abs(1/n-p) < 1e-6 {
			return fmt.Sprintf("p=1/%d", int(n))
		}
	}
	return fmt.Sprintf("p=%.4g", p)
}
