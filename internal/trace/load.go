package trace

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Ruleset is everything read from rule text: iptables tables (per family),
// nftables tables, ipsets, IPVS virtual servers, kube-ipvs0 addresses and
// userspace proxy ports. Several texts can be read into one Ruleset (a
// node's iptables-save, ipset save and ipvsadm -S -n, say).
type Ruleset struct {
	ipt      []*iptBlock
	nft      []*nftTable
	nftP     *nftParser
	ipsets   map[string]*ipset
	ipvs     []*ipvsService
	lastIPVS *ipvsService
	ipvsIPs  []netip.Addr // addresses on kube-ipvs0
	proxies  map[string]*proxyPort

	// localHints are node addresses the rules name (nft nodeport-ips,
	// iptables KUBE-NODEPORTS destinations, headers of svc2rules' output).
	localHints []netip.Addr
	primary    netip.Addr

	warnings []string
	sources  []string
}

// NewRuleset returns an empty ruleset.
func NewRuleset() *Ruleset {
	rs := &Ruleset{ipsets: map[string]*ipset{}, proxies: map[string]*proxyPort{}}
	rs.nftP = &nftParser{rs: rs, tables: map[string]*nftTable{}}
	return rs
}

func (rs *Ruleset) warnf(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	for _, x := range rs.warnings {
		if x == w {
			return
		}
	}
	rs.warnings = append(rs.warnings, w)
}

// Warnings are the problems met while reading (rules not understood, ...).
func (rs *Ruleset) Warnings() []string { return append([]string(nil), rs.warnings...) }

// Kind names what the ruleset holds: "iptables", "nft", "ipvs",
// "userspace" (iptables rules of kube-proxy's userspace mode), joined by
// "+" when several.
func (rs *Ruleset) Kind() string {
	var k []string
	userspace := false
	ipvsMode := len(rs.ipvs) > 0 || len(rs.ipsets) > 0
	for _, b := range rs.ipt {
		for _, op := range b.ops {
			if strings.HasPrefix(op.chain, "KUBE-PORTALS-") || strings.HasPrefix(op.chain, "KUBE-NODEPORT-") {
				userspace = true
			}
			if op.chain == "KUBE-IPVS-FILTER" || op.chain == "KUBE-LOAD-BALANCER" {
				ipvsMode = true
			}
		}
	}
	switch {
	case ipvsMode:
		k = append(k, "ipvs")
	case userspace:
		k = append(k, "userspace")
	case len(rs.ipt) > 0:
		k = append(k, "iptables")
	}
	if len(rs.nft) > 0 {
		k = append(k, "nft")
	}
	if len(k) == 0 {
		return "empty"
	}
	return strings.Join(k, "+")
}

var (
	heredocStart = regexp.MustCompile(`<<-?\s*'?"?([A-Za-z_][A-Za-z0-9_]*)'?"?\s*$`)
	shellIPT     = regexp.MustCompile(`^\s*(ip6?tables)(?:-legacy|-nft)?\s+(.*)$`)
	nodeIPHeader = regexp.MustCompile(`node IP: (\S+)`)
	hostIPHeader = regexp.MustCompile(`host IP (\S+)`)
	proxyHeader  = regexp.MustCompile(`^#\s+proxy port (\d+)/(tcp|udp|sctp): (\S+)`)
)

// Parse reads one text into the ruleset. name is used in messages.
func (rs *Ruleset) Parse(name, text string) error {
	rs.sources = append(rs.sources, name)
	if strings.HasPrefix(text, "#!") || strings.Contains(text, "<<'SVC2RULES_EOF'") {
		return rs.parseScript(name, text)
	}
	return rs.parseText(name, text, 0)
}

// parseScript reads a shell script: the bodies of its here-documents (the
// payloads of svc2rules' ipvs script) and its iptables commands (the jump
// rules it inserts into built-in chains).
func (rs *Ruleset) parseScript(name, text string) error {
	lines := strings.Split(text, "\n")
	var inserts []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := heredocStart.FindStringSubmatch(line); m != nil {
			end := m[1]
			var body []string
			start := i + 1
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != end; i++ {
				body = append(body, lines[i])
			}
			if err := rs.parseText(name, strings.Join(body, "\n")+"\n", start); err != nil {
				return err
			}
			continue
		}
		if m := nodeIPHeader.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "#") {
			rs.hint(m[1], true)
		}
		if m := shellIPT.FindStringSubmatch(line); m != nil {
			args := strings.TrimSuffix(strings.TrimSpace(m[2]), "||")
			args = strings.TrimSuffix(strings.TrimSpace(strings.Split(args, "2>")[0]), "\\")
			if strings.Contains(" "+args+" ", " -I ") || strings.Contains(" "+args+" ", " -A ") {
				inserts = append(inserts, fmt.Sprintf("%s\x00%d\x00%s", m[1], i+1, args))
			}
		}
	}
	// The jump rules go in before the payload's rules: the script runs
	// them first (and a payload's chain line flushes only its own chains).
	for j := len(inserts) - 1; j >= 0; j-- {
		parts := strings.SplitN(inserts[j], "\x00", 3)
		line, _ := strconv.Atoi(parts[1])
		if err := rs.iptCommand(name, line, parts[2], parts[0] == "ip6tables"); err != nil {
			return err
		}
	}
	// Move the command blocks first, keeping their order.
	sort.SliceStable(rs.ipt, func(i, j int) bool {
		return strings.HasPrefix(rs.ipt[i].source, "cmd:") && !strings.HasPrefix(rs.ipt[j].source, "cmd:")
	})
	return nil
}

// iptCommand applies "iptables [-w] -t TABLE -I|-A CHAIN ARGS".
func (rs *Ruleset) iptCommand(name string, line int, args string, v6 bool) error {
	f, err := splitShell(args)
	if err != nil {
		return fmt.Errorf("%s:%d: %v", name, line, err)
	}
	table := "filter"
	var rest []string
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "-w", "--wait":
			if i+1 < len(f) && f[i+1] != "" && f[i+1][0] >= '0' && f[i+1][0] <= '9' {
				i++
			}
		case "-t", "--table":
			if i+1 < len(f) {
				table = f[i+1]
				i++
			}
		default:
			rest = append(rest, f[i])
		}
	}
	if len(rest) < 2 {
		return nil
	}
	op := iptOp{chain: rest[1]}
	args2 := rest[2:]
	switch rest[0] {
	case "-I", "--insert":
		op.kind, op.pos = 'I', 1
		if len(args2) > 0 {
			if n, err := strconv.Atoi(args2[0]); err == nil {
				op.pos = n
				args2 = args2[1:]
			}
		}
	case "-A", "--append":
		op.kind = 'A'
	default:
		return nil
	}
	r, err := parseIPTRule(op.chain, args2)
	if err != nil {
		return fmt.Errorf("%s:%d: %v", name, line, err)
	}
	r.line = line
	r.text = "-A " + op.chain + " " + strings.Join(quoteArgs(args2), " ")
	op.rule = r
	fam := 4
	if v6 {
		fam = 6
	}
	rs.ipt = append(rs.ipt, &iptBlock{table: table, family: fam, ops: []iptOp{op}, source: "cmd:" + name})
	return nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			out[i] = strconv.Quote(a)
		} else {
			out[i] = a
		}
	}
	return out
}

func (rs *Ruleset) hint(s string, primary bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return
	}
	a = a.Unmap()
	for _, x := range rs.localHints {
		if x == a {
			return
		}
	}
	rs.localHints = append(rs.localHints, a)
	if primary && !rs.primary.IsValid() {
		rs.primary = a
	}
}

var nftObjects = map[string]bool{"table": true, "chain": true, "rule": true, "set": true, "map": true, "element": true, "counter": true, "quota": true, "flowtable": true, "ruleset": true, "ct": true, "limit": true, "secmark": true, "synproxy": true}

// parseText reads text made of any of: iptables-save/restore sections,
// ipset save/restore/list lines, ipvsadm -S/-L lines, kube-ipvs0 address
// lines, nft scripts or listings, svc2rules' userspace table.
func (rs *Ruleset) parseText(name, text string, lineOffset int) error {
	lines := strings.Split(text, "\n")
	var block *iptBlock
	var nftBuf []string
	nftStart := 0
	var setList *ipset // "ipset list" output
	inMembers := false
	var usPort *proxyPort // userspace table
	usTable := false
	flushNFT := func() error {
		if len(nftBuf) == 0 {
			return nil
		}
		src := fmt.Sprintf("%s:%d", name, nftStart)
		toks, tl, err := nftTokenize(strings.Join(nftBuf, "\n"))
		nftBuf = nil
		if err != nil {
			return fmt.Errorf("%s: %v", src, err)
		}
		for i := range tl {
			tl[i] += nftStart - 1
		}
		p := rs.nftP
		p.toks, p.lines, p.pos, p.src = toks, tl, 0, name
		return p.parse()
	}
	depth := 0
	famHint := 0
	for i, raw := range lines {
		ln := i + 1 + lineOffset
		line := strings.TrimRight(raw, "\r")
		trim := strings.TrimSpace(line)
		// Inside an nft block: collect until the braces balance.
		if depth > 0 {
			nftBuf = append(nftBuf, line)
			depth += braceDelta(line)
			if depth <= 0 {
				depth = 0
				if err := flushNFT(); err != nil {
					return err
				}
			}
			continue
		}
		if trim == "" {
			inMembers = false
			continue
		}
		if strings.HasPrefix(trim, "#") {
			switch {
			case strings.HasPrefix(trim, "# Generated by ip6tables-save"):
				famHint = 6
			case strings.HasPrefix(trim, "# Generated by iptables-save"):
				famHint = 4
			}
			if m := proxyHeader.FindStringSubmatch(trim); m != nil {
				port, _ := strconv.Atoi(m[1])
				proto, _ := protoNum(m[2])
				rs.proxy(uint16(port), proto, m[3])
			}
			if m := hostIPHeader.FindStringSubmatch(trim); m != nil {
				rs.hint(strings.TrimSuffix(m[1], ","), true)
			}
			if strings.Contains(trim, "userspace mode") && strings.Contains(trim, "proxy's own state") {
				usTable = true
			}
			if strings.HasPrefix(trim, "# For every service port") {
				usTable = false
			}
			continue
		}
		f := strings.Fields(trim)
		// svc2rules' userspace table.
		if usTable {
			if !strings.HasPrefix(line, " ") && len(f) == 1 {
				usPort = &proxyPort{spn: f[0], known: true}
				continue
			}
			if usPort != nil {
				rs.userspaceRow(usPort, trim)
				continue
			}
		}
		switch {
		case strings.HasPrefix(trim, "*"):
			block = &iptBlock{table: strings.TrimPrefix(trim, "*"), source: name}
			continue
		case trim == "COMMIT":
			if block != nil {
				block.family = blockFamily(block)
				if famHint != 0 && (block.family == 0 || block.family == 4 && famHint == 6) {
					// iptables-save / ip6tables-save header.
					block.family = famHint
				}
				rs.ipt = append(rs.ipt, block)
				rs.iptHints(block)
			}
			block = nil
			continue
		case block != nil && strings.HasPrefix(trim, ":"):
			cf := strings.Fields(trim[1:])
			if len(cf) == 0 {
				return fmt.Errorf("%s:%d: chain line without a name", name, ln)
			}
			op := iptOp{kind: 'N', chain: cf[0]}
			if len(cf) > 1 {
				op.policy = cf[1]
			}
			block.ops = append(block.ops, op)
			continue
		case block != nil && (strings.HasPrefix(trim, "-") || strings.HasPrefix(trim, "[")):
			if err := rs.iptLine(block, name, ln, trim); err != nil {
				return err
			}
			continue
		}
		// ipvsadm -S -n
		if ok, err := rs.ipvsadmLine(f); ok || err != nil {
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, ln, err)
			}
			continue
		}
		// ipvsadm -L -n
		if ok, err := rs.ipvsListLine(line); ok || err != nil {
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, ln, err)
			}
			continue
		}
		// ipset list
		if strings.HasPrefix(trim, "Name: ") {
			setList = &ipset{name: strings.TrimPrefix(trim, "Name: ")}
			inMembers = false
			continue
		}
		if setList != nil {
			switch {
			case strings.HasPrefix(trim, "Type: "):
				*setList = *newIPSet(setList.name, strings.TrimPrefix(trim, "Type: "))
				rs.ipsets[setList.name] = setList
				continue
			case trim == "Members:":
				inMembers = true
				continue
			case inMembers:
				e, err := setList.parseEntry(f[0])
				if err != nil {
					return fmt.Errorf("%s:%d: %v", name, ln, err)
				}
				setList.entries = append(setList.entries, e)
				continue
			case strings.Contains(trim, ": "):
				continue // Revision:, Header:, Size in memory:, References:, ...
			}
		}
		// ipset save / restore
		if len(f) >= 3 && f[0] == "create" && strings.Contains(f[2], ":") {
			rs.ipsets[f[1]] = newIPSet(f[1], f[2])
			continue
		}
		if len(f) >= 3 && (f[0] == "add" || f[0] == "-A") && !(nftObjects[f[1]] && nftFamilies[f[2]]) && !nftObjects[f[1]] {
			s := rs.ipsets[f[1]]
			if s == nil {
				return fmt.Errorf("%s:%d: entry of unknown ipset %s", name, ln, f[1])
			}
			e, err := s.parseEntry(f[2])
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, ln, err)
			}
			s.entries = append(s.entries, e)
			continue
		}
		// kube-ipvs0 addresses ("10.96.0.10/32").
		if len(f) == 1 && strings.Contains(f[0], "/") {
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				rs.ipvsIPs = append(rs.ipvsIPs, p.Addr().Unmap())
				continue
			}
		}
		// nftables.
		if f[0] == "table" || nftVerbs[f[0]] {
			nftStart = ln
			nftBuf = append(nftBuf, line)
			depth = braceDelta(line)
			if depth <= 0 {
				depth = 0
				if err := flushNFT(); err != nil {
					return err
				}
			}
			continue
		}
		if f[0] == "}" {
			continue
		}
		return fmt.Errorf("%s:%d: cannot read %q (expected iptables-save, nft, ipset or ipvsadm text)", name, ln, truncate(trim, 80))
	}
	if block != nil {
		return fmt.Errorf("%s: table *%s has no COMMIT", name, block.table)
	}
	if depth > 0 {
		return fmt.Errorf("%s:%d: unbalanced braces", name, nftStart)
	}
	rs.nftHints()
	return nil
}

var nftVerbs = map[string]bool{"add": true, "create": true, "insert": true, "replace": true, "flush": true, "delete": true, "destroy": true, "list": true}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// braceDelta counts { minus } outside quotes and comments.
func braceDelta(line string) int {
	d := 0
	inQ := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQ:
			i++
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '#':
			return d
		case c == '{':
			d++
		case c == '}':
			d--
		}
	}
	return d
}

var counterPrefix = regexp.MustCompile(`^\[\d+:\d+\]\s*`)

// iptLine reads one rule line of a table section.
func (rs *Ruleset) iptLine(b *iptBlock, name string, ln int, line string) error {
	line = counterPrefix.ReplaceAllString(line, "")
	f, err := splitShell(line)
	if err != nil {
		return fmt.Errorf("%s:%d: %v", name, ln, err)
	}
	if len(f) == 0 {
		return nil
	}
	op := iptOp{}
	switch f[0] {
	case "-A", "--append":
		op.kind = 'A'
	case "-I", "--insert":
		op.kind, op.pos = 'I', 1
	case "-N", "--new-chain":
		op.kind = 'N'
	case "-X", "--delete-chain":
		op.kind = 'X'
	case "-F", "--flush":
		op.kind = 'F'
	case "-P", "--policy":
		op.kind = 'P'
	case "-D", "--delete", "-Z", "--zero", "-C", "--check":
		rs.warnf("%s:%d: %s is not modelled; ignored", name, ln, f[0])
		return nil
	default:
		return fmt.Errorf("%s:%d: unknown command %q", name, ln, f[0])
	}
	if len(f) > 1 {
		op.chain = f[1]
	}
	args := []string{}
	if len(f) > 2 {
		args = f[2:]
	}
	switch op.kind {
	case 'P':
		if len(args) > 0 {
			op.policy = args[0]
		}
	case 'I':
		if len(args) > 0 {
			if n, err := strconv.Atoi(args[0]); err == nil {
				op.pos = n
				args = args[1:]
			}
		}
		fallthrough
	case 'A':
		if op.chain == "" {
			return fmt.Errorf("%s:%d: rule without a chain", name, ln)
		}
		r, err := parseIPTRule(op.chain, args)
		if err != nil {
			rs.warnf("%s:%d: %v: rule not evaluated (treated as never matching)", name, ln, err)
			r = &iptRule{chain: op.chain, target: "\x00unparsed"}
		}
		r.line = ln
		r.text = line
		op.rule = r
	}
	b.ops = append(b.ops, op)
	return nil
}

// iptHints takes the node addresses kube-proxy names in KUBE-NODEPORTS jumps
// (non-match-all --nodeport-addresses).
func (rs *Ruleset) iptHints(b *iptBlock) {
	if b.table != "nat" {
		return
	}
	for _, op := range b.ops {
		if r := op.rule; r != nil && op.chain == "KUBE-SERVICES" && r.target == "KUBE-NODEPORTS" && r.dst.set && !r.dst.neg && r.dst.pfx.IsSingleIP() {
			rs.hint(r.dst.pfx.Addr().String(), false)
		}
	}
}

// nftHints takes the elements of kube-proxy's nodeport-ips set.
func (rs *Ruleset) nftHints() {
	for _, t := range rs.nft {
		if s := t.sets["nodeport-ips"]; s != nil {
			for _, e := range s.elems {
				if len(e.key) == 1 {
					rs.hint(e.key[0], false)
				}
			}
		}
	}
}

func (rs *Ruleset) proxy(port uint16, proto uint8, spn string) *proxyPort {
	k := fmt.Sprintf("%d/%d", port, proto)
	p := rs.proxies[k]
	if p == nil {
		p = &proxyPort{port: port, proto: proto, spn: spn}
		rs.proxies[k] = p
	}
	return p
}

// userspaceRow reads "key: value" rows of svc2rules' userspace table.
func (rs *Ruleset) userspaceRow(p *proxyPort, row string) {
	key, val, ok := strings.Cut(row, ":")
	if !ok {
		return
	}
	val = strings.TrimSpace(val)
	switch key {
	case "protocol":
		p.proto, _ = protoNum(strings.ToLower(val))
	case "proxy port":
		f := strings.Fields(val)
		if len(f) == 0 {
			return
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return
		}
		p.port = uint16(n)
		k := fmt.Sprintf("%d/%d", p.port, p.proto)
		if old := rs.proxies[k]; old != nil && old != p {
			p.spn = old.spn
		}
		rs.proxies[k] = p
	case "backends":
		if strings.HasPrefix(val, "none") {
			p.none = val
			return
		}
		if i := strings.Index(val, " ("); i >= 0 {
			val = val[:i]
		}
		p.backends = strings.Fields(val)
	case "affinity":
		p.affinity = val
	}
}
