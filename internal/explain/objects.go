package explain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/svc2rules/svc2rules/compiler"
)

// objects lists the backend objects of a service port that the compiled
// output contains, each with the rules or entries that make it.
func (x *context) objects(sp *compiler.ServicePort) []Object {
	switch x.o.Backend {
	case "iptables":
		return x.iptObjects(sp)
	case "nft":
		return x.nftObjects(sp)
	case "ipvs":
		return x.ipvsObjects(sp)
	case "userspace":
		return x.userspaceObjects(sp)
	}
	return nil
}

// iptLine is one rule of an iptables-save text.
type iptLine struct{ table, chain, text string }

func iptLines(text string) []iptLine {
	var out []iptLine
	table := ""
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = strings.TrimPrefix(l, "*")
		case strings.HasPrefix(l, "-A "):
			f := strings.Fields(l)
			if len(f) > 1 {
				out = append(out, iptLine{table, f[1], l})
			}
		}
	}
	return out
}

// mentions reports whether a rule's comment names the service port.
func mentions(line, spn string) bool {
	re := regexp.MustCompile(`--comment "?` + regexp.QuoteMeta(spn) + `([ "]|$)`)
	return re.MatchString(line)
}

func (x *context) iptObjects(sp *compiler.ServicePort) []Object {
	proto := strings.ToLower(string(sp.Protocol))
	h := iptHash(sp.SPN, proto)
	lines := iptLines(x.output)
	declared := func(name string) bool { return strings.Contains(x.output, "\n:"+name+" ") }
	type cand struct{ name, role string }
	cands := []cand{
		{"KUBE-SVC-" + h, "cluster policy chain: spreads connections over the cluster endpoints"},
		{"KUBE-SVL-" + h, "local policy chain: spreads connections over the endpoints on this node"},
		{"KUBE-EXT-" + h, "external traffic (NodePort, external and load balancer IPs): masquerading and the external policy"},
		{"KUBE-FW-" + h, "load balancer firewall: sources inside loadBalancerSourceRanges go on to KUBE-EXT-" + h},
	}
	for _, ep := range sp.ReachableEndpoints {
		cands = append(cands, cand{iptEndpointChain(sp.SPN, proto, ep.String()), "endpoint " + ep.String() + ": DNAT (and masquerade when the pod reaches itself)"})
	}
	own := map[string]bool{}
	var out []Object
	for _, c := range cands {
		if !declared(c.name) {
			continue
		}
		own[c.name] = true
		o := Object{Kind: "chain", Table: "nat", Name: c.name, Role: c.role}
		for _, l := range lines {
			if l.table == "nat" && l.chain == c.name {
				o.Rules = append(o.Rules, l.text)
			}
		}
		out = append(out, o)
	}
	// Rules of the shared chains that lead to this port or decide for it.
	roles := map[string]string{
		"nat KUBE-SERVICES":             "entry: cluster, external and load balancer IPs",
		"nat KUBE-NODEPORTS":            "entry: the NodePort",
		"filter KUBE-SERVICES":          "REJECT / DROP of the cluster IP when no endpoint can serve it",
		"filter KUBE-EXTERNAL-SERVICES": "REJECT / DROP of external traffic when no endpoint can serve it",
		"filter KUBE-NODEPORTS":         "health check node port",
		"filter KUBE-PROXY-FIREWALL":    "drops load balancer traffic from sources outside loadBalancerSourceRanges",
	}
	shared := map[string]*Object{}
	var order []string
	for _, l := range lines {
		if own[l.chain] {
			continue
		}
		f := strings.Fields(l.text)
		target := ""
		for i, t := range f {
			if (t == "-j" || t == "-g") && i+1 < len(f) {
				target = f[i+1]
			}
		}
		if !own[target] && !mentions(l.text, sp.SPN) {
			continue
		}
		k := l.table + " " + l.chain
		o := shared[k]
		if o == nil {
			role := roles[k]
			if role == "" {
				role = "rules of this service port"
			}
			o = &Object{Kind: "rules", Table: l.table, Name: l.chain, Role: role}
			shared[k] = o
			order = append(order, k)
		}
		o.Rules = append(o.Rules, l.text)
	}
	for _, k := range order {
		out = append(out, *shared[k])
	}
	return out
}

func (x *context) nftFamily() string {
	if x.plan.Family == v1.IPv6Protocol {
		return "ip6"
	}
	return "ip"
}

func (x *context) nftObjects(sp *compiler.ServicePort) []Object {
	proto := strings.ToLower(string(sp.Protocol))
	fam := x.nftFamily()
	base := nftBase(sp.Namespace, sp.Name, proto, sp.PortName)
	prefix := "add chain " + fam + " kube-proxy "
	lines := strings.Split(x.output, "\n")
	type cand struct{ kind, name, role string }
	cands := []cand{
		{"chain", "service-" + base, "cluster policy chain: DNAT to a cluster endpoint"},
		{"chain", "local-" + base, "local policy chain: DNAT to an endpoint on this node"},
		{"chain", "external-" + base, "external traffic (NodePort, external and load balancer IPs): masquerading and the external policy"},
		{"chain", "firewall-" + base, "load balancer firewall: drops sources outside loadBalancerSourceRanges"},
	}
	for _, ep := range sp.ReachableEndpoints {
		eb := nftEndpointBase(sp.Namespace, sp.Name, proto, sp.PortName, ep.String())
		cands = append(cands,
			cand{"chain", "endpoint-" + eb, "endpoint " + ep.String() + " (session affinity): records the client, DNAT"},
			cand{"set", "affinity-" + eb, "clients of endpoint " + ep.String() + " (session affinity, with timeout)"})
	}
	var out []Object
	names := map[string]bool{}
	for _, c := range cands {
		decl := prefix + c.name
		if c.kind == "set" {
			decl = "add set " + fam + " kube-proxy " + c.name
		}
		if !containsLine(x.output, decl) {
			continue
		}
		names[c.name] = true
		o := Object{Kind: c.kind, Table: fam + " kube-proxy", Name: c.name, Role: c.role}
		if c.kind == "chain" {
			for _, l := range lines {
				if strings.HasPrefix(l, "add rule "+fam+" kube-proxy "+c.name+" ") {
					o.Rules = append(o.Rules, l)
				}
			}
		}
		out = append(out, o)
	}
	// Map and set elements of this port.
	port := strconv.Itoa(int(sp.Port))
	keys := map[string]string{
		sp.ClusterIP + " . " + proto + " . " + port: "cluster IP",
		sp.ClusterIP: "cluster IP",
	}
	if x.plan.FeatureGates.AllowServiceExternalIPs {
		for _, ip := range sp.ExternalIPs {
			keys[ip+" . "+proto+" . "+port] = "external IP"
		}
	}
	for _, ip := range sp.LoadBalancerVIPs {
		keys[ip+" . "+proto+" . "+port] = "load balancer IP"
	}
	if sp.NodePort != 0 {
		keys[proto+" . "+strconv.Itoa(int(sp.NodePort))] = "NodePort"
	}
	for _, ep := range sp.ReachableEndpoints {
		if ep.IsLocal {
			keys[ep.IP+" . "+ep.IP+" . "+proto+" . "+strconv.Itoa(int(ep.Port))] = "hairpin of local endpoint " + ep.String()
		}
	}
	mapRoles := map[string]string{
		"cluster-ips":                     "active cluster IPs (reject other ports of them)",
		"service-ips":                     "dispatch of cluster, external and load balancer IPs",
		"service-nodeports":               "dispatch of NodePorts",
		"no-endpoint-services":            "drop / reject when no endpoint can serve",
		"no-endpoint-nodeports":           "drop / reject NodePort traffic when no endpoint can serve",
		"firewall-ips":                    "load balancer IPs subject to loadBalancerSourceRanges",
		"hairpin-connections":             "masquerade a pod reaching itself",
		"localhost-nodeport-reject-ports": "localhost NodePorts rejected",
	}
	elems := map[string]*Object{}
	var order []string
	ep := "add element " + fam + " kube-proxy "
	for _, l := range lines {
		if !strings.HasPrefix(l, ep) {
			continue
		}
		rest := strings.TrimPrefix(l, ep)
		set, body, ok := strings.Cut(rest, " { ")
		if !ok {
			continue
		}
		key := body
		for _, sep := range []string{" comment ", " : ", " }"} {
			if i := strings.Index(key, sep); i >= 0 {
				key = key[:i]
			}
		}
		_, mine := keys[key]
		for n := range names {
			if strings.Contains(body, n) {
				mine = true
			}
		}
		if !mine {
			continue
		}
		o := elems[set]
		if o == nil {
			o = &Object{Kind: "elements", Table: fam + " kube-proxy", Name: set, Role: mapRoles[set]}
			elems[set] = o
			order = append(order, set)
		}
		o.Rules = append(o.Rules, l)
	}
	for _, k := range order {
		out = append(out, *elems[k])
	}
	return out
}

func containsLine(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == prefix || strings.HasPrefix(l, prefix+" ") {
			return true
		}
	}
	return false
}

// heredoc returns the body of the shell function NAME's here-document in
// svc2rules' ipvs script.
func heredoc(script, fn string) string {
	i := strings.Index(script, "\n"+fn+"() {")
	if i < 0 {
		return ""
	}
	rest := script[i:]
	start := strings.Index(rest, "<<'SVC2RULES_EOF'\n")
	if start < 0 {
		return ""
	}
	rest = rest[start+len("<<'SVC2RULES_EOF'\n"):]
	end := strings.Index(rest, "\nSVC2RULES_EOF")
	if end < 0 {
		return ""
	}
	return rest[:end+1]
}

func (x *context) ipvsObjects(sp *compiler.ServicePort) []Object {
	proto := strings.ToLower(string(sp.Protocol))
	flag := map[v1.Protocol]string{v1.ProtocolTCP: "-t", v1.ProtocolUDP: "-u", v1.ProtocolSCTP: "--sctp-service"}[sp.Protocol]
	ipvsadm := heredoc(x.output, "ipvsadm_payload")
	ipsets := heredoc(x.output, "ipset_payload")
	addrs := heredoc(x.output, "addresses_payload")
	iptables := heredoc(x.output, "iptables_payload")
	type vs struct{ addr, role string }
	var servers []vs
	servers = append(servers, vs{hostPort(sp.ClusterIP, sp.Port), "cluster IP"})
	if x.plan.FeatureGates.AllowServiceExternalIPs {
		for _, ip := range sp.ExternalIPs {
			servers = append(servers, vs{hostPort(ip, sp.Port), "external IP"})
		}
	}
	for _, ip := range sp.LoadBalancerVIPs {
		servers = append(servers, vs{hostPort(ip, sp.Port), "load balancer IP"})
	}
	var out []Object
	lines := strings.Split(ipvsadm, "\n")
	seen := map[string]bool{}
	add := func(addr, role string) {
		head := "-A " + flag + " " + addr + " "
		o := Object{Kind: "virtual server", Name: strings.ToUpper(proto) + " " + addr, Role: role}
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, head) {
				found = true
				o.Rules = append(o.Rules, l)
			}
			if strings.HasPrefix(l, "-a "+flag+" "+addr+" ") {
				o.Rules = append(o.Rules, l)
			}
		}
		if found && !seen[addr] {
			seen[addr] = true
			out = append(out, o)
		}
	}
	for _, s := range servers {
		add(s.addr, s.role)
	}
	if sp.NodePort != 0 {
		suffix := ":" + strconv.Itoa(int(sp.NodePort)) + " "
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == "-A" && f[1] == flag && strings.HasSuffix(f[2]+" ", suffix) {
				add(f[2], "NodePort on a node address")
			}
		}
	}
	// ipset entries.
	port := strconv.Itoa(int(sp.Port))
	var prefixes []string
	prefixes = append(prefixes, sp.ClusterIP+","+proto+":"+port)
	for _, ip := range append(append([]string(nil), sp.ExternalIPs...), sp.LoadBalancerVIPs...) {
		prefixes = append(prefixes, ip+","+proto+":"+port)
	}
	for _, ep := range sp.Endpoints {
		if ep.IsLocal {
			prefixes = append(prefixes, ep.IP+","+proto+":"+strconv.Itoa(int(ep.Port))+","+ep.IP)
		}
	}
	exact := map[string]bool{}
	if sp.NodePort != 0 {
		exact[strconv.Itoa(int(sp.NodePort))] = true
	}
	if sp.HealthCheckNodePort != 0 {
		exact[strconv.Itoa(int(sp.HealthCheckNodePort))] = true
	}
	sets := map[string]*Object{}
	var order []string
	for _, l := range strings.Split(ipsets, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "add" {
			continue
		}
		mine := exact[f[2]] && (strings.Contains(f[1], "NODE-PORT") && strings.Contains(f[1], strings.ToUpper(proto)) || strings.Contains(f[1], "HEALTH-CHECK"))
		for _, p := range prefixes {
			if f[2] == p || strings.HasPrefix(f[2], p+",") {
				mine = true
			}
		}
		if sp.NodePort != 0 && sp.Protocol == v1.ProtocolSCTP && strings.HasSuffix(f[2], ",sctp:"+strconv.Itoa(int(sp.NodePort))) {
			mine = true
		}
		if !mine {
			continue
		}
		o := sets[f[1]]
		if o == nil {
			o = &Object{Kind: "ipset entries", Name: f[1], Role: ipsetRole(f[1])}
			sets[f[1]] = o
			order = append(order, f[1])
		}
		o.Rules = append(o.Rules, l)
	}
	for _, k := range order {
		out = append(out, *sets[k])
	}
	// kube-ipvs0 addresses.
	var bound []string
	for _, ip := range append(append([]string{sp.ClusterIP}, sp.ExternalIPs...), sp.LoadBalancerVIPs...) {
		for _, l := range strings.Split(addrs, "\n") {
			if strings.HasPrefix(l, ip+"/") {
				bound = append(bound, l)
			}
		}
	}
	if len(bound) > 0 {
		out = append(out, Object{Kind: "addresses", Name: "kube-ipvs0", Role: "addresses bound to the dummy device, so the node accepts them", Rules: dedup(bound)})
	}
	var filt []string
	for _, ip := range sp.LoadBalancerVIPs {
		for _, l := range strings.Split(iptables, "\n") {
			if strings.HasPrefix(l, "-A KUBE-IPVS-OUT-FILTER -s "+ip+" ") && strings.Contains(l, "--vport "+port+" ") {
				filt = append(filt, l)
			}
		}
	}
	if len(filt) > 0 {
		out = append(out, Object{Kind: "rules", Table: "filter", Name: "KUBE-IPVS-OUT-FILTER", Role: "the node may not reach its own firewalled load balancer IP", Rules: filt})
	}
	return out
}

func dedup(l []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func ipsetRole(name string) string {
	n := strings.Replace(name, "KUBE-6-", "KUBE-", 1)
	switch {
	case strings.HasPrefix(n, "KUBE-CLUSTER-IP"):
		return "cluster IP + port (masquerade, accept)"
	case strings.HasPrefix(n, "KUBE-EXTERNAL-IP-LOCAL"):
		return "external IP + port, externalTrafficPolicy Local"
	case strings.HasPrefix(n, "KUBE-EXTERNAL-IP"):
		return "external IP + port (masquerade, accept)"
	case strings.HasPrefix(n, "KUBE-LOAD-BALANCER-SOURCE-CID"):
		return "load balancer IP + port + allowed source range"
	case strings.HasPrefix(n, "KUBE-LOAD-BALANCER-SOURCE-IP"):
		return "load balancer IP + port + allowed source address"
	case strings.HasPrefix(n, "KUBE-LOAD-BALANCER-LOCAL"):
		return "load balancer IP + port, externalTrafficPolicy Local (no masquerade)"
	case strings.HasPrefix(n, "KUBE-LOAD-BALANCER-FW"):
		return "load balancer IP + port with loadBalancerSourceRanges"
	case strings.HasPrefix(n, "KUBE-LOAD-BALANCER"):
		return "load balancer IP + port"
	case strings.HasPrefix(n, "KUBE-LOOP-BACK"):
		return "local endpoint reaching itself (hairpin masquerade)"
	case strings.HasPrefix(n, "KUBE-NODE-PORT-LOCAL"):
		return "NodePort, externalTrafficPolicy Local (no masquerade)"
	case strings.HasPrefix(n, "KUBE-NODE-PORT"):
		return "NodePort (masquerade)"
	case strings.HasPrefix(n, "KUBE-HEALTH-CHECK-NODE-PORT"):
		return "health check node port (accepted)"
	}
	return ""
}

func (x *context) userspaceObjects(sp *compiler.ServicePort) []Object {
	var out []Object
	chains := map[string]*Object{}
	var order []string
	for _, l := range iptLines(x.output) {
		if !mentions(l.text, sp.SPN) {
			continue
		}
		k := l.table + " " + l.chain
		o := chains[k]
		if o == nil {
			o = &Object{Kind: "rules", Table: l.table, Name: l.chain, Role: userspaceRole(l.chain)}
			chains[k] = o
			order = append(order, k)
		}
		o.Rules = append(o.Rules, l.text)
	}
	for _, k := range order {
		out = append(out, *chains[k])
	}
	return out
}

func userspaceRole(chain string) string {
	switch chain {
	case "KUBE-PORTALS-CONTAINER":
		return "portals for traffic from pods and other hosts: REDIRECT to the proxy port"
	case "KUBE-PORTALS-HOST":
		return "portals for the node's own traffic: DNAT to the node IP and proxy port"
	case "KUBE-NODEPORT-CONTAINER":
		return "NodePort from pods and other hosts: REDIRECT to the proxy port"
	case "KUBE-NODEPORT-HOST":
		return "NodePort from the node: DNAT to the proxy port"
	case "KUBE-NODEPORT-NON-LOCAL":
		return "accepts new connections to the proxy port"
	}
	return "rules of this service port"
}

// userspaceBlock returns the service port's block of the userspace table.
func userspaceBlock(table, spn string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(table, "\n") {
		switch {
		case l == spn:
			in = true
			continue
		case in && strings.HasPrefix(l, "  "):
			out = append(out, strings.TrimSpace(l))
		case in:
			return out
		}
	}
	return out
}

var _ = fmt.Sprintf

// usPort is a service port's block of the userspace table.
type usPort struct {
	rows         map[string]string
	proxyNone    bool
	portals      map[string]bool // "IP:port" redirected to the proxy
	nodePortOpen bool
	backends     []string           // in the table's order, duplicates kept
	weight       map[string]float64 // share of each backend
}

func (x *context) us(sp *compiler.ServicePort) *usPort {
	if u := x.usc[sp.SPN]; u != nil {
		return u
	}
	u := &usPort{rows: map[string]string{}, portals: map[string]bool{}, weight: map[string]float64{}}
	for _, row := range userspaceBlock(x.table, sp.SPN) {
		k, v, ok := strings.Cut(row, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if old, dup := u.rows[k]; dup {
			v = old + "; " + v
		}
		u.rows[k] = v
	}
	u.proxyNone = strings.HasPrefix(u.rows["proxy port"], "none")
	for _, p := range strings.Split(u.rows["portals"], ", ") {
		if f := strings.Fields(p); len(f) > 0 && f[0] != "none" {
			u.portals[f[0]] = true
		}
	}
	u.nodePortOpen = !u.proxyNone && strings.Contains(u.rows["nodePort"], " on ")
	if b := u.rows["backends"]; b != "" && !strings.HasPrefix(b, "none") {
		if i := strings.Index(b, " ("); i >= 0 {
			b = b[:i]
		}
		u.backends = strings.Fields(b)
		for _, e := range u.backends {
			u.weight[e] += 1 / float64(len(u.backends))
		}
	}
	x.usc[sp.SPN] = u
	return u
}
