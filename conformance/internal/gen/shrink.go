package gen

import (
	"fmt"

	"github.com/svc2rules/svc2rules/conformance/oracle"
)

// Candidate is one simplification of a case.
type Candidate struct {
	Desc  string
	Apply func(c *Case) // mutates a clone
}

// chunks returns removal candidates for a list of length n: halves, quarters,
// ..., single elements (delta-debugging style), largest first.
func chunks(n int, what string, remove func(c *Case, from, to int)) []Candidate {
	var out []Candidate
	seen := map[[2]int]bool{}
	for size := n; size >= 1; size /= 2 {
		for from := 0; from < n; from += size {
			to := min(from+size, n)
			k := [2]int{from, to}
			if seen[k] {
				continue
			}
			seen[k] = true
			from, to := from, to
			out = append(out, Candidate{Desc: fmt.Sprintf("remove %s [%d:%d]", what, from, to), Apply: func(c *Case) { remove(c, from, to) }})
		}
		if size == 1 {
			break
		}
	}
	return out
}

func cut[T any](s []T, from, to int) []T {
	return append(append([]T{}, s[:from]...), s[to:]...)
}

// Candidates lists the simplifications of c, roughly largest first. Every
// candidate keeps the case API-valid.
func Candidates(c *Case) []Candidate {
	var out []Candidate
	// Whole objects.
	out = append(out, chunks(len(c.Services), "services", func(c *Case, a, b int) { c.Services = cut(c.Services, a, b) })...)
	out = append(out, chunks(len(c.Slices), "EndpointSlices", func(c *Case, a, b int) { c.Slices = cut(c.Slices, a, b) })...)
	out = append(out, chunks(len(c.Endpoints), "Endpoints", func(c *Case, a, b int) { c.Endpoints = cut(c.Endpoints, a, b) })...)
	out = append(out, chunks(len(c.Nodes), "Nodes", func(c *Case, a, b int) { c.Nodes = cut(c.Nodes, a, b) })...)
	out = append(out, chunks(len(c.ServiceCIDRs), "ServiceCIDRs", func(c *Case, a, b int) { c.ServiceCIDRs = cut(c.ServiceCIDRs, a, b) })...)

	// Endpoints inside slices (big lists first).
	for i, s := range c.Slices {
		i := i
		out = append(out, chunks(len(s.Endpoints), fmt.Sprintf("endpoints of slice %s", s.Name), func(c *Case, a, b int) {
			c.Slices[i].Endpoints = cut(c.Slices[i].Endpoints, a, b)
		})...)
	}

	// Settings back to their defaults.
	out = append(out, settingsCandidates(c.Settings)...)

	// Services.
	for i, s := range c.Services {
		i := i
		sv := func(c *Case) *Service { return c.Services[i] }
		name := s.Namespace + "/" + s.Name
		if len(s.Ports) > 1 {
			for j := range s.Ports {
				j := j
				out = append(out, Candidate{fmt.Sprintf("%s: remove port %d", name, j), func(c *Case) { sv(c).Ports = cut(sv(c).Ports, j, j+1) }})
			}
		}
		if s.Type == "LoadBalancer" {
			out = append(out, Candidate{name + ": LoadBalancer -> NodePort", func(c *Case) {
				x := sv(c)
				x.Type, x.Ingress, x.SourceRanges, x.HealthCheckPort, x.AllocateLBNodePorts = "NodePort", nil, nil, 0, nil
				for _, p := range x.Ports {
					if p.NodePort == 0 {
						p.NodePort = freeNodePort(c)
					}
				}
			}})
		}
		if s.Type == "NodePort" || s.Type == "LoadBalancer" {
			out = append(out, Candidate{name + ": -> ClusterIP", func(c *Case) {
				x := sv(c)
				x.Type, x.Ingress, x.SourceRanges, x.HealthCheckPort, x.AllocateLBNodePorts = "", nil, nil, 0, nil
				if len(x.ExternalIPs) == 0 {
					x.ETP = ""
				}
				for _, p := range x.Ports {
					p.NodePort = 0
				}
			}})
		}
		for j := range s.Ingress {
			j := j
			out = append(out, Candidate{fmt.Sprintf("%s: remove LB ingress %d", name, j), func(c *Case) { sv(c).Ingress = cut(sv(c).Ingress, j, j+1) }})
		}
		for j := range s.SourceRanges {
			j := j
			out = append(out, Candidate{fmt.Sprintf("%s: remove source range %d", name, j), func(c *Case) { sv(c).SourceRanges = cut(sv(c).SourceRanges, j, j+1) }})
		}
		for j := range s.ExternalIPs {
			j := j
			out = append(out, Candidate{fmt.Sprintf("%s: remove external IP %d", name, j), func(c *Case) {
				x := sv(c)
				x.ExternalIPs = cut(x.ExternalIPs, j, j+1)
				if len(x.ExternalIPs) == 0 && x.Type != "NodePort" && x.Type != "LoadBalancer" {
					x.ETP = ""
				}
			}})
		}
		for j, in := range s.Ingress {
			j := j
			if in.IPMode != "" {
				out = append(out, Candidate{fmt.Sprintf("%s: ingress %d without ipMode", name, j), func(c *Case) { sv(c).Ingress[j].IPMode = "" }})
			}
		}
		if s.ETP != "" {
			out = append(out, Candidate{name + ": no externalTrafficPolicy", func(c *Case) { sv(c).ETP, sv(c).HealthCheckPort = "", 0 }})
		}
		if s.HealthCheckPort != 0 && !(s.Type == "LoadBalancer" && s.ETP == "Local") {
			out = append(out, Candidate{name + ": no healthCheckNodePort", func(c *Case) { sv(c).HealthCheckPort = 0 }})
		}
		if s.ITP != "" {
			out = append(out, Candidate{name + ": no internalTrafficPolicy", func(c *Case) { sv(c).ITP = "" }})
		}
		if s.Affinity {
			out = append(out, Candidate{name + ": no session affinity", func(c *Case) { sv(c).Affinity, sv(c).AffinityTimeout = false, 0 }})
		}
		if s.TrafficDist != "" {
			out = append(out, Candidate{name + ": no trafficDistribution", func(c *Case) { sv(c).TrafficDist = "" }})
		}
		if len(s.ClusterIPs) == 2 {
			for j := 0; j < 2; j++ {
				j := j
				out = append(out, Candidate{fmt.Sprintf("%s: single-stack (keep family %d)", name, j), func(c *Case) {
					x := sv(c)
					x.ClusterIPs = []string{x.ClusterIPs[j]}
					if len(x.IPFamilies) == 2 {
						x.IPFamilies = []string{x.IPFamilies[j]}
					}
					x.IPFamilyPolicy = ""
				}})
			}
		}
		if len(s.Labels) > 0 {
			out = append(out, Candidate{name + ": no labels", func(c *Case) { sv(c).Labels = nil }})
		}
		if s.Selector {
			out = append(out, Candidate{name + ": no selector", func(c *Case) { sv(c).Selector = false }})
		}
		if len(s.IPFamilies) > 0 && len(s.ClusterIPs) == 1 {
			out = append(out, Candidate{name + ": ipFamilies implied", func(c *Case) { sv(c).IPFamilies, sv(c).IPFamilyPolicy = nil, "" }})
		}
		for j, p := range s.Ports {
			j := j
			if p.TargetPort != 0 {
				out = append(out, Candidate{fmt.Sprintf("%s: port %d without targetPort", name, j), func(c *Case) { sv(c).Ports[j].TargetPort = 0 }})
			}
		}
	}

	// Slices.
	for i, s := range c.Slices {
		i := i
		sl := func(c *Case) *Slice { return c.Slices[i] }
		for j := range s.Ports {
			j := j
			out = append(out, Candidate{fmt.Sprintf("slice %s: remove port %d", s.Name, j), func(c *Case) { sl(c).Ports = cut(sl(c).Ports, j, j+1) }})
		}
		if len(s.Labels) > 0 {
			out = append(out, Candidate{"slice " + s.Name + ": no labels", func(c *Case) { sl(c).Labels = nil }})
		}
		for j, e := range s.Endpoints {
			j := j
			ep := func(c *Case) *Endpoint { return c.Slices[i].Endpoints[j] }
			where := fmt.Sprintf("slice %s endpoint %d", s.Name, j)
			if e.Ready != nil || e.Serving != nil || e.Terminating != nil {
				out = append(out, Candidate{where + ": no conditions", func(c *Case) { x := ep(c); x.Ready, x.Serving, x.Terminating = nil, nil, nil }})
			}
			if e.Serving != nil || e.Terminating != nil {
				out = append(out, Candidate{where + ": ready only", func(c *Case) { x := ep(c); x.Serving, x.Terminating = nil, nil }})
			}
			if len(e.HintZones) > 0 || len(e.HintNodes) > 0 {
				out = append(out, Candidate{where + ": no hints", func(c *Case) { x := ep(c); x.HintZones, x.HintNodes = nil, nil }})
			}
			if len(e.HintNodes) > 0 {
				out = append(out, Candidate{where + ": no node hints", func(c *Case) { ep(c).HintNodes = nil }})
			}
			if e.Zone != "" {
				out = append(out, Candidate{where + ": no zone", func(c *Case) { ep(c).Zone = "" }})
			}
			if e.NodeName != "" {
				out = append(out, Candidate{where + ": no nodeName", func(c *Case) { ep(c).NodeName = "" }})
			}
			if e.Hostname != "" {
				out = append(out, Candidate{where + ": no hostname", func(c *Case) { ep(c).Hostname = "" }})
			}
		}
	}

	// Endpoints objects.
	for i, e := range c.Endpoints {
		i := i
		out = append(out, chunks(len(e.Subsets), "subsets of Endpoints "+e.Name, func(c *Case, a, b int) {
			c.Endpoints[i].Subsets = cut(c.Endpoints[i].Subsets, a, b)
		})...)
		for j, s := range e.Subsets {
			j := j
			sub := func(c *Case) *Subset { return c.Endpoints[i].Subsets[j] }
			out = append(out, chunks(len(s.Addresses), fmt.Sprintf("addresses of Endpoints %s subset %d", e.Name, j), func(c *Case, a, b int) {
				sub(c).Addresses = cut(sub(c).Addresses, a, b)
			})...)
			out = append(out, chunks(len(s.NotReady), fmt.Sprintf("notReadyAddresses of Endpoints %s subset %d", e.Name, j), func(c *Case, a, b int) {
				sub(c).NotReady = cut(sub(c).NotReady, a, b)
			})...)
			if len(s.Ports) > 1 {
				for k := range s.Ports {
					k := k
					out = append(out, Candidate{fmt.Sprintf("Endpoints %s subset %d: remove port %d", e.Name, j, k), func(c *Case) { sub(c).Ports = cut(sub(c).Ports, k, k+1) }})
				}
			}
		}
	}

	// Nodes.
	for i, n := range c.Nodes {
		i := i
		if n.Zone != "" {
			out = append(out, Candidate{"node " + n.Name + ": no zone", func(c *Case) { c.Nodes[i].Zone = "" }})
		}
		if len(n.PodCIDRs) > 0 {
			out = append(out, Candidate{"node " + n.Name + ": no podCIDRs", func(c *Case) { c.Nodes[i].PodCIDRs = nil }})
		}
		if len(n.InternalIPs)+len(n.ExternalIPs) > 0 {
			out = append(out, Candidate{"node " + n.Name + ": no addresses", func(c *Case) { c.Nodes[i].InternalIPs, c.Nodes[i].ExternalIPs = nil, nil }})
		}
	}
	return out
}

// settingsCandidates resets each non-default setting to its default.
func settingsCandidates(s *oracle.Settings) []Candidate {
	d := oracle.DefaultSettings()
	var out []Candidate
	add := func(name string, differs bool, reset func(s *oracle.Settings)) {
		if differs {
			out = append(out, Candidate{"setting --" + name + " to its default", func(c *Case) { reset(c.Settings) }})
		}
	}
	add("node-ip", s.NodeIP != d.NodeIP, func(s *oracle.Settings) { s.NodeIP = d.NodeIP })
	add("node-addresses", s.NodeAddresses != d.NodeAddresses, func(s *oracle.Settings) { s.NodeAddresses = d.NodeAddresses })
	add("cluster-cidr", s.ClusterCIDR != d.ClusterCIDR, func(s *oracle.Settings) { s.ClusterCIDR = d.ClusterCIDR })
	add("detect-local-mode", s.DetectLocalMode != d.DetectLocalMode, func(s *oracle.Settings) {
		s.DetectLocalMode, s.PodBridgeInterface, s.PodInterfaceNamePrefix = d.DetectLocalMode, "", ""
	})
	add("masquerade-all", s.MasqueradeAll != d.MasqueradeAll, func(s *oracle.Settings) { s.MasqueradeAll = d.MasqueradeAll })
	add("masquerade-bit", s.MasqueradeBit != d.MasqueradeBit, func(s *oracle.Settings) { s.MasqueradeBit = d.MasqueradeBit })
	add("nodeport-addresses", s.NodePortAddresses != d.NodePortAddresses, func(s *oracle.Settings) { s.NodePortAddresses = d.NodePortAddresses })
	add("localhost-nodeports", s.LocalhostNodePorts != d.LocalhostNodePorts, func(s *oracle.Settings) { s.LocalhostNodePorts = d.LocalhostNodePorts })
	add("nfacct", s.NFAcct != d.NFAcct, func(s *oracle.Settings) { s.NFAcct = d.NFAcct })
	add("conntrack-tcp-be-liberal", s.ConntrackTCPBeLiberal != d.ConntrackTCPBeLiberal, func(s *oracle.Settings) { s.ConntrackTCPBeLiberal = d.ConntrackTCPBeLiberal })
	add("ipvs-scheduler", s.IPVSScheduler != d.IPVSScheduler, func(s *oracle.Settings) { s.IPVSScheduler = d.IPVSScheduler })
	add("ipvs-exclude-cidrs", s.IPVSExcludeCIDRs != d.IPVSExcludeCIDRs, func(s *oracle.Settings) { s.IPVSExcludeCIDRs = d.IPVSExcludeCIDRs })
	add("service-cidrs", s.ServiceCIDRs != d.ServiceCIDRs, func(s *oracle.Settings) { s.ServiceCIDRs = d.ServiceCIDRs })
	add("zone", s.Zone != d.Zone, func(s *oracle.Settings) { s.Zone = d.Zone })
	add("feature-gates", s.FeatureGates != d.FeatureGates, func(s *oracle.Settings) { s.FeatureGates = d.FeatureGates })
	add("node-name", s.NodeName != d.NodeName, func(s *oracle.Settings) { s.NodeName = d.NodeName })
	add("ip-family", s.IPFamily != d.IPFamily, func(s *oracle.Settings) { s.IPFamily = d.IPFamily })
	return out
}

// Shrink greedily applies candidates while still(c) holds, and returns the
// smallest case found and the number of checks it took. maxChecks bounds the
// work (0: 5000).
func Shrink(c *Case, still func(*Case) bool, maxChecks int) (*Case, int) {
	if maxChecks <= 0 {
		maxChecks = 5000
	}
	checks := 0
	for {
		progressed := false
		for _, cand := range Candidates(c) {
			if checks >= maxChecks {
				return c, checks
			}
			n := c.Clone()
			cand.Apply(n)
			if !n.Valid() {
				continue
			}
			checks++
			if still(n) {
				c = n
				progressed = true
				break
			}
		}
		if !progressed {
			return c, checks
		}
	}
}

// freeNodePort returns a node port no Service of c uses.
func freeNodePort(c *Case) int {
	used := map[int]bool{}
	for _, s := range c.Services {
		used[s.HealthCheckPort] = true
		for _, p := range s.Ports {
			used[p.NodePort] = true
		}
	}
	for p := 32000; ; p++ {
		if !used[p] {
			return p
		}
	}
}
