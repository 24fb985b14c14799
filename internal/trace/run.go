package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/svc2rules/svc2rules/internal/cli"
)

// RunOptions are the inputs of "svc2rules trace": a packet, and either
// manifests to compile (Compile.Files) or rule files (Rules).
type RunOptions struct {
	Query   Query
	Compile cli.CompileOptions
	// Rules are files holding a node's rules ("-" is stdin): iptables-save,
	// nft list ruleset, ipset save, ipvsadm -S -n, or svc2rules' output.
	Rules []string
	Stdin io.Reader
}

// Run compiles (or reads) the rules and traces the packet.
func Run(o RunOptions) (*Result, error) {
	rs := NewRuleset()
	var env Env
	switch {
	case len(o.Rules) > 0 && len(o.Compile.Files) > 0:
		return nil, &cli.UsageError{Err: errors.New("give -f (manifests to compile) or --rules (rule files), not both")}
	case len(o.Rules) > 0:
		stdinUsed := false
		for _, f := range o.Rules {
			var data []byte
			var err error
			if f == "-" {
				if stdinUsed {
					return nil, &cli.UsageError{Err: errors.New("--rules - given twice")}
				}
				stdinUsed = true
				if o.Stdin == nil {
					return nil, errors.New("--rules -: no stdin")
				}
				data, err = io.ReadAll(io.LimitReader(o.Stdin, 1<<30))
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, err
			}
			if err := rs.Parse(f, string(data)); err != nil {
				return nil, err
			}
		}
		for _, s := range append(append([]string(nil), o.Compile.NodeIPs...), o.Compile.NodeAddresses...) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, &cli.UsageError{Err: fmt.Errorf("bad node address %q", s)}
			}
			a = a.Unmap()
			env.Local = append(env.Local, netip.PrefixFrom(a, a.BitLen()))
			if !env.PrimaryIP.IsValid() && a.Is4() == o.Query.Dst.Is4() {
				env.PrimaryIP = a
			}
		}
	case len(o.Compile.Files) > 0:
		var err error
		env, err = compileInto(rs, o)
		if err != nil {
			return nil, err
		}
	default:
		return nil, &cli.UsageError{Err: errors.New("no rules: give -f PATH (manifests to compile) or --rules FILE (a node's rules)")}
	}
	q := o.Query
	if q.From == "" && !inPrefixes(q.Src, env.Local) {
		// A source inside --cluster-cidr is a pod's.
		for _, c := range o.Compile.ClusterCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Contains(q.Src) {
				q.From = FromPod
				res, err := Trace(rs, q, env)
				if res != nil {
					res.Assumptions = append([]string{fmt.Sprintf("--from pod: the source %s is inside --cluster-cidr %s", q.Src, c)}, res.Assumptions...)
				}
				return res, err
			}
		}
	}
	return Trace(rs, q, env)
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// compileInto compiles the manifests for the packet's family with the
// chosen backend and reads svc2rules' own output back.
func compileInto(rs *Ruleset, o RunOptions) (Env, error) {
	c := o.Compile
	c.Output = ""
	if o.Query.Dst.Is6() {
		c.IPFamily = "ipv6"
	} else {
		c.IPFamily = "ipv4"
	}
	c.IPTablesView = "save" // the node's tables with kube-proxy's jumps from the built-in chains
	c.IPVSSection = ""      // the whole script: ipsets, IPVS, addresses and iptables
	c.UserspaceSection = "rules"
	label := fmt.Sprintf("svc2rules compile -b %s -f %s", c.Backend, strings.Join(c.Files, " -f "))
	newStdin := func() io.Reader { return o.Stdin }
	for _, f := range c.Files {
		if f == "-" && o.Stdin != nil {
			// Read once: the userspace backend compiles twice.
			data, err := io.ReadAll(o.Stdin)
			if err != nil {
				return Env{}, err
			}
			newStdin = func() io.Reader { return bytes.NewReader(data) }
			break
		}
	}
	res, err := cli.Compile(c, newStdin())
	if err != nil {
		return Env{}, err
	}
	if err := rs.Parse(label, res.Output); err != nil {
		return Env{}, fmt.Errorf("reading svc2rules' own %s output: %v", c.Backend, err)
	}
	if c.Backend == "userspace" {
		c.UserspaceSection = "table"
		tbl, err := cli.Compile(c, newStdin())
		if err != nil {
			return Env{}, err
		}
		if err := rs.Parse(label+" --userspace-section table", tbl.Output); err != nil {
			return Env{}, fmt.Errorf("reading svc2rules' userspace table: %v", err)
		}
	}
	var env Env
	if res.Plan != nil {
		for _, s := range res.Plan.Node.Addresses {
			if a, err := netip.ParseAddr(s); err == nil {
				env.Local = append(env.Local, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		if a, err := netip.ParseAddr(res.Plan.Node.IP); err == nil {
			env.PrimaryIP = a
		}
	}
	if c.NodeName != "" {
		rs.sources[len(rs.sources)-1] += " (node " + c.NodeName + ")"
	}
	return env, nil
}
