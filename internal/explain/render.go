package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Formats are the output formats of explain.
var Formats = []string{"text", "json"}

// Write prints a report. With rules, the text form lists every rule of
// every object (JSON always carries them).
func Write(w io.Writer, format string, r *Report, rules bool) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "text", "":
		_, err := io.WriteString(w, Text(r, rules))
		return err
	}
	return fmt.Errorf("unknown format %q (text or json)", format)
}

func percent(p float64) string {
	s := strings.TrimSuffix(fmt.Sprintf("%.1f", 100*p), ".0")
	return s + "%"
}

// Text is the human-readable report.
func Text(r *Report, rules bool) string {
	var b strings.Builder
	node := r.Node.Name
	if node == "" {
		node = "(no --node-name: no endpoint is local)"
	}
	var ips []string
	for _, f := range []string{"ipv4", "ipv6"} {
		if ip := r.Node.IPs[f]; ip != "" {
			ips = append(ips, ip)
		}
	}
	fmt.Fprintf(&b, "node %s", node)
	if len(ips) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(ips, ", "))
	}
	if r.Node.Zone != "" {
		fmt.Fprintf(&b, ", zone %s", r.Node.Zone)
	}
	fmt.Fprintf(&b, ", backend %s\n", r.Backend)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, p := range r.Ports {
		b.WriteString("\n")
		writePort(&b, p, r.Backend, rules)
	}
	return b.String()
}

func row(b *strings.Builder, k, v string) {
	fmt.Fprintf(b, "  %-16s %s\n", k+":", v)
}

func writePort(b *strings.Builder, p Port, backend string, rules bool) {
	fmt.Fprintf(b, "%s %s (%s)", p.SPN, p.Protocol, p.Family)
	if p.Source != "" {
		fmt.Fprintf(b, "  [%s]", p.Source)
	}
	b.WriteString("\n")
	row(b, "cluster IP", hostPort(p.ClusterIP, p.Port))
	if p.NodePort != nil {
		row(b, "NodePort", fmt.Sprintf("%d on %s", p.NodePort.Port, p.NodePort.Where))
	}
	if len(p.ExternalIPs) > 0 {
		v := strings.Join(p.ExternalIPs, ", ")
		if p.ExternalIPsIgnored != "" {
			v += " (ignored: " + p.ExternalIPsIgnored + ")"
		}
		row(b, "external IPs", v)
	}
	if len(p.LoadBalancerIPs) > 0 {
		row(b, "load balancer", strings.Join(p.LoadBalancerIPs, ", "))
	}
	if len(p.SourceRanges) > 0 {
		row(b, "source ranges", strings.Join(p.SourceRanges, ", "))
	}
	if p.HealthCheckNodePort != 0 {
		row(b, "health check", fmt.Sprintf("node port %d (kube-proxy answers it with the number of local endpoints)", p.HealthCheckNodePort))
	}
	pol := "internalTrafficPolicy " + p.InternalTrafficPolicy
	if p.ExternalTrafficPolicy != "" {
		pol += ", externalTrafficPolicy " + p.ExternalTrafficPolicy
	}
	pol += ", sessionAffinity " + p.SessionAffinity
	row(b, "policies", pol)
	row(b, "topology", p.Topology)

	writeTraffic(b, "internal traffic", p.Internal)
	if p.External != nil {
		writeTraffic(b, "external traffic", *p.External)
	}

	if len(p.Endpoints) > 0 {
		b.WriteString("  endpoints:\n")
		for _, e := range p.Endpoints {
			where := e.Node
			if where == "" {
				where = "no node"
			}
			if e.Local {
				where += ", local"
			}
			fmt.Fprintf(b, "    %s  (%s; %s", e.Endpoint, where, e.Conditions)
			if len(e.ZoneHints) > 0 {
				fmt.Fprintf(b, "; zone hints %s", strings.Join(e.ZoneHints, ","))
			}
			if len(e.NodeHints) > 0 {
				fmt.Fprintf(b, "; node hints %s", strings.Join(e.NodeHints, ","))
			}
			b.WriteString(")\n")
			fmt.Fprintf(b, "      internal: %s\n", useText(e.Internal))
			if e.External != nil {
				fmt.Fprintf(b, "      external: %s\n", useText(*e.External))
			}
		}
	} else {
		b.WriteString("  endpoints:       none in the input\n")
	}
	if len(p.Proxy) > 0 {
		b.WriteString("  userspace proxy:\n")
		for _, l := range p.Proxy {
			fmt.Fprintf(b, "    %s\n", l)
		}
	}
	if len(p.Objects) > 0 {
		fmt.Fprintf(b, "  %s objects:\n", backend)
		for _, o := range p.Objects {
			name := o.Name
			if o.Table != "" {
				name = o.Table + " " + name
			}
			n := ""
			if !rules && len(o.Rules) > 0 {
				unit := "rule"
				switch o.Kind {
				case "elements", "ipset entries":
					unit = "element"
				case "virtual server":
					unit = "line"
				case "addresses":
					unit = "address"
				}
				if len(o.Rules) != 1 {
					unit = map[string]string{"rule": "rules", "element": "elements", "line": "lines", "address": "addresses"}[unit]
				}
				n = fmt.Sprintf(" (%d %s)", len(o.Rules), unit)
			}
			fmt.Fprintf(b, "    %-9s %s%s\n", o.Kind, name, n)
			fmt.Fprintf(b, "              %s\n", o.Role)
			if rules {
				for _, l := range o.Rules {
					fmt.Fprintf(b, "              | %s\n", l)
				}
			}
		}
	}
}

func useText(u Use) string {
	if u.Used {
		return fmt.Sprintf("used, %s (%s)", percent(u.Weight), u.Why)
	}
	return "not used: " + u.Why
}

func writeTraffic(b *strings.Builder, title string, t Traffic) {
	fmt.Fprintf(b, "  %s (%s): %s\n", title, strings.Join(t.Via, ", "), t.Verdict)
	fmt.Fprintf(b, "    why:        %s\n", t.Why)
	for _, s := range t.Shares {
		fmt.Fprintf(b, "    %7s     %s  %s\n", percent(s.Weight), s.Endpoint, s.How)
	}
	if t.Firewall != "" {
		fmt.Fprintf(b, "    firewall:   %s\n", t.Firewall)
	}
	fmt.Fprintf(b, "    masquerade: %s\n", t.Masquerade)
}
