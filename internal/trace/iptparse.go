package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// iptables rules, parsed from iptables-save / iptables-restore text. Both
// kube-proxy's order ("-m comment --comment C -m tcp -p tcp -d IP --dport
// 80 -j X") and iptables-save's ("-d IP/32 -p tcp -m comment --comment "C"
// -m tcp --dport 80 -j X") are read: an option belongs to the last loaded
// match that defines it, as in iptables itself.

type addrMatch struct {
	set, neg bool
	pfx      netip.Prefix
}

type ifMatch struct {
	set, neg bool
	name     string
}

type opt struct {
	neg  bool
	name string
	args []string
}

type iptMatch struct {
	name string
	opts []opt
}

func (m *iptMatch) get(names ...string) (opt, bool) {
	for _, o := range m.opts {
		for _, n := range names {
			if o.name == n {
				return o, true
			}
		}
	}
	return opt{}, false
}

type iptRule struct {
	line  int
	text  string
	chain string

	src, dst addrMatch
	iif, oif ifMatch
	proto    struct {
		set, neg bool
		num      uint8
	}
	matches    []*iptMatch
	target     string
	isGoto     bool
	targetOpts []opt
}

func (r *iptRule) topt(names ...string) (opt, bool) {
	for _, o := range r.targetOpts {
		for _, n := range names {
			if o.name == n {
				return o, true
			}
		}
	}
	return opt{}, false
}

// matchArity: the options of the matches kube-proxy (and common agents)
// use, with their number of arguments.
var matchArity = map[string]map[string]int{
	"tcp":       {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1, "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1},
	"udp":       {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1},
	"sctp":      {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1, "--chunk-types": 2},
	"udplite":   {"--dport": 1, "--destination-port": 1, "--sport": 1, "--source-port": 1},
	"icmp":      {"--icmp-type": 1},
	"icmp6":     {"--icmpv6-type": 1},
	"comment":   {"--comment": 1},
	"conntrack": {"--ctstate": 1, "--ctproto": 1, "--ctstatus": 1, "--ctorigsrc": 1, "--ctorigdst": 1, "--ctreplsrc": 1, "--ctrepldst": 1, "--ctorigsrcport": 1, "--ctorigdstport": 1, "--ctreplsrcport": 1, "--ctrepldstport": 1, "--ctdir": 1, "--ctexpire": 1},
	"state":     {"--state": 1},
	"mark":      {"--mark": 1},
	"connmark":  {"--mark": 1},
	"addrtype":  {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
	"statistic": {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1},
	"recent":    {"--name": 1, "--set": 0, "--rcheck": 0, "--update": 0, "--remove": 0, "--seconds": 1, "--reap": 0, "--hitcount": 1, "--rttl": 0, "--mask": 1, "--rsource": 0, "--rdest": 0},
	"nfacct":    {"--nfacct-name": 1},
	"set":       {"--match-set": 2, "--return-nomatch": 0, "--update-counters": 0, "--update-subcounters": 0, "--packets-eq": 1, "--packets-lt": 1, "--packets-gt": 1, "--bytes-eq": 1, "--bytes-lt": 1, "--bytes-gt": 1},
	"physdev":   {"--physdev-in": 1, "--physdev-out": 1, "--physdev-is-in": 0, "--physdev-is-out": 0, "--physdev-is-bridged": 0},
	"multiport": {"--dports": 1, "--destination-ports": 1, "--sports": 1, "--source-ports": 1, "--ports": 1},
	"ipvs":      {"--ipvs": 0, "--vproto": 1, "--vaddr": 1, "--vport": 1, "--vdir": 1, "--vmethod": 1, "--vportctl": 1},
	"iprange":   {"--src-range": 1, "--dst-range": 1},
	"pkttype":   {"--pkt-type": 1},
	"limit":     {"--limit": 1, "--limit-burst": 1},
	"mac":       {"--mac-source": 1},
	"owner":     {"--uid-owner": 1, "--gid-owner": 1, "--socket-exists": 0, "--suppl-groups": 0},
	"socket":    {"--transparent": 0, "--nowildcard": 0, "--restore-skmark": 0},
	"rpfilter":  {"--loose": 0, "--validmark": 0, "--accept-local": 0, "--invert": 0},
	"length":    {"--length": 1},
	"dscp":      {"--dscp": 1, "--dscp-class": 1},
	"ttl":       {"--ttl-eq": 1, "--ttl-gt": 1, "--ttl-lt": 1},
	"hl":        {"--hl-eq": 1, "--hl-gt": 1, "--hl-lt": 1},
	"u32":       {"--u32": 1},
	"string":    {"--algo": 1, "--string": 1, "--hex-string": 1, "--from": 1, "--to": 1, "--icase": 0},
	"devgroup":  {"--src-group": 1, "--dst-group": 1},
	"policy":    {"--dir": 1, "--pol": 1, "--strict": 0, "--reqid": 1, "--spi": 1, "--proto": 1, "--mode": 1, "--tunnel-src": 1, "--tunnel-dst": 1, "--next": 0},
	"cgroup":    {"--path": 1, "--cgroup": 1},
	"bpf":       {"--object-pinned": 1, "--bytecode": 1},
}

var targetArity = map[string]map[string]int{
	"DNAT":       {"--to-destination": 1, "--random": 0, "--persistent": 0},
	"SNAT":       {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
	"MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
	"REDIRECT":   {"--to-ports": 1, "--random": 0},
	"REJECT":     {"--reject-with": 1},
	"MARK":       {"--set-mark": 1, "--set-xmark": 1, "--or-mark": 1, "--and-mark": 1, "--xor-mark": 1},
	"CONNMARK":   {"--set-mark": 1, "--set-xmark": 1, "--save-mark": 0, "--restore-mark": 0, "--nfmask": 1, "--ctmask": 1, "--mask": 1, "--or-mark": 1, "--and-mark": 1, "--xor-mark": 1},
	"LOG":        {"--log-prefix": 1, "--log-level": 1, "--log-tcp-sequence": 0, "--log-tcp-options": 0, "--log-ip-options": 0, "--log-uid": 0, "--log-macdecode": 0},
	"NFLOG":      {"--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1, "--nflog-threshold": 1},
	"CT":         {"--notrack": 0, "--zone": 1, "--helper": 1, "--ctevents": 1, "--expevents": 1, "--timeout": 1, "--zone-orig": 1, "--zone-reply": 1},
	"NFQUEUE":    {"--queue-num": 1, "--queue-balance": 1, "--queue-bypass": 0, "--fail-open": 0, "--queue-cpu-fanout": 0},
	"TCPMSS":     {"--set-mss": 1, "--clamp-mss-to-pmtu": 0},
	"CHECKSUM":   {"--checksum-fill": 0},
	"RETURN":     {},
	"ACCEPT":     {},
	"DROP":       {},
	"TRACE":      {},
	"NOTRACK":    {},
}

// protoOptionOwner: options of the implicit protocol matches ("-p tcp
// --dport 80" without "-m tcp").
var protoOptionOwner = map[uint8]string{6: "tcp", 17: "udp", 132: "sctp", 136: "udplite", 1: "icmp", 58: "icmp6"}

// splitShell splits an iptables-restore line as iptables-restore does:
// whitespace-separated, double or single quotes group, backslash escapes the
// next character inside double quotes (iptables-save writes \" \\ \').
func splitShell(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	in := false // inside a token
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			in = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
		case c == '\'':
			in = true
			i++
			for ; i < len(s) && s[i] != '\''; i++ {
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
		case c == ' ' || c == '\t':
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			in = true
			b.WriteByte(c)
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out, nil
}

func isOptionToken(t string) bool {
	if len(t) < 2 || t[0] != '-' {
		return false
	}
	if t[1] >= '0' && t[1] <= '9' {
		return false // a negative number
	}
	return true
}

// parsePrefix reads an iptables address: "10.0.0.1", "10.0.0.0/8",
// "10.0.0.1/255.0.0.0". Host bits are masked off as iptables does.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	a = a.Unmap()
	n, err := strconv.Atoi(bits)
	if err != nil {
		m, err2 := netip.ParseAddr(bits)
		if err2 != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
		}
		n = 0
		for _, by := range m.AsSlice() {
			for by&0x80 != 0 {
				n++
				by <<= 1
			}
		}
	}
	p, err := a.Prefix(n)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
	}
	return p, nil
}

// parseIPTRule parses the arguments of "-A CHAIN ARGS..." (args without
// "-A CHAIN").
func parseIPTRule(chain string, args []string) (*iptRule, error) {
	r := &iptRule{chain: chain}
	neg := false
	takeNeg := func() bool { n := neg; neg = false; return n }
	need := func(i int, what string) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("%s needs an argument", what)
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); {
		t := args[i]
		switch t {
		case "!":
			neg = true
			i++
			continue
		case "-s", "--source", "--src", "-d", "--destination", "--dst":
			v, err := need(i, t)
			if err != nil {
				return nil, err
			}
			p, err := parsePrefix(v)
			if err != nil {
				return nil, err
			}
			m := addrMatch{set: true, neg: takeNeg(), pfx: p}
			if t == "-s" || t == "--source" || t == "--src" {
				r.src = m
			} else {
				r.dst = m
			}
			i += 2
			continue
		case "-i", "--in-interface", "-o", "--out-interface":
			v, err := need(i, t)
			if err != nil {
				return nil, err
			}
			m := ifMatch{set: true, neg: takeNeg(), name: v}
			if t == "-i" || t == "--in-interface" {
				r.iif = m
			} else {
				r.oif = m
			}
			i += 2
			continue
		case "-p", "--protocol":
			v, err := need(i, t)
			if err != nil {
				return nil, err
			}
			n, ok := protoNum(v)
			if !ok {
				return nil, fmt.Errorf("unknown protocol %q", v)
			}
			r.proto.set, r.proto.neg, r.proto.num = true, takeNeg(), n
			i += 2
			continue
		case "-f", "--fragment", "-4", "--ipv4", "-6", "--ipv6":
			takeNeg()
			i++
			continue
		case "-c", "--set-counters":
			i += 3
			continue
		case "-m", "--match":
			v, err := need(i, t)
			if err != nil {
				return nil, err
			}
			r.matches = append(r.matches, &iptMatch{name: v})
			i += 2
			continue
		case "-j", "--jump", "-g", "--goto":
			v, err := need(i, t)
			if err != nil {
				return nil, err
			}
			r.target = v
			r.isGoto = t == "-g" || t == "--goto"
			i += 2
			continue
		}
		if !strings.HasPrefix(t, "--") {
			return nil, fmt.Errorf("unexpected %q", t)
		}
		// An option: the target's, else the last match's that defines it.
		n := -1
		var owner func(o opt)
		if ar, ok := targetArity[r.target]; ok && r.target != "" {
			if k, ok := ar[t]; ok {
				n = k
				owner = func(o opt) { r.targetOpts = append(r.targetOpts, o) }
			}
		}
		if owner == nil {
			for j := len(r.matches) - 1; j >= 0; j-- {
				m := r.matches[j]
				if k, ok := matchArity[m.name][t]; ok {
					n = k
					owner = func(o opt) { m.opts = append(m.opts, o) }
					break
				}
			}
		}
		if owner == nil && r.proto.set {
			if name, ok := protoOptionOwner[r.proto.num]; ok {
				if k, ok := matchArity[name][t]; ok {
					m := &iptMatch{name: name}
					r.matches = append(r.matches, m)
					n = k
					owner = func(o opt) { m.opts = append(m.opts, o) }
				}
			}
		}
		if _, known := targetArity[r.target]; owner == nil && r.target != "" && !known {
			// An extension target svc2rules does not know: its options.
			owner = func(o opt) { r.targetOpts = append(r.targetOpts, o) }
		}
		if owner == nil && len(r.matches) > 0 {
			m := r.matches[len(r.matches)-1]
			if _, known := matchArity[m.name]; !known {
				owner = func(o opt) { m.opts = append(m.opts, o) }
			}
		}
		if owner == nil {
			return nil, fmt.Errorf("option %s belongs to no match or target", t)
		}
		o := opt{neg: takeNeg(), name: t}
		i++
		if n >= 0 {
			if i+n > len(args) {
				return nil, fmt.Errorf("%s needs %d argument(s)", t, n)
			}
			o.args = append(o.args, args[i:i+n]...)
			i += n
		} else {
			for i < len(args) && !isOptionToken(args[i]) && args[i] != "!" {
				o.args = append(o.args, args[i])
				i++
			}
		}
		owner(o)
	}
	if neg {
		return nil, fmt.Errorf("dangling \"!\"")
	}
	return r, nil
}

// iptOp is one operation of an iptables-restore (or iptables command) stream.
type iptOp struct {
	kind   byte // 'N' declare (flush) chain, 'A' append, 'I' insert, 'X' delete chain, 'F' flush, 'P' policy
	chain  string
	policy string
	pos    int
	rule   *iptRule
}

// iptBlock is one "*table ... COMMIT" section (or the rules of iptables
// commands for one table).
type iptBlock struct {
	table  string
	family int // 4, 6 or 0 (no address in it: either)
	ops    []iptOp
	source string
}

// iptTable is a table built from blocks.
type iptTable struct {
	name   string
	chains map[string]*iptChain
}

type iptChain struct {
	name    string
	builtin bool
	policy  string // ACCEPT or DROP for built-in chains
	rules   []*iptRule
}

var builtinIPTChains = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

func isBuiltinChain(table, chain string) bool {
	for _, c := range builtinIPTChains[table] {
		if c == chain {
			return true
		}
	}
	return false
}

// blockFamily guesses the IP family of a block from the addresses in it.
func blockFamily(b *iptBlock) int {
	fam := 0
	see := func(a netip.Addr) {
		if !a.IsValid() {
			return
		}
		if a.Is4() {
			if fam == 0 {
				fam = 4
			}
		} else {
			fam = 6
		}
	}
	for _, op := range b.ops {
		r := op.rule
		if r == nil {
			continue
		}
		if r.src.set {
			see(r.src.pfx.Addr())
		}
		if r.dst.set {
			see(r.dst.pfx.Addr())
		}
		if o, ok := r.topt("--to-destination"); ok && len(o.args) > 0 {
			if a, _, err := parseNATDest(o.args[0]); err == nil {
				see(a)
			}
		}
		if r.proto.set && r.proto.num == 58 {
			fam = 6
		}
		if o, ok := r.topt("--reject-with"); ok && len(o.args) > 0 && strings.HasPrefix(o.args[0], "icmp6") {
			fam = 6
		}
		for _, m := range r.matches {
			if m.name == "recent" {
				if o, ok := m.get("--mask"); ok && len(o.args) > 0 && strings.Contains(o.args[0], ":") {
					fam = 6
				}
			}
		}
		if fam == 6 {
			return 6
		}
	}
	return fam
}

// parseNATDest reads a DNAT/SNAT address: "IP", "IP:port", "[IPv6]:port",
// "IP-IP2:port-port2" (the first of each range is taken).
func parseNATDest(s string) (netip.Addr, uint16, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	} else if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
	}
	if i := strings.Index(host, "-"); i >= 0 {
		host = host[:i]
	}
	var a netip.Addr
	if host != "" {
		var err error
		a, err = netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
		}
		a = a.Unmap()
	}
	var p uint16
	if port != "" {
		if i := strings.Index(port, "-"); i >= 0 {
			port = port[:i]
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("bad port in %q", s)
		}
		p = uint16(n)
	}
	return a, p, nil
}

// buildIPTables applies the blocks of one family (and family-less blocks)
// in order.
func buildIPTables(blocks []*iptBlock, family int) map[string]*iptTable {
	tables := map[string]*iptTable{}
	get := func(name string) *iptTable {
		t := tables[name]
		if t == nil {
			t = &iptTable{name: name, chains: map[string]*iptChain{}}
			for _, c := range builtinIPTChains[name] {
				t.chains[c] = &iptChain{name: c, builtin: true, policy: "ACCEPT"}
			}
			tables[name] = t
		}
		return t
	}
	for _, b := range blocks {
		if b.family != 0 && b.family != family {
			continue
		}
		t := get(b.table)
		chain := func(name string) *iptChain {
			c := t.chains[name]
			if c == nil {
				c = &iptChain{name: name, builtin: isBuiltinChain(b.table, name), policy: "ACCEPT"}
				t.chains[name] = c
			}
			return c
		}
		for _, op := range b.ops {
			switch op.kind {
			case 'N':
				c := chain(op.chain)
				c.rules = nil
				if op.policy != "" && op.policy != "-" {
					c.policy = op.policy
				}
			case 'P':
				chain(op.chain).policy = op.policy
			case 'A':
				c := chain(op.chain)
				c.rules = append(c.rules, op.rule)
			case 'I':
				c := chain(op.chain)
				pos := op.pos - 1
				if pos < 0 {
					pos = 0
				}
				if pos > len(c.rules) {
					pos = len(c.rules)
				}
				c.rules = append(c.rules, nil)
				copy(c.rules[pos+1:], c.rules[pos:])
				c.rules[pos] = op.rule
			case 'X':
				if op.chain == "" {
					for n, c := range t.chains {
						if !c.builtin {
							delete(t.chains, n)
						}
					}
				} else if c := t.chains[op.chain]; c != nil && !c.builtin {
					delete(t.chains, op.chain)
				}
			case 'F':
				if op.chain == "" {
					for _, c := range t.chains {
						c.rules = nil
					}
				} else if c := t.chains[op.chain]; c != nil {
					c.rules = nil
				}
			}
		}
	}
	return tables
}
