package ipvs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
)

// Render is the IPVS backend: a pure, deterministic function from a plan and
// settings to the state kube-proxy v1.37.2 programs in IPVS mode, either one
// payload (s.Section) or the sh script applying all four.
func Render(plan *compiler.Plan, s Settings) (string, error) {
	if plan == nil {
		return "", errors.New("ipvs: nil plan")
	}
	if plan.Family != v1.IPv4Protocol && plan.Family != v1.IPv6Protocol {
		return "", fmt.Errorf("ipvs: unknown IP family %q", plan.Family)
	}
	if err := s.validate(); err != nil {
		return "", err
	}
	st := build(plan, s)
	switch s.Section {
	case SectionIPVSAdm:
		return st.ipvsadmText(), nil
	case SectionIPSet:
		return st.ipsetText(), nil
	case SectionAddresses:
		return st.addressesText(), nil
	case SectionIPTables:
		if s.IPTablesView == IPTablesRestore {
			return st.restoreText(), nil
		}
		return st.saveText(), nil
	}
	return st.script(plan, s), nil
}

// ipvsadmText is the IPVS table in ipvsadm -S -n syntax (valid ipvsadm -R
// input): "-A <svc> -s <sched>[ -p <timeout>][ -b mh-port]" and
// "-a <svc> -r <rs> -m -w 1". Virtual servers by protocol, address and port;
// real servers by address and port.
func (st *state) ipvsadmText() string {
	servers := st.sortedServers()
	size := 0
	for _, vs := range servers {
		size += 96 + 80*len(vs.reals)
	}
	var b strings.Builder
	b.Grow(size)
	for _, vs := range servers {
		svc := serviceArg(vs.key)
		b.WriteString("-A ")
		b.WriteString(svc)
		b.WriteString(" -s ")
		b.WriteString(vs.scheduler)
		if vs.persistent {
			b.WriteString(" -p ")
			b.WriteString(strconv.Itoa(int(vs.timeout)))
		}
		if vs.mhPort {
			b.WriteString(" -b mh-port")
		}
		b.WriteByte('\n')
		for _, rs := range vs.sortedReals() {
			b.WriteString("-a ")
			b.WriteString(svc)
			b.WriteString(" -r ")
			b.WriteString(hostPort(rs.address, rs.port))
			b.WriteString(" -m -w ")
			b.WriteString(strconv.Itoa(rs.weight))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// serviceArg is ipvsadm's service option: -t / -u / --sctp-service ADDR:PORT.
func serviceArg(k vsKey) string {
	hp := hostPort(k.address, k.port)
	switch k.protocol {
	case v1.ProtocolUDP:
		return "-u " + hp
	case v1.ProtocolSCTP:
		return "--sctp-service " + hp
	}
	return "-t " + hp
}

// ipsetText is every set as ipset restore input: the create line with the
// arguments kube-proxy passes to "ipset create" (no comment, timeout or
// counters options), then one add line per entry in the form kube-proxy
// passes to "ipset add". Sets by name, entries by text.
func (st *state) ipsetText() string {
	sets := st.sets[:]
	order := make([]*ipset, len(sets))
	copy(order, sets)
	sortSetsByName(order)
	size := 0
	for _, s := range order {
		size += 96 + len(s.entries)*(len("add  \n")+len(s.name)+48)
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range order {
		b.WriteString(createLine(s))
		b.WriteByte('\n')
		for _, e := range s.sortedEntries() {
			b.WriteString("add ")
			b.WriteString(s.name)
			b.WriteByte(' ')
			b.WriteString(e)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func sortSetsByName(sets []*ipset) {
	for i := 1; i < len(sets); i++ {
		for j := i; j > 0 && sets[j].name < sets[j-1].name; j-- {
			sets[j], sets[j-1] = sets[j-1], sets[j]
		}
	}
}

func createLine(s *ipset) string {
	if s.typ == bitmapPort {
		return "create " + s.name + " " + string(s.typ) + " range 0-65535"
	}
	fam := "inet"
	if s.family == v1.IPv6Protocol {
		fam = "inet6"
	}
	return "create " + s.name + " " + string(s.typ) + " family " + fam + " hashsize 1024 maxelem 65536"
}

// addressesText lists the kube-ipvs0 addresses, one host prefix per line.
func (st *state) addressesText() string {
	bound := st.sortedBound()
	prefix := hostPrefix(st.family)
	var b strings.Builder
	b.Grow(len(bound) * 48)
	for _, a := range bound {
		b.WriteString(a)
		b.WriteString(prefix)
		b.WriteByte('\n')
	}
	return b.String()
}

func hostPrefix(f v1.IPFamily) string {
	if f == v1.IPv6Protocol {
		return "/128"
	}
	return "/32"
}
