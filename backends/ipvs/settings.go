package ipvs

import (
	"fmt"

	"github.com/svc2rules/svc2rules/compiler"
)

// Section selects one payload of the output.
type Section string

const (
	// SectionScript (the zero value) is the POSIX sh script applying all four parts.
	SectionScript Section = ""
	// SectionIPVSAdm is the virtual/real server table as ipvsadm -R input.
	SectionIPVSAdm Section = "ipvsadm"
	// SectionIPSet is every KUBE-* set as ipset restore input.
	SectionIPSet Section = "ipset"
	// SectionAddresses lists the addresses bound to kube-ipvs0, one "IP/32" or
	// "IP/128" per line.
	SectionAddresses Section = "addresses"
	// SectionIPTables is the iptables part (see IPTablesView).
	SectionIPTables Section = "iptables"
)

// IPTablesView selects the form of the iptables section.
type IPTablesView string

const (
	// IPTablesSave (the default) is the node's nat and filter tables after the
	// sync as iptables-save lists them: built-in chains carrying kube-proxy's
	// jump rules, then the KUBE-* chains, rules grouped per chain in
	// kube-proxy's order. It loads with iptables-restore into an empty netns.
	IPTablesSave IPTablesView = "save"
	// IPTablesRestore is exactly the payload kube-proxy passes to
	// "iptables-restore --noflush --counters" (nat, then filter; rules in
	// generation order). The jump rules are not part of it.
	IPTablesRestore IPTablesView = "restore"
)

// DefaultScheduler is kube-proxy's scheduler when --ipvs-scheduler is empty.
const DefaultScheduler = "rr"

// Settings are the kube-proxy settings that change IPVS-mode state.
type Settings struct {
	// Scheduler is --ipvs-scheduler ("" means rr). It is passed through
	// verbatim, as kube-proxy does; "mh" also sets the mh-port flag.
	Scheduler string
	// ExcludeCIDRs is --ipvs-exclude-cidrs (any family; only the plan's family
	// is used). It changes no output of a fresh sync: kube-proxy only spares
	// pre-existing virtual servers inside these CIDRs from its clean-up, which
	// the script reproduces.
	ExcludeCIDRs []string
	// StrictARP is the KubeProxyConfiguration ipvs.strictARP: kube-proxy then
	// sets net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 (script only).
	StrictARP bool
	// MasqueradeAll is --masquerade-all.
	MasqueradeAll bool
	// MasqueradeBit is --iptables-masquerade-bit (0..31).
	MasqueradeBit int
	// LocalDetector is the local-traffic detector of the plan's family.
	LocalDetector compiler.LocalDetector
	// NodePortAddresses is --nodeport-addresses resolved for the family.
	NodePortAddresses compiler.NodePortAddresses
	// Section selects one payload; SectionScript (empty) gives the script.
	Section Section
	// IPTablesView is the form of SectionIPTables (IPTablesSave when empty).
	// The script always embeds the restore payload.
	IPTablesView IPTablesView
}

func (s Settings) scheduler() string {
	if s.Scheduler == "" {
		return DefaultScheduler
	}
	return s.Scheduler
}

func (s Settings) validate() error {
	if s.MasqueradeBit < 0 || s.MasqueradeBit > 31 {
		return fmt.Errorf("ipvs: masquerade bit %d out of range 0..31", s.MasqueradeBit)
	}
	switch s.Section {
	case SectionScript, SectionIPVSAdm, SectionIPSet, SectionAddresses, SectionIPTables:
	default:
		return fmt.Errorf("ipvs: unknown section %q (ipvsadm, ipset, addresses or iptables)", s.Section)
	}
	switch s.IPTablesView {
	case "", IPTablesSave, IPTablesRestore:
	default:
		return fmt.Errorf("ipvs: unknown iptables view %q (save or restore)", s.IPTablesView)
	}
	for _, r := range s.Scheduler {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("ipvs: invalid scheduler name %q", s.Scheduler)
		}
	}
	return nil
}
