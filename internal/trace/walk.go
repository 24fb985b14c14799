package trace

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// packet is the packet as the rules see it at some point of its way.
type packet struct {
	fam          int // 4 or 6
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	mark         uint32
	iif, oif     string
	dnat, snat   bool
	ipvs         *ipvsService // the virtual server that scheduled it
}

// state is one path being walked.
type state struct {
	pkt      packet
	prob     float64
	steps    []Step
	dyn      map[string]map[string]bool // recent lists and nft dynamic sets: entries added on the way
	affinity []string
	verdict  string
	by       string
	acceptBy string
	dnatBy   string
	masqBy   string
	rerouted bool // IPVS rewrote it at LOCAL_IN: it leaves through LOCAL_OUT
	local    bool // delivered to a local socket
	proxy    *proxyPort
}

// forks counts the random branches taken, against runaway rule sets.
func (m *machine) forks(n int) {
	m.work += n
	m.paths += n
	if m.work > maxWorkVar || m.paths > 4*maxPathsVar {
		panic(errBudget)
	}
}

func (s *state) fork(p float64) *state {
	c := *s
	c.prob = s.prob * p
	c.steps = append([]Step(nil), s.steps...)
	c.affinity = append([]string(nil), s.affinity...)
	return &c
}

func (s *state) step(st Step) { s.steps = append(s.steps, st) }

func (s *state) dynHas(name, key string) bool { return s.dyn[name][key] }

func (s *state) dynAdd(name, key string) {
	n := make(map[string]map[string]bool, len(s.dyn)+1)
	for k, v := range s.dyn {
		n[k] = v
	}
	inner := make(map[string]bool, len(n[name])+1)
	for k := range n[name] {
		inner[k] = true
	}
	inner[key] = true
	n[name] = inner
	s.dyn = n
}

func (s *state) dynDel(name, key string) {
	if !s.dyn[name][key] {
		return
	}
	n := make(map[string]map[string]bool, len(s.dyn))
	for k, v := range s.dyn {
		n[k] = v
	}
	inner := map[string]bool{}
	for k := range n[name] {
		if k != key {
			inner[k] = true
		}
	}
	n[name] = inner
	s.dyn = n
}

func (s *state) note(a string) {
	for _, x := range s.affinity {
		if x == a {
			return
		}
	}
	s.affinity = append(s.affinity, a)
}

// Result kinds of a chain, a table at a hook, or a rule.
const (
	rFall     = iota // end of chain
	rContinue        // go on with the next rule
	rReturn
	rAccept
	rDrop
	rReject
	rJump
	rGoto
	rNoMatch
)

type cres struct {
	st     *state
	kind   int
	target string // jump/goto target (nft)
}

// limits keep hostile or looping rule sets from running away.
const maxDepth = 64

var (
	maxWorkVar  = 20_000_000
	maxPathsVar = 20_000
)

var errBudget = errors.New("trace: too much work (a loop in the rules, or too many random branches)")

type machine struct {
	rs      *Ruleset
	fam     int
	local   []netip.Prefix
	primary netip.Addr
	ipt     map[string]*iptTable
	work    int
	paths   int
	warn    map[string]bool
	warns   []string
	assume  map[string]bool
	assumes []string
	iifSet  bool
}

func (m *machine) warnf(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if !m.warn[w] {
		m.warn[w] = true
		m.warns = append(m.warns, w)
	}
}

func (m *machine) assumef(format string, args ...any) {
	a := fmt.Sprintf(format, args...)
	if !m.assume[a] {
		m.assume[a] = true
		m.assumes = append(m.assumes, a)
	}
}

func (m *machine) spend() {
	m.work++
	if m.work > maxWorkVar {
		panic(errBudget)
	}
}

func (m *machine) isLocal(a netip.Addr) bool {
	for _, p := range m.local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// entry is one thing registered at a hook: an iptables table, an nftables
// base chain or IPVS.
type entry struct {
	prio int
	name string
	nat  bool
	run  func(st *state, hook string) []cres
}

var iptPriority = map[string]int{"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}

func (m *machine) entries(hook string) []entry {
	var es []entry
	for _, name := range []string{"raw", "mangle", "nat", "filter", "security"} {
		t := m.ipt[name]
		if t == nil {
			continue
		}
		c := t.chains[hook]
		if c == nil {
			continue
		}
		prio := iptPriority[name]
		if name == "nat" && (hook == "INPUT" || hook == "POSTROUTING") {
			prio = 100
		}
		tbl := t
		es = append(es, entry{prio: prio, name: "iptables " + name, nat: name == "nat", run: func(st *state, hook string) []cres {
			return m.iptBuiltin(st, tbl, hook)
		}})
	}
	lower := strings.ToLower(hook)
	for _, t := range m.rs.nft {
		if !(t.family == "inet" || t.family == "ip" && m.fam == 4 || t.family == "ip6" && m.fam == 6) {
			continue
		}
		for _, name := range t.order {
			c := t.chains[name]
			if c == nil || !c.base || c.hook != lower {
				continue
			}
			tbl, ch := t, c
			es = append(es, entry{prio: c.priority, name: "nft " + t.family + " " + t.name + " " + c.name, nat: c.typ == "nat", run: func(st *state, hook string) []cres {
				return m.nftBase(st, tbl, ch, hook)
			}})
		}
	}
	if len(m.rs.ipvs) > 0 {
		switch hook {
		case "INPUT":
			es = append(es, entry{prio: 99, name: "ipvs", run: m.ipvsHook})
		case "OUTPUT":
			es = append(es, entry{prio: -98, name: "ipvs", run: m.ipvsHook})
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].prio < es[j].prio })
	return es
}

// runHook passes the states through every entry of the hook; it returns the
// states that go on and those that ended (dropped, rejected).
func (m *machine) runHook(in []*state, hook string, skipNAT bool) (cont, done []*state) {
	es := m.entries(hook)
	cur := in
	for _, e := range es {
		if skipNAT && e.nat {
			continue
		}
		var next []*state
		for _, s := range cur {
			for _, r := range e.run(s, hook) {
				switch r.kind {
				case rDrop:
					r.st.verdict = VerdictDrop
					done = append(done, r.st)
				case rReject:
					r.st.verdict = VerdictReject
					done = append(done, r.st)
				default:
					next = append(next, r.st)
				}
			}
		}
		cur = next
		m.paths = len(cur) + len(done)
		if m.paths > maxPathsVar {
			panic(errBudget)
		}
	}
	return cur, done
}

func (m *machine) route(s *state, what string) bool {
	local := m.isLocal(s.pkt.dst)
	note := fmt.Sprintf("%s is not a local address: forwarded", s.pkt.dst)
	if local {
		note = fmt.Sprintf("%s is a local address: delivered to the node", s.pkt.dst)
	}
	if what != "" {
		note = what + ": " + note
	}
	s.step(Step{Hook: "route", Note: note})
	return local
}

// walk follows the packet from its start to its end.
func (m *machine) walk(st *state, from string) []*state {
	var finals []*state
	deliver := func(ss []*state, local bool) {
		for _, s := range ss {
			s.local = local
			finals = append(finals, s)
		}
	}
	// afterInput handles what INPUT let through: delivered locally, or
	// rewritten by IPVS and sent on through LOCAL_OUT and POSTROUTING.
	afterInput := func(ss []*state) {
		for _, s := range ss {
			if !s.rerouted {
				deliver([]*state{s}, true)
				continue
			}
			s.rerouted = false
			c, d := m.runHook([]*state{s}, "OUTPUT", true)
			finals = append(finals, d...)
			var fwd, loc []*state
			for _, x := range c {
				if m.route(x, "after IPVS") {
					loc = append(loc, x)
				} else {
					fwd = append(fwd, x)
				}
			}
			c2, d2 := m.runHook(fwd, "POSTROUTING", false)
			finals = append(finals, d2...)
			deliver(c2, false)
			deliver(loc, true)
		}
	}
	if from == FromNode {
		cont, done := m.runHook([]*state{st}, "OUTPUT", false)
		finals = append(finals, done...)
		var local, remote []*state
		for _, s := range cont {
			if m.route(s, "") {
				local = append(local, s)
			} else {
				remote = append(remote, s)
			}
		}
		c, d := m.runHook(remote, "POSTROUTING", false)
		finals = append(finals, d...)
		deliver(c, false)
		if len(local) > 0 {
			c, d = m.runHook(local, "POSTROUTING", false)
			finals = append(finals, d...)
			for _, s := range c {
				s.pkt.iif = "lo"
			}
			c, d = m.runHook(c, "PREROUTING", true)
			finals = append(finals, d...)
			c, d = m.runHook(c, "INPUT", false)
			finals = append(finals, d...)
			afterInput(c)
		}
		return finals
	}
	cont, done := m.runHook([]*state{st}, "PREROUTING", false)
	finals = append(finals, done...)
	var local, remote []*state
	for _, s := range cont {
		if m.route(s, "") {
			local = append(local, s)
		} else {
			remote = append(remote, s)
		}
	}
	c, d := m.runHook(local, "INPUT", false)
	finals = append(finals, d...)
	afterInput(c)
	c, d = m.runHook(remote, "FORWARD", false)
	finals = append(finals, d...)
	c, d = m.runHook(c, "POSTROUTING", false)
	finals = append(finals, d...)
	deliver(c, false)
	return finals
}

// Trace follows q through the rules.
func Trace(rs *Ruleset, q Query, env Env) (res *Result, err error) {
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return nil, errors.New("trace: source and destination addresses are required")
	}
	if q.Src.Is4() != q.Dst.Is4() {
		return nil, fmt.Errorf("trace: source %s and destination %s are of different IP families", q.Src, q.Dst)
	}
	proto, ok := protoNum(q.Proto)
	if !ok || (proto != 6 && proto != 17 && proto != 132) {
		return nil, fmt.Errorf("trace: protocol must be tcp, udp or sctp, not %q", q.Proto)
	}
	m := &machine{rs: rs, fam: 4, warn: map[string]bool{}, assume: map[string]bool{}}
	if q.Dst.Is6() {
		m.fam = 6
	}
	m.ipt = buildIPTables(rs.ipt, m.fam)
	m.local, m.primary = m.localAddrs(env)

	from := q.From
	if from == "" {
		if m.isLocal(q.Src) {
			from = FromNode
			m.assumef("--from node: the source %s is a node address", q.Src)
		} else {
			from = FromExternal
			m.assumef("--from external: the source %s is not a node address (pod and external traffic take the same hooks; only interface matches differ)", q.Src)
		}
	}
	switch from {
	case FromNode, FromPod, FromExternal:
	default:
		return nil, fmt.Errorf("trace: --from must be pod, node or external, not %q", from)
	}
	sport := q.SrcPort
	if sport == 0 {
		sport = 40000
	}
	st := &state{prob: 1, pkt: packet{fam: m.fam, src: q.Src, dst: q.Dst, sport: sport, dport: q.DstPort, proto: proto, mark: q.Mark, iif: q.InIface}}
	m.iifSet = q.InIface != ""
	if from == FromNode {
		st.pkt.iif = ""
		m.iifSet = true
	}

	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok && errors.Is(e, errBudget) {
				res, err = nil, e
				return
			}
			panic(r)
		}
	}()
	finals := m.walk(st, from)

	res = &Result{
		Query:   QueryJSON{Src: q.Src.String(), Dst: hostPort(q.Dst, q.DstPort), Proto: protoName(proto), From: from, Iif: q.InIface},
		Backend: rs.Kind(),
		Source:  strings.Join(rs.sources, ", "),
	}
	for _, s := range finals {
		res.Paths = append(res.Paths, m.finish(s)...)
	}
	res.Outcomes = aggregate(res.Paths)
	res.Warnings = append(rs.Warnings(), m.warns...)
	res.Assumptions = m.assumes
	return res, nil
}

// localAddrs gathers the node's addresses: the environment's, loopback,
// kube-ipvs0 addresses, and the node addresses the rules themselves name.
func (m *machine) localAddrs(env Env) ([]netip.Prefix, netip.Addr) {
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		for _, x := range out {
			if x == p {
				return
			}
		}
		out = append(out, p)
	}
	add(netip.MustParsePrefix("127.0.0.0/8"))
	add(netip.MustParsePrefix("::1/128"))
	for _, p := range env.Local {
		add(p.Masked())
	}
	for _, a := range m.rs.ipvsIPs {
		add(netip.PrefixFrom(a, a.BitLen()))
	}
	for _, name := range []string{"KUBE-IPVS-IPS", "KUBE-6-IPVS-IPS"} {
		if s := m.rs.ipsets[name]; s != nil {
			for _, e := range s.entries {
				if len(e.addrs) == 1 {
					add(e.addrs[0])
				}
			}
		}
	}
	primary := env.PrimaryIP
	for _, a := range m.rs.localHints {
		if a.Is4() != (m.fam == 4) {
			continue
		}
		p := netip.PrefixFrom(a, a.BitLen())
		known := false
		for _, x := range out {
			if x.Contains(a) {
				known = true
			}
		}
		if !known {
			add(p)
			m.assumef("%s is a node address (the rules name it as one)", a)
		}
	}
	if !primary.IsValid() && m.rs.primary.IsValid() && (m.rs.primary.Is4() == (m.fam == 4)) {
		primary = m.rs.primary
	}
	if !primary.IsValid() {
		for _, p := range out {
			a := p.Addr()
			if p.IsSingleIP() && !a.IsLoopback() && a.Is4() == (m.fam == 4) {
				primary = a
				break
			}
		}
	}
	return out, primary
}

// finish turns an ended state into paths (several when a userspace proxy
// picks one of its backends).
func (m *machine) finish(s *state) []Path {
	p := Path{Probability: s.prob, Steps: s.steps, By: s.by}
	if len(s.affinity) > 0 {
		p.Affinity = strings.Join(s.affinity, "; ")
	}
	if s.verdict != "" {
		p.Verdict = s.verdict
		return []Path{p}
	}
	if s.local {
		p.Delivered = "local"
	} else {
		p.Delivered = "forwarded"
	}
	if s.masqBy != "" {
		p.Masquerade, p.MasqueradeBy = true, s.masqBy
	} else {
		p.Source = s.pkt.src.String()
	}
	switch {
	case s.local && m.proxyFor(s) != nil:
		pp := m.proxyFor(s)
		p.Verdict = VerdictProxy
		p.By = fmt.Sprintf("kube-proxy's userspace proxy for %s (port %d/%s)", pp.spn, pp.port, protoName(pp.proto))
		p.Masquerade, p.MasqueradeBy, p.Source = true, "the proxy opens its own connection from the node", ""
		step := Step{Hook: "proxy", Note: fmt.Sprintf("delivered to kube-proxy's proxy socket %d/%s (%s)", pp.port, protoName(pp.proto), pp.spn)}
		if pp.affinity != "" && !strings.HasPrefix(pp.affinity, "None") {
			p.Affinity = "userspace proxy affinity " + pp.affinity
		}
		switch {
		case !pp.known:
			p.Steps = append(p.Steps, step)
			m.assumef("the userspace proxy's backends are not in the rules (give svc2rules' --userspace-section table output too)")
			return []Path{p}
		case len(pp.backends) == 0:
			step.Note += ": " + pp.none
			p.Steps = append(p.Steps, step)
			p.Verdict = VerdictReject
			p.By = fmt.Sprintf("kube-proxy's userspace proxy for %s has no backend: it accepts and closes the connection", pp.spn)
			p.Delivered, p.Masquerade, p.MasqueradeBy = "", false, ""
			return []Path{p}
		}
		var out []Path
		n := float64(len(pp.backends))
		for _, b := range pp.backends {
			q := p
			q.Probability = p.Probability / n
			q.Steps = append(append([]Step(nil), p.Steps...), step, Step{Hook: "proxy", Note: fmt.Sprintf("round robin over %d backend(s): dials %s", len(pp.backends), b), Branch: 1 / n})
			q.Endpoint = b
			q.Delivered = "forwarded"
			out = append(out, q)
		}
		return out
	case s.pkt.dnat || s.pkt.ipvs != nil:
		p.Verdict = VerdictDNAT
		p.Endpoint = hostPort(s.pkt.dst, s.pkt.dport)
		p.By = s.dnatBy
	case s.acceptBy != "":
		p.Verdict = VerdictAccept
		p.By = s.acceptBy
	default:
		p.Verdict = VerdictNoMatch
		p.Endpoint = hostPort(s.pkt.dst, s.pkt.dport)
	}
	return []Path{p}
}

func (m *machine) proxyFor(s *state) *proxyPort {
	return m.rs.proxies[fmt.Sprintf("%d/%d", s.pkt.dport, s.pkt.proto)]
}

func aggregate(paths []Path) []Outcome {
	idx := map[string]int{}
	var out []Outcome
	for _, p := range paths {
		k := strings.Join([]string{p.Verdict, p.By, p.Endpoint, p.Delivered, fmt.Sprint(p.Masquerade), p.Affinity}, "\x00")
		if i, ok := idx[k]; ok {
			out[i].Probability += p.Probability
			continue
		}
		idx[k] = len(out)
		out = append(out, Outcome{Probability: p.Probability, Verdict: p.Verdict, By: p.By, Endpoint: p.Endpoint, Delivered: p.Delivered, Masquerade: p.Masquerade, Affinity: p.Affinity})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Verdict != out[j].Verdict {
			return out[i].Verdict < out[j].Verdict
		}
		return endpointLess(out[i].Endpoint, out[j].Endpoint)
	})
	return out
}

func endpointLess(a, b string) bool {
	pa, ea := netip.ParseAddrPort(a)
	pb, eb := netip.ParseAddrPort(b)
	if ea != nil || eb != nil {
		return a < b
	}
	return pa.Compare(pb) < 0
}

// basePolicy is the end of a base chain (iptables built-in chain, nftables
// base chain): the results that ran off it (fellOff) get the chain's
// policy, accept or, with drop, drop (recorded as step and by); the others
// pass as they are.
func basePolicy(res []cres, fellOff func(kind int) bool, drop bool, step Step, by string) []cres {
	out := make([]cres, 0, len(res))
	for _, r := range res {
		switch {
		case !fellOff(r.kind):
			out = append(out, r)
		case drop:
			r.st.by = by
			r.st.step(step)
			out = append(out, cres{st: r.st, kind: rDrop})
		default:
			out = append(out, cres{st: r.st, kind: rAccept})
		}
	}
	return out
}
