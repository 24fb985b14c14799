package userspace

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// defaultClientIPTimeout is v1.DefaultClientIPServiceAffinitySeconds, the TTL
// LoadBalancerRR gives a service it first hears of from its Endpoints.
const defaultClientIPTimeout = 10800

// tableText is SectionTable: the state kube-proxy keeps in its own process
// for each service port, which no rule shows, and what the mode ignores.
func (st *state) tableText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# svc2rules: kube-proxy %s userspace mode, %s: the proxy's own state (no rule shows it)\n", KubeProxyVersion, familyName(st.family))
	b.WriteString("# Per service port: the proxy socket, the addresses redirected to it, the sockets kube-proxy holds\n")
	b.WriteString("# open, the backends it dials and the session affinity. Backends are the ready addresses of the\n")
	b.WriteString("# v1 Endpoints port of the same name; kube-proxy shuffles that list whenever the Endpoints change\n")
	b.WriteString("# and then goes round robin from its start, so the cycle below is the set, not kube-proxy's order.\n")
	if st.pr.placeholder {
		fmt.Fprintf(&b, "# Proxy ports: placeholders from %s (kube-proxy: kernel ephemeral ports, new at every restart).\n", st.pr.text)
	} else {
		fmt.Fprintf(&b, "# Proxy ports: assigned from --proxy-port-range %s in this order (kube-proxy: at random from it).\n", st.pr.text)
	}
	b.WriteString("\n")
	listenHost := st.bindIP
	for _, ps := range st.ports {
		fmt.Fprintf(&b, "%s\n", ps.SPN)
		row := func(k, v string) { fmt.Fprintf(&b, "  %-12s %s\n", k+":", v) }
		row("protocol", string(ps.Protocol))
		if ps.proxyPort == 0 {
			row("proxy port", "none: "+strings.Join(ps.problems, "; "))
			b.WriteString("\n")
			continue
		}
		row("proxy port", fmt.Sprintf("%d (kube-proxy listens on %s)", ps.proxyPort, net.JoinHostPort(listenHost, strconv.Itoa(ps.proxyPort))))
		var portals []string
		for _, p := range ps.portals {
			portals = append(portals, net.JoinHostPort(p.ip, strconv.Itoa(int(p.port)))+" ("+p.kind+")")
		}
		if len(portals) == 0 {
			portals = []string{"none"}
		}
		row("portals", strings.Join(portals, ", "))
		switch {
		case ps.NodePort == 0:
			row("nodePort", "none")
		case ps.nodePort:
			row("nodePort", fmt.Sprintf("%d on every node address (--nodeport-addresses is not used by this mode)", ps.NodePort))
		default:
			row("nodePort", fmt.Sprintf("%d: not opened (see below)", ps.NodePort))
		}
		if len(ps.claims) > 0 {
			row("held open", strings.Join(ps.claims, ", ")+" (listening sockets that reserve the ports)")
		}
		row("backends", backendsText(ps))
		row("affinity", affinityText(ps))
		if ps.Protocol == v1.ProtocolUDP {
			row("udp", "one backend \"connection\" per client address:port, closed after --udp-timeout (default 250ms) idle; datagrams over 4096 bytes are truncated")
		}
		for _, p := range ps.problems {
			row("warning", p)
		}
		for _, ig := range ignoredText(ps) {
			row("ignored", ig)
		}
		b.WriteString("\n")
	}
	b.WriteString("# For every service port: connections are accepted by kube-proxy and a new connection is dialled to\n")
	b.WriteString("# a backend from the node (backends see the node's address, never the client's); a failed dial is\n")
	b.WriteString("# retried on the next backend after 250ms, 500ms, 1s, 2s; with no backend the connection is accepted\n")
	b.WriteString("# and closed. Not used by this mode: EndpointSlices, terminating (serving) endpoints, topology hints\n")
	b.WriteString("# and trafficDistribution, internal/externalTrafficPolicy, loadBalancerSourceRanges, healthCheckNodePort,\n")
	b.WriteString("# --nodeport-addresses, masquerading, SCTP, the second IP family of dual-stack Services.\n")
	return b.String()
}

func backendsText(ps *portState) string {
	from := ""
	switch ps.EndpointsFrom {
	case "Endpoints":
		from = "from Endpoints " + ps.Namespace + "/" + ps.Name
	case "EndpointSlice":
		from = "from the EndpointSlices of " + ps.Namespace + "/" + ps.Name + " (no Endpoints object in the input: its ready endpoints)"
	}
	if len(ps.Backends) == 0 {
		s := "none: kube-proxy accepts each connection and closes it (no ICMP reject as in iptables mode)"
		if ps.Protocol == v1.ProtocolUDP {
			s = "none: kube-proxy reads each datagram and drops it (no ICMP reject as in iptables mode)"
		}
		if from != "" {
			s += "; " + from
		} else {
			s += "; no Endpoints for this Service in the input"
		}
		if ps.NotReadyBackends > 0 {
			s += fmt.Sprintf("; %d not-ready address(es) ignored", ps.NotReadyBackends)
		}
		return s
	}
	list := append([]string(nil), ps.Backends...)
	sort.Strings(list)
	s := fmt.Sprintf("%s (round robin over %d", strings.Join(list, " "), len(list))
	if dups := len(list) - countUnique(list); dups > 0 {
		s += fmt.Sprintf(", %d listed twice or more, so picked more often", dups)
	}
	s += "; " + from
	if ps.NotReadyBackends > 0 {
		s += fmt.Sprintf("; %d not-ready address(es) ignored", ps.NotReadyBackends)
	}
	return s + ")"
}

func countUnique(sorted []string) int {
	n := 0
	for i := range sorted {
		if i == 0 || sorted[i] != sorted[i-1] {
			n++
		}
	}
	return n
}

func affinityText(ps *portState) string {
	if !ps.SessionAffinityClientIP {
		return "None (pure round robin)"
	}
	if len(ps.Backends) > 0 && ps.StickyMaxAgeSeconds != defaultClientIPTimeout {
		return fmt.Sprintf("ClientIP, sliding TTL %ds after a kube-proxy restart (Endpoints are seen before the Service, so timeoutSeconds %d is ignored); %ds only for a Service created while kube-proxy runs", defaultClientIPTimeout, ps.StickyMaxAgeSeconds, ps.StickyMaxAgeSeconds)
	}
	return fmt.Sprintf("ClientIP, sliding TTL %ds (refreshed on every connection; the client's port is ignored)", ps.StickyMaxAgeSeconds)
}

// ignoredText lists the fields of this service port that the mode ignores.
func ignoredText(ps *portState) []string {
	var out []string
	if ps.ExternalTrafficPolicyLocal {
		out = append(out, "externalTrafficPolicy: Local (every ready backend is used for external traffic; the client IP is lost)")
	}
	if ps.HealthCheckNodePort != 0 {
		out = append(out, fmt.Sprintf("healthCheckNodePort %d (not served: load balancers see no health check)", ps.HealthCheckNodePort))
	}
	if ps.InternalTrafficPolicyLocal {
		out = append(out, "internalTrafficPolicy: Local (backends on every node are used)")
	}
	if ps.TopologyHints || ps.TrafficDistribution != "" {
		s := "topology"
		if ps.TrafficDistribution != "" {
			s += " (trafficDistribution: " + ps.TrafficDistribution + ")"
		}
		out = append(out, s+": hints live in EndpointSlices, which this mode does not read")
	}
	if len(ps.LoadBalancerSourceRanges) > 0 {
		out = append(out, "loadBalancerSourceRanges "+strings.Join(ps.LoadBalancerSourceRanges, ",")+" (no firewall: every source reaches the load-balancer IPs)")
	}
	if ps.TerminatingBackends > 0 {
		out = append(out, fmt.Sprintf("%d terminating (serving) endpoint(s) (never used, not even as a fallback)", ps.TerminatingBackends))
	}
	if ps.HostnameOnlyIngress > 0 {
		out = append(out, fmt.Sprintf("%d load-balancer ingress hostname(s) without an IP", ps.HostnameOnlyIngress))
	}
	if len(ps.OtherFamilyClusterIPs) > 0 {
		out = append(out, "clusterIPs "+strings.Join(ps.OtherFamilyClusterIPs, ",")+" (only spec.clusterIP is proxied)")
	}
	return out
}
