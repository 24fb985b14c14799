package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ipsets (ipset save / restore / list text) and IPVS virtual servers
// (ipvsadm -S -n and ipvsadm -L -n text).

type ipset struct {
	name    string
	typ     string   // hash:ip,port ...
	dims    []string // ip, port, net, mac, iface, mark
	entries []ipsetEntry
}

type ipsetEntry struct {
	text  string
	addrs []netip.Prefix // per ip/net dimension, in order
	ports []portRange    // per port dimension
	proto []uint8        // per port dimension (0: any)
}

type portRange struct{ lo, hi uint16 }

func (r portRange) has(p uint16) bool { return p >= r.lo && p <= r.hi }

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		lo, hi, isRange = strings.Cut(s, ":")
	}
	a, err := parsePort(lo)
	if err != nil {
		return portRange{}, err
	}
	if !isRange {
		return portRange{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return portRange{}, err
	}
	return portRange{a, b}, nil
}

var serviceNames = map[string]uint16{"ssh": 22, "domain": 53, "http": 80, "https": 443, "bootps": 67, "bootpc": 68, "ntp": 123, "kerberos": 88}

func parsePort(s string) (uint16, error) {
	if n, ok := serviceNames[s]; ok {
		return n, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

func newIPSet(name, typ string) *ipset {
	s := &ipset{name: name, typ: typ}
	if _, dims, ok := strings.Cut(typ, ":"); ok {
		s.dims = strings.Split(dims, ",")
	}
	return s
}

// parseEntry reads one member: "10.0.0.1,tcp:80,10.0.0.0/8", "30080", ...
func (s *ipset) parseEntry(text string) (ipsetEntry, error) {
	e := ipsetEntry{text: text}
	parts := strings.Split(text, ",")
	if len(parts) != len(s.dims) {
		return e, fmt.Errorf("set %s (%s): entry %q has %d parts", s.name, s.typ, text, len(parts))
	}
	for i, d := range s.dims {
		p := parts[i]
		switch d {
		case "ip", "net":
			var pfx netip.Prefix
			var err error
			if lo, hi, ok := strings.Cut(p, "-"); ok && d == "ip" {
				// a range: keep the first address (ranges are not kube-proxy's)
				_ = hi
				pfx, err = parsePrefix(lo)
			} else {
				pfx, err = parsePrefix(p)
			}
			if err != nil {
				return e, fmt.Errorf("set %s: %v", s.name, err)
			}
			e.addrs = append(e.addrs, pfx)
		case "port":
			proto := uint8(0)
			if s.typ != "bitmap:port" {
				proto = 6 // ipset's default protocol is tcp
			}
			if name, port, ok := strings.Cut(p, ":"); ok {
				n, known := protoNum(name)
				if !known {
					return e, fmt.Errorf("set %s: bad protocol in %q", s.name, text)
				}
				proto, p = n, port
			}
			r, err := parsePortRange(p)
			if err != nil {
				return e, fmt.Errorf("set %s: %v", s.name, err)
			}
			e.ports = append(e.ports, r)
			e.proto = append(e.proto, proto)
		default:
			// mac, iface, mark: not matched by kube-proxy's sets.
		}
	}
	return e, nil
}

// has reports whether the set holds the packet's values picked by flags
// ("dst,dst,src": one src/dst per dimension).
func (s *ipset) has(flags []string, pkt *packet) bool {
	if len(flags) < len(s.dims) {
		// Fewer flags than dimensions: ipset matches on a prefix of the
		// dimensions only for some types; require all.
		return false
	}
	for _, e := range s.entries {
		ai, pi, ok := 0, 0, true
		for i, d := range s.dims {
			src := flags[i] == "src"
			switch d {
			case "ip", "net":
				a := pkt.dst
				if src {
					a = pkt.src
				}
				if !e.addrs[ai].Contains(a) {
					ok = false
				}
				ai++
			case "port":
				port := pkt.dport
				if src {
					port = pkt.sport
				}
				if !e.ports[pi].has(port) || e.proto[pi] != 0 && e.proto[pi] != pkt.proto {
					ok = false
				}
				pi++
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

type ipvsService struct {
	proto      uint8
	addr       netip.Addr
	port       uint16
	sched      string
	persistent int // seconds; 0: not persistent
	reals      []ipvsReal
	text       string
}

type ipvsReal struct {
	addr   netip.Addr
	port   uint16
	weight int
	method string
}

func (v *ipvsService) String() string {
	return strings.ToUpper(protoName(v.proto)) + " " + hostPort(v.addr, v.port)
}

// parseIPVSAddr reads "10.0.0.1:80" or "[fd00::1]:80".
func parseIPVSAddr(s string) (netip.Addr, uint16, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	return ap.Addr().Unmap(), ap.Port(), nil
}

// ipvsadmLine parses one line of "ipvsadm -S -n" ("-A -t ADDR -s rr [-p T]",
// "-a -t ADDR -r RS -m -w 1"). It returns false for lines of another kind.
func (rs *Ruleset) ipvsadmLine(f []string) (bool, error) {
	if len(f) < 3 || (f[0] != "-A" && f[0] != "-a" && f[0] != "--add-service" && f[0] != "--add-server") {
		return false, nil
	}
	var proto uint8
	switch f[1] {
	case "-t", "--tcp-service":
		proto = 6
	case "-u", "--udp-service":
		proto = 17
	case "--sctp-service":
		proto = 132
	case "-f", "--fwmark-service":
		rs.warnf("ipvs: firewall-mark virtual services are not modelled: %s", strings.Join(f, " "))
		return true, nil
	default:
		return false, nil
	}
	addr, port, err := parseIPVSAddr(f[2])
	if err != nil {
		return true, err
	}
	if f[0] == "-A" || f[0] == "--add-service" {
		v := &ipvsService{proto: proto, addr: addr, port: port, sched: "wlc", text: strings.Join(f, " ")}
		for i := 3; i < len(f); i++ {
			switch f[i] {
			case "-s", "--scheduler":
				if i+1 < len(f) {
					v.sched = f[i+1]
					i++
				}
			case "-p", "--persistent":
				v.persistent = 300
				if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
					if n, err := strconv.Atoi(f[i+1]); err == nil {
						v.persistent = n
					}
					i++
				}
			}
		}
		rs.ipvsService(v)
		return true, nil
	}
	v := rs.findIPVS(proto, addr, port)
	if v == nil {
		return true, fmt.Errorf("ipvs: real server of unknown virtual server %s", f[2])
	}
	r := ipvsReal{weight: 1, method: "Masq"}
	for i := 3; i < len(f); i++ {
		switch f[i] {
		case "-r", "--real-server":
			if i+1 < len(f) {
				ra, rp, err := parseIPVSAddr(f[i+1])
				if err != nil {
					return true, err
				}
				r.addr, r.port = ra, rp
				i++
			}
		case "-w", "--weight":
			if i+1 < len(f) {
				n, err := strconv.Atoi(f[i+1])
				if err != nil {
					return true, fmt.Errorf("ipvs: bad weight %q", f[i+1])
				}
				r.weight = n
				i++
			}
		case "-m", "--masquerading":
			r.method = "Masq"
		case "-g", "--gatewaying":
			r.method = "Route"
		case "-i", "--ipip":
			r.method = "Tunnel"
		}
	}
	if r.port == 0 {
		r.port = v.port
	}
	v.reals = append(v.reals, r)
	return true, nil
}

func (rs *Ruleset) ipvsService(v *ipvsService) {
	if old := rs.findIPVS(v.proto, v.addr, v.port); old != nil {
		*old = *v
		return
	}
	rs.ipvs = append(rs.ipvs, v)
}

func (rs *Ruleset) findIPVS(proto uint8, addr netip.Addr, port uint16) *ipvsService {
	for _, v := range rs.ipvs {
		if v.proto == proto && v.addr == addr && v.port == port {
			return v
		}
	}
	return nil
}

// ipvsListLine parses "ipvsadm -L -n" lines: "TCP  10.96.0.10:80 rr
// persistent 10800" and "  -> 10.244.1.10:8080  Masq  1  0  0".
func (rs *Ruleset) ipvsListLine(line string) (bool, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false, nil
	}
	switch f[0] {
	case "IP", "Prot":
		return strings.HasPrefix(line, "IP Virtual Server") || strings.HasPrefix(line, "Prot LocalAddress"), nil
	case "->":
		if len(f) >= 2 && f[1] == "RemoteAddress:Port" {
			return true, nil
		}
		if len(f) < 4 || rs.lastIPVS == nil {
			return false, nil
		}
		a, p, err := parseIPVSAddr(f[1])
		if err != nil {
			return true, err
		}
		w, err := strconv.Atoi(f[3])
		if err != nil {
			return true, fmt.Errorf("ipvs: bad weight in %q", line)
		}
		rs.lastIPVS.reals = append(rs.lastIPVS.reals, ipvsReal{addr: a, port: p, weight: w, method: f[2]})
		return true, nil
	case "TCP", "UDP", "SCTP":
		if len(f) < 3 {
			return false, nil
		}
		a, p, err := parseIPVSAddr(f[1])
		if err != nil {
			return false, nil
		}
		proto, _ := protoNum(strings.ToLower(f[0]))
		v := &ipvsService{proto: proto, addr: a, port: p, sched: f[2], text: strings.Join(f, " ")}
		for i := 3; i < len(f); i++ {
			if f[i] == "persistent" && i+1 < len(f) {
				v.persistent, _ = strconv.Atoi(f[i+1])
			}
		}
		rs.ipvsService(v)
		rs.lastIPVS = rs.findIPVS(proto, a, p)
		return true, nil
	}
	return false, nil
}

// userspace proxy ports (svc2rules' userspace table and rule header).
type proxyPort struct {
	port     uint16
	proto    uint8
	spn      string
	backends []string
	none     string // why there is no backend
	affinity string
	known    bool // the table was read (backends are known)
}

// ipvsHook is IPVS at LOCAL_IN (packets routed to a local address) and
// LOCAL_OUT (packets the node sends): a connection to a virtual server is
// scheduled to a real server and its destination rewritten.
func (m *machine) ipvsHook(st *state, hook string) []cres {
	p := &st.pkt
	if p.ipvs != nil {
		return []cres{{st: st, kind: rAccept}}
	}
	v := m.rs.findIPVS(p.proto, p.dst, p.dport)
	if v == nil {
		return []cres{{st: st, kind: rAccept}}
	}
	step := Step{Hook: "ipvs", Table: "ipvs", Chain: "virtual server " + v.String(), Text: v.text}
	at := "LOCAL_IN"
	if hook == "OUTPUT" {
		at = "LOCAL_OUT"
	}
	total := 0
	for _, r := range v.reals {
		if r.weight > 0 {
			total += r.weight
		}
	}
	if total == 0 {
		st.by = "IPVS virtual server " + v.String() + " has no real server with a weight"
		step.Note = fmt.Sprintf("%s: no real server: IPVS answers ICMP port unreachable and drops the packet", at)
		st.step(step)
		return []cres{{st: st, kind: rReject}}
	}
	weighted := v.sched != "rr" && v.sched != "sh" && v.sched != "dh" && v.sched != "mh" && v.sched != "lc" && v.sched != "nq"
	n := 0
	for _, r := range v.reals {
		if r.weight > 0 {
			n++
		}
	}
	if v.persistent > 0 {
		st.note(fmt.Sprintf("IPVS persistence %ds: later connections from %s to %s go to the same real server", v.persistent, p.src, v.String()))
	}
	switch v.sched {
	case "sh", "mh", "dh":
		m.assumef("ipvs scheduler %s picks a real server by hashing addresses: shown as an even choice", v.sched)
	case "lc", "wlc", "sed", "nq":
		m.assumef("ipvs scheduler %s picks by active connections: shown as an even (or weighted) choice on an idle node", v.sched)
	}
	m.forks(n)
	var out []cres
	for _, r := range v.reals {
		if r.weight <= 0 {
			continue
		}
		share := 1 / float64(n)
		if weighted {
			share = float64(r.weight) / float64(total)
		}
		c := st
		if n > 1 {
			c = st.fork(share)
		}
		s := step
		if n > 1 {
			s.Branch = share
		}
		s.Note = fmt.Sprintf("%s: scheduler %s picks real server %s (weight %d, %s), forwarding %s", at, v.sched, hostPort(r.addr, r.port), r.weight, fracString(share), r.method)
		c.pkt.dst, c.pkt.dport = r.addr, r.port
		c.pkt.ipvs = v
		c.pkt.dnat = true
		c.dnatBy = "IPVS virtual server " + v.String()
		if hook == "INPUT" {
			c.rerouted = true
		}
		c.step(s)
		out = append(out, cres{st: c, kind: rAccept})
	}
	return out
}
