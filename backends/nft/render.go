package nft

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/svc2rules/svc2rules/compiler"
)

// View selects the form of the output.
type View string

const (
	// ViewDump is the table's state after kube-proxy's first full sync on a
	// fresh node, as knftables' Fake.Dump() prints it (table; chains, sets,
	// maps, counters by name; rules per chain in order; elements sorted by
	// key). Loading it with "nft -f" into an empty network namespace
	// recreates the table.
	ViewDump View = "dump"
	// ViewTransaction is exactly the text kube-proxy pipes to "nft -f -" on
	// that first full sync (add+delete pairs of base chains and of disabled
	// objects included).
	ViewTransaction View = "transaction"
)

// Settings are the kube-proxy settings that change nftables-mode rules.
type Settings struct {
	// MasqueradeAll is --masquerade-all.
	MasqueradeAll bool
	// MasqueradeBit is nftables.masqueradeBit (0..31; 14 by default).
	MasqueradeBit int
	// LocalDetector is the local-traffic detector of the plan's family.
	LocalDetector compiler.LocalDetector
	// NodePortAddresses is --nodeport-addresses resolved for the family
	// (kube-proxy's nftables default is "primary").
	NodePortAddresses compiler.NodePortAddresses
	// View is the output form (ViewDump when empty).
	View View
}

// Fixed object names (pkg/proxy/nftables/proxier.go).
const (
	kubeProxyTable = "kube-proxy"

	filterPreroutingPreDNATChain = "filter-prerouting-pre-dnat"
	filterOutputPreDNATChain     = "filter-output-pre-dnat"
	filterInputChain             = "filter-input"
	filterForwardChain           = "filter-forward"
	filterOutputChain            = "filter-output"
	natPreroutingChain           = "nat-prerouting"
	natOutputChain               = "nat-output"
	natPostroutingChain          = "nat-postrouting"

	servicesChain       = "services"
	serviceIPsMap       = "service-ips"
	serviceNodePortsMap = "service-nodeports"

	nodePortIPsSet = "nodeport-ips"
	clusterIPsSet  = "cluster-ips"

	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	noEndpointServicesMap       = "no-endpoint-services"
	noEndpointNodePortsMap      = "no-endpoint-nodeports"
	rejectChain                 = "reject-chain"

	clusterIPsCheckChain = "cluster-ips-check"

	firewallIPsMap     = "firewall-ips"
	firewallCheckChain = "firewall-check"

	masqueradingChain     = "masquerading"
	hairpinConnectionsSet = "hairpin-connections"

	localhostNodePortRejectMap = "localhost-nodeport-reject-ports"
)

type baseChain struct {
	name      string
	chainType knftables.BaseChainType
	hook      knftables.BaseChainHook
	priority  knftables.BaseChainPriority
}

var baseChains = []baseChain{
	{filterPreroutingPreDNATChain, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{filterOutputPreDNATChain, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{filterInputChain, knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{filterForwardChain, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{filterOutputChain, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	{natPreroutingChain, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{natOutputChain, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{natPostroutingChain, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

type jumpChain struct {
	dst, src, extra string
}

var jumpChains = []jumpChain{
	{nodePortEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterForwardChain, "ct state new"},
	{serviceEndpointsCheckChain, filterOutputChain, "ct state new"},
	{firewallCheckChain, filterPreroutingPreDNATChain, "ct state new"},
	{firewallCheckChain, filterOutputPreDNATChain, "ct state new"},
	{servicesChain, natOutputChain, ""},
	{servicesChain, natPreroutingChain, ""},
	{masqueradingChain, natPostroutingChain, ""},
	{clusterIPsCheckChain, filterForwardChain, "ct state new"},
	{clusterIPsCheckChain, filterOutputChain, "ct state new"},
}

// localhostRejectableProtocols are the NodePort protocols whose localhost
// traffic kube-proxy may reject (pkg/proxy/metrics), in its order;
// localhostProxyRejectedProtocols those it rejects while its userspace
// localhost NodePort proxy serves TCP.
var (
	localhostRejectableProtocols    = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}
	localhostProxyRejectedProtocols = []v1.Protocol{v1.ProtocolUDP, v1.ProtocolSCTP}
)

func localhostRejectChainName(p v1.Protocol) string {
	return "localhost-nodeport-reject-" + strings.ToLower(string(p))
}

func localhostRejectCounterName(p v1.Protocol) string {
	return "localhost-nodeport-rejected-" + strings.ToLower(string(p))
}

// Render is the nftables backend: a pure function from a plan and settings
// to the nft text kube-proxy v1.37.2 programs for the plan's family.
func Render(plan *compiler.Plan, s Settings) (string, error) {
	ops, family, fake, err := renderOps(plan, s)
	if err != nil {
		return "", err
	}
	return opsText(ops, family, kubeProxyTable, fake.NewTransaction), nil
}

// renderOps is Render up to the text: the operations of the transaction
// (transaction view) or of the dump (dump view), checked by knftables.
func renderOps(plan *compiler.Plan, s Settings) ([]op, knftables.Family, *knftables.Fake, error) {
	if plan == nil {
		return nil, "", nil, errors.New("nft: nil plan")
	}
	if s.MasqueradeBit < 0 || s.MasqueradeBit > 31 {
		return nil, "", nil, fmt.Errorf("nft: masquerade bit %d out of range 0..31", s.MasqueradeBit)
	}
	family := knftables.IPv4Family
	switch plan.Family {
	case v1.IPv4Protocol:
	case v1.IPv6Protocol:
		family = knftables.IPv6Family
	default:
		return nil, "", nil, fmt.Errorf("nft: unknown IP family %q", plan.Family)
	}
	fake := knftables.NewFake(family, kubeProxyTable)
	b := &builder{}
	switch s.View {
	case ViewDump, "":
		return b.dumpOps(plan, s, family, fake)
	case ViewTransaction:
		b.tx = fake.NewTransaction()
	default:
		return nil, "", nil, fmt.Errorf("nft: unknown view %q (dump or transaction)", s.View)
	}
	b.sync(plan, s)
	if b.err != nil {
		return nil, "", nil, b.err
	}
	return b.ops, family, fake, nil
}

// dumpOps is renderOps for the dump view. The transaction's operations go,
// in chunks as sync makes them, to a second goroutine that checks them as
// knftables does and applies them to the model of the table; when sync is
// done the model is dumped. The dump holds only objects that an add of the
// transaction brought in, so it needs no check of its own.
func (b *builder) dumpOps(plan *compiler.Plan, s Settings, family knftables.Family, fake *knftables.Fake) ([]op, knftables.Family, *knftables.Fake, error) {
	st := newState(len(plan.ServicePorts))
	b.applyCh = make(chan []op, 16)
	applied := make(chan error, 1)
	go func() {
		var err error
		tx, inTx := fake.NewTransaction(), 0
		for chunk := range b.applyCh {
			for _, o := range chunk {
				if err != nil {
					break // keep draining
				}
				if inTx == validateChunk {
					tx, inTx = fake.NewTransaction(), 0
				}
				o.to(tx)
				inTx++
				if err = txError(tx, inTx); err == nil {
					err = st.apply(o.verb, o.obj, o.key)
				}
			}
		}
		applied <- err
	}()
	b.sync(plan, s)
	if len(b.pending) > 0 {
		b.applyCh <- b.pending
	}
	close(b.applyCh)
	if err := <-applied; err != nil {
		return nil, "", nil, err
	}
	if b.err != nil {
		return nil, "", nil, b.err
	}
	return st.dump(), family, fake, nil
}

// txError returns the error knftables recorded while building tx (it then
// stops taking operations and prints the error as a trailing comment).
func txError(tx *knftables.Transaction, want int) error {
	if tx.NumOperations() == want {
		return nil
	}
	text := tx.String()
	if i := strings.LastIndex(text, "# ERROR: "); i >= 0 && !strings.Contains(text[i:], "\n") {
		return fmt.Errorf("nft: %s", text[i+len("# ERROR: "):])
	}
	return errors.New("nft: transaction rejected an operation")
}

// builder records kube-proxy's transaction: as operations for the text
// (transaction view, checked by knftables as they come) or in chunks handed
// to the goroutine that applies them to a model of the table (dump view).
type builder struct {
	tx   *knftables.Transaction
	ops  []op // the transaction's operations, for opsText
	nops int
	err  error

	// applyCh takes the chunks of the dump view; pending is the chunk
	// being filled.
	applyCh chan []op
	pending []op
}

// applyChunk is the number of operations per chunk of the dump view.
const applyChunk = 2048

func (b *builder) do(v verb, obj knftables.Object) { b.doKeyed(v, obj, "") }

// doKeyed is do for an element whose key ensureElem has joined already
// (key "" for other objects): the dump view's model indexes elements by it.
func (b *builder) doKeyed(v verb, obj knftables.Object, key string) {
	if b.err != nil {
		return
	}
	if b.tx == nil {
		if b.pending == nil {
			b.pending = make([]op, 0, applyChunk)
		}
		b.pending = append(b.pending, op{verb: v, obj: obj, key: key})
		if len(b.pending) == applyChunk {
			b.applyCh <- b.pending
			b.pending = nil
		}
		return
	}
	o := op{verb: v, obj: obj}
	o.to(b.tx)
	b.nops++
	b.err = txError(b.tx, b.nops)
	b.ops = append(b.ops, o)
}

func (b *builder) add(obj knftables.Object)    { b.do(verbAdd, obj) }
func (b *builder) flush(obj knftables.Object)  { b.do(verbFlush, obj) }
func (b *builder) delete(obj knftables.Object) { b.do(verbDelete, obj) }

func (b *builder) rule(chain string, comment *string, args ...any) {
	b.add(&knftables.Rule{Chain: chain, Rule: concat(args...), Comment: comment})
}

// ensureChain adds and flushes a chain once per transaction (upstream's
// ensureChain with its createdChains set).
func (b *builder) ensureChain(chain string, created map[string]bool) {
	if created[chain] {
		return
	}
	created[chain] = true
	c := &knftables.Chain{Name: chain}
	b.add(c)
	b.flush(c)
}

// elementStorage is upstream's nftElementStorage on a fresh node: it starts
// empty; adding a key again with another value deletes and re-adds it.
type elementStorage map[string]string

func (b *builder) ensureElem(st elementStorage, elem *knftables.Element) {
	k := strings.Join(elem.Key, " . ")
	v := strings.Join(elem.Value, " . ")
	if old, ok := st[k]; ok {
		if old != v {
			b.doKeyed(verbDelete, elem, k)
			b.doKeyed(verbAdd, elem, k)
			st[k] = v
		}
		return
	}
	b.doKeyed(verbAdd, elem, k)
	st[k] = v
}

func ptr[T any](v T) *T { return &v }

// sync follows setupNFTables and syncProxyRules of
// pkg/proxy/nftables/proxier.go (v1.37.2): the first full sync of a fresh
// node, iterating the service ports in plan order.
func (b *builder) sync(plan *compiler.Plan, s Settings) {
	ipX, addrType := "ip", "ipv4_addr"
	matchLocalhost, matchNotLocalhost := "ip daddr 127.0.0.0/8", "ip daddr != 127.0.0.0/8"
	if plan.Family == v1.IPv6Protocol {
		ipX, addrType = "ip6", "ipv6_addr"
		matchLocalhost, matchNotLocalhost = "ip6 daddr ::1", "ip6 daddr != ::1"
	}
	mark := MasqueradeMark(s.MasqueradeBit)
	masqueradeRule := "mark set mark or " + mark
	npa := s.NodePortAddresses
	det := s.LocalDetector
	gate := plan.FeatureGates.KubeProxyNFTablesLocalhostNodePorts
	var rejectProtocols []v1.Protocol
	if gate {
		if npa.ContainsExplicitLoopback {
			rejectProtocols = localhostProxyRejectedProtocols
		} else {
			rejectProtocols = localhostRejectableProtocols
		}
	}
	rejected := map[v1.Protocol]bool{}
	for _, p := range rejectProtocols {
		rejected[p] = true
	}

	// setupNFTables
	b.add(&knftables.Table{Comment: ptr("rules for kube-proxy")})
	for _, bc := range baseChains {
		c := &knftables.Chain{Name: bc.name}
		b.add(c)
		b.delete(c)
	}
	for _, bc := range baseChains {
		c := &knftables.Chain{Name: bc.name, Type: ptr(bc.chainType), Hook: ptr(bc.hook), Priority: ptr(bc.priority)}
		b.add(c)
		b.flush(c)
	}
	created := map[string]bool{}
	for _, j := range jumpChains {
		b.ensureChain(j.dst, created)
		b.rule(j.src, nil, j.extra, "jump", j.dst)
	}
	for _, c := range []string{servicesChain, clusterIPsCheckChain, masqueradingChain} {
		b.ensureChain(c, created)
	}

	b.add(&knftables.Set{
		Name:    hairpinConnectionsSet,
		Type:    addrType + " . " + addrType + " . inet_proto . inet_service",
		Comment: ptr("service hairpin connections"),
	})
	b.rule(masqueradingChain, nil, "mark", "and", mark, "!=", "0", "mark", "set", "mark", "xor", mark, "masquerade fully-random")
	b.rule(masqueradingChain, nil, "ct status dnat", ipX, "saddr", ".", ipX, "daddr", ".", "meta l4proto", ".", "th dport", "@", hairpinConnectionsSet, "masquerade fully-random")

	b.add(&knftables.Set{Name: clusterIPsSet, Type: addrType, Comment: ptr("Active ClusterIPs")})
	b.rule(clusterIPsCheckChain, ptr("Reject traffic to invalid ports of ClusterIPs"), ipX, "daddr", "@", clusterIPsSet, "reject")
	if len(plan.ServiceCIDRs) > 0 {
		b.rule(clusterIPsCheckChain, ptr("Drop traffic to unallocated ClusterIPs"), ipX, "daddr", "{", strings.Join(plan.ServiceCIDRs, ","), "}", "drop")
	}

	b.add(&knftables.Set{Name: nodePortIPsSet, Type: addrType, Comment: ptr("IPs that accept NodePort traffic")})
	if npa.MatchAll {
		b.delete(&knftables.Set{Name: nodePortIPsSet})
	} else {
		b.flush(&knftables.Set{Name: nodePortIPsSet})
		for _, ip := range npa.NodeIPs(plan.Node.Addresses) {
			if compiler.IsLoopback(ip) {
				continue
			}
			b.add(&knftables.Element{Set: nodePortIPsSet, Key: []string{ip}})
		}
	}

	b.add(&knftables.Map{
		Name:    noEndpointServicesMap,
		Type:    addrType + " . inet_proto . inet_service : verdict",
		Comment: ptr("vmap to drop or reject packets to services with no endpoints"),
	})
	b.add(&knftables.Map{
		Name:    noEndpointNodePortsMap,
		Type:    "inet_proto . inet_service : verdict",
		Comment: ptr("vmap to drop or reject packets to service nodeports with no endpoints"),
	})
	b.add(&knftables.Chain{Name: rejectChain, Comment: ptr("helper for @no-endpoint-services / @no-endpoint-nodeports")})
	b.flush(&knftables.Chain{Name: rejectChain})
	b.rule(rejectChain, nil, "reject")
	b.rule(serviceEndpointsCheckChain, nil, ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", noEndpointServicesMap)
	if npa.MatchAll {
		b.rule(nodePortEndpointsCheckChain, nil, matchNotLocalhost, "meta l4proto . th dport", "vmap", "@", noEndpointNodePortsMap)
	} else {
		b.rule(nodePortEndpointsCheckChain, nil, ipX, "daddr", "@", nodePortIPsSet, "meta l4proto . th dport", "vmap", "@", noEndpointNodePortsMap)
	}

	b.add(&knftables.Map{
		Name:    localhostNodePortRejectMap,
		Type:    "inet_proto . inet_service : verdict",
		Comment: ptr("localhost NodePorts rejected by kube-proxy"),
	})
	if len(rejectProtocols) > 0 {
		for _, p := range rejectProtocols {
			counter := localhostRejectCounterName(p)
			b.add(&knftables.Counter{Name: counter})
			chain := localhostRejectChainName(p)
			b.ensureChain(chain, created)
			b.rule(chain, nil, "counter name", strconv.Quote(counter), "reject")
		}
		b.rule(nodePortEndpointsCheckChain, nil, matchLocalhost, "meta l4proto . th dport", "vmap", "@", localhostNodePortRejectMap)
	} else {
		b.delete(&knftables.Map{Name: localhostNodePortRejectMap})
	}
	for _, p := range localhostRejectableProtocols {
		if rejected[p] {
			continue
		}
		c := &knftables.Chain{Name: localhostRejectChainName(p)}
		b.add(c)
		b.delete(c)
		k := &knftables.Counter{Name: localhostRejectCounterName(p)}
		b.add(k)
		b.delete(k)
	}

	b.add(&knftables.Map{
		Name:    firewallIPsMap,
		Type:    addrType + " . inet_proto . inet_service : verdict",
		Comment: ptr("destinations that are subject to LoadBalancerSourceRanges"),
	})
	b.ensureChain(firewallCheckChain, created)
	b.rule(firewallCheckChain, nil, ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", firewallIPsMap)

	b.add(&knftables.Map{
		Name:    serviceIPsMap,
		Type:    addrType + " . inet_proto . inet_service : verdict",
		Comment: ptr("ClusterIP, ExternalIP and LoadBalancer IP traffic"),
	})
	b.add(&knftables.Map{
		Name:    serviceNodePortsMap,
		Type:    "inet_proto . inet_service : verdict",
		Comment: ptr("NodePort traffic"),
	})
	if s.MasqueradeAll {
		b.rule(servicesChain, ptr("masquerade all clusterIP traffic"), ipX, "daddr", "@", clusterIPsSet, masqueradeRule)
	} else if det.IsImplemented() {
		b.rule(servicesChain, ptr("masquerade clusterIP traffic from outside cluster"), ipX, "daddr", "@", clusterIPsSet, ifNotLocalNFT(det), masqueradeRule)
	}
	b.rule(servicesChain, nil, ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", serviceIPsMap)
	if npa.MatchAll {
		b.rule(servicesChain, nil, "fib daddr type local", matchNotLocalhost, "meta l4proto . th dport", "vmap", "@", serviceNodePortsMap)
	} else {
		b.rule(servicesChain, nil, ipX, "daddr @nodeport-ips", "meta l4proto . th dport", "vmap", "@", serviceNodePortsMap)
	}

	// syncProxyRules: the element storages start empty on a fresh node.
	clusterIPs := make(elementStorage, len(plan.ServicePorts))
	serviceIPs := make(elementStorage, len(plan.ServicePorts))
	firewallIPs := make(elementStorage, len(plan.ServicePorts))
	noEndpointServices := make(elementStorage, len(plan.ServicePorts))
	noEndpointNodePorts := make(elementStorage, len(plan.ServicePorts))
	serviceNodePorts := make(elementStorage, len(plan.ServicePorts))
	hairpinConnections := make(elementStorage, len(plan.ServicePorts))
	localhostRejects := make(elementStorage, len(plan.ServicePorts))

	active := make(map[string]bool, 3*len(plan.ServicePorts))
	nodeIP := plan.Node.PrimaryIPOrLoopback(plan.Family)

	for _, sp := range plan.ServicePorts {
		if b.err != nil {
			return
		}
		proto := compiler.LowerProtocol(sp.Protocol)
		port := strconv.Itoa(int(sp.Port))
		svcPortComment := truncateComment(sp.SPN)
		ch := chainsFor(sp.Namespace, sp.Name, proto, sp.PortName)
		// Endpoint chain and set names (affinity only), hashed once per endpoint.
		type epName struct{ chain, set string }
		var epNameCache map[*compiler.Endpoint]epName
		epNames := func(ep *compiler.Endpoint) (chain, set string) {
			if n, ok := epNameCache[ep]; ok {
				return n.chain, n.set
			}
			if epNameCache == nil {
				epNameCache = make(map[*compiler.Endpoint]epName, len(sp.ReachableEndpoints))
			}
			base := servicePortEndpointChainNameBase(sp.Namespace, sp.Name, proto, sp.PortName, ep.String())
			n := epName{endpointChainPrefix + base, affinitySetPrefix + base}
			epNameCache[ep] = n
			return n.chain, n.set
		}
		affinity := sp.SessionAffinityClientIP

		for _, ep := range sp.ReachableEndpoints {
			if affinity {
				epChain, _ := epNames(ep)
				b.ensureChain(epChain, active)
			}
			if ep.IsLocal {
				b.ensureElem(hairpinConnections, &knftables.Element{
					Set: hairpinConnectionsSet,
					Key: []string{ep.IP, ep.IP, proto, strconv.Itoa(int(ep.Port))},
				})
			}
		}

		usesCluster := sp.UsesClusterChain()
		if usesCluster {
			b.ensureChain(ch.cluster, active)
		}
		usesLocal := sp.UsesLocalChain()
		if usesLocal {
			b.ensureChain(ch.local, active)
		}

		hasEndpoints := sp.HasEndpoints
		hasInternal := sp.HasInternalEndpoints()
		hasExternal := sp.HasExternalEndpoints()
		internalChain := ch.cluster
		if sp.InternalPolicyLocal {
			internalChain = ch.local
		}
		externalPolicyChain := ch.cluster
		if sp.ExternalPolicyLocal {
			externalPolicyChain = ch.local
		}
		usesExternal := sp.UsesExternalChain()
		if usesExternal {
			b.ensureChain(ch.external, active)
		}

		var internalVerdict, externalVerdict string
		if !hasEndpoints {
			internalVerdict = "goto " + rejectChain
			externalVerdict = internalVerdict
		} else {
			if !hasInternal {
				internalVerdict = "drop"
			}
			if !hasExternal {
				externalVerdict = "drop"
			}
		}

		b.ensureElem(clusterIPs, &knftables.Element{Set: clusterIPsSet, Key: []string{sp.ClusterIP}})
		if hasInternal {
			b.ensureElem(serviceIPs, &knftables.Element{
				Map:   serviceIPsMap,
				Key:   []string{sp.ClusterIP, proto, port},
				Value: []string{"goto " + internalChain},
			})
		} else {
			b.ensureElem(noEndpointServices, &knftables.Element{
				Map:     noEndpointServicesMap,
				Key:     []string{sp.ClusterIP, proto, port},
				Value:   []string{internalVerdict},
				Comment: ptr(svcPortComment),
			})
		}

		if plan.FeatureGates.AllowServiceExternalIPs {
			for _, extIP := range sp.ExternalIPs {
				if hasEndpoints {
					b.ensureElem(serviceIPs, &knftables.Element{
						Map:   serviceIPsMap,
						Key:   []string{extIP, proto, port},
						Value: []string{"goto " + ch.external},
					})
				}
				if !hasExternal {
					b.ensureElem(noEndpointServices, &knftables.Element{
						Map:     noEndpointServicesMap,
						Key:     []string{extIP, proto, port},
						Value:   []string{externalVerdict},
						Comment: ptr(svcPortComment),
					})
				}
			}
		}

		usesFW := len(sp.LoadBalancerVIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0
		if usesFW {
			b.ensureChain(ch.firewall, active)
		}
		for _, lbIP := range sp.LoadBalancerVIPs {
			if hasEndpoints {
				b.ensureElem(serviceIPs, &knftables.Element{
					Map:   serviceIPsMap,
					Key:   []string{lbIP, proto, port},
					Value: []string{"goto " + ch.external},
				})
			}
			if usesFW {
				b.ensureElem(firewallIPs, &knftables.Element{
					Map:   firewallIPsMap,
					Key:   []string{lbIP, proto, port},
					Value: []string{"goto " + ch.firewall},
				})
			}
		}
		if !hasExternal {
			for _, lbIP := range sp.LoadBalancerVIPs {
				b.ensureElem(noEndpointServices, &knftables.Element{
					Map:     noEndpointServicesMap,
					Key:     []string{lbIP, proto, port},
					Value:   []string{externalVerdict},
					Comment: ptr(svcPortComment),
				})
			}
		}

		if sp.NodePort != 0 {
			np := strconv.Itoa(int(sp.NodePort))
			if rejected[sp.Protocol] {
				b.ensureElem(localhostRejects, &knftables.Element{
					Map:   localhostNodePortRejectMap,
					Key:   []string{proto, np},
					Value: []string{"goto " + localhostRejectChainName(sp.Protocol)},
				})
			}
			if hasEndpoints {
				b.ensureElem(serviceNodePorts, &knftables.Element{
					Map:   serviceNodePortsMap,
					Key:   []string{proto, np},
					Value: []string{"goto " + ch.external},
				})
			}
			if !hasExternal {
				b.ensureElem(noEndpointNodePorts, &knftables.Element{
					Map:     noEndpointNodePortsMap,
					Key:     []string{proto, np},
					Value:   []string{externalVerdict},
					Comment: ptr(svcPortComment),
				})
			}
		}

		if usesExternal {
			if !sp.ExternalPolicyLocal {
				b.rule(ch.external, ptr("masquerade"), masqueradeRule)
			} else {
				if det.IsImplemented() {
					b.rule(ch.external, ptr("short-circuit pod traffic"), ifLocalNFT(det), "goto", ch.cluster)
				}
				b.rule(ch.external, ptr("masquerade local traffic"), "fib", "saddr", "type", "local", masqueradeRule)
				b.rule(ch.external, ptr("short-circuit local traffic"), "fib", "saddr", "type", "local", "goto", ch.cluster)
			}
			if hasExternal {
				b.rule(ch.external, nil, "goto", externalPolicyChain)
			}
		}

		if usesFW {
			var sources []string
			allowFromNode := false
			for _, cidr := range sp.LoadBalancerSourceRanges {
				if len(sources) > 0 {
					sources = append(sources, ",")
				}
				sources = append(sources, cidr)
				if compiler.CIDRContains(cidr, nodeIP) {
					allowFromNode = true
				}
			}
			if allowFromNode {
				for _, lbIP := range sp.LoadBalancerVIPs {
					sources = append(sources, ",", lbIP)
				}
			}
			b.rule(ch.firewall, nil, ipX, "saddr", "!=", "{", sources, "}", "drop")
		}

		if affinity {
			for _, ep := range sp.ReachableEndpoints {
				_, set := epNames(ep)
				b.add(&knftables.Set{
					Name:    set,
					Type:    addrType,
					Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
					Timeout: ptr(time.Duration(sp.StickyMaxAgeSeconds) * time.Second),
				})
			}
		}

		if !affinity {
			if usesCluster {
				b.writeDNATs(ipX, proto, ch.cluster, sp.ClusterEndpoints)
			}
			if usesLocal {
				b.writeDNATs(ipX, proto, ch.local, sp.LocalEndpoints)
			}
		} else {
			if usesCluster {
				b.writeJumps(ipX, ch.cluster, sp.ClusterEndpoints, epNames)
			}
			if usesLocal {
				b.writeJumps(ipX, ch.local, sp.LocalEndpoints, epNames)
			}
			for _, ep := range sp.ReachableEndpoints {
				epChain, set := epNames(ep)
				b.rule(epChain, nil, "update", "@", set, "{", ipX, "saddr", "}")
				b.rule(epChain, nil, "meta l4proto", proto, "dnat to", ep.String())
			}
		}
	}
}

// writeDNATs is writeServiceToEndpointDNATs: one endpoint is a plain
// "dnat to", several a numgen map.
func (b *builder) writeDNATs(ipX, proto, chain string, eps []*compiler.Endpoint) {
	if len(eps) == 1 {
		ep := eps[0]
		b.rule(chain, nil, "meta l4proto", proto, "dnat to", net.JoinHostPort(ep.IP, strconv.Itoa(int(ep.Port))))
		return
	}
	// The map's words are written straight after concat's prefix (as
	// concat would write them: one space between words) rather than
	// collected as a []string of 6 words per endpoint.
	var r strings.Builder
	prefix := concat("meta l4proto", proto, "dnat", ipX, "addr . port to", "numgen random mod", len(eps), "map", "{")
	r.Grow(len(prefix) + len(eps)*32 + 2)
	r.WriteString(prefix)
	for i, ep := range eps {
		if i > 0 {
			r.WriteString(" ,")
		}
		r.WriteByte(' ')
		r.WriteString(strconv.Itoa(i))
		r.WriteString(" : ")
		r.WriteString(ep.IP)
		r.WriteString(" . ")
		r.WriteString(strconv.Itoa(int(ep.Port)))
	}
	r.WriteString(" }")
	b.add(&knftables.Rule{Chain: chain, Rule: r.String()})
}

// writeJumps is writeServiceToEndpointJumps (session affinity): a lookup of
// each endpoint's affinity set, then a numgen vmap to the endpoint chains.
func (b *builder) writeJumps(ipX, chain string, eps []*compiler.Endpoint, names func(*compiler.Endpoint) (string, string)) {
	var r strings.Builder
	prefix := concat("numgen random mod", len(eps), "vmap", "{")
	r.Grow(len(prefix) + len(eps)*64 + 2)
	r.WriteString(prefix)
	for i, ep := range eps {
		epChain, set := names(ep)
		b.rule(chain, nil, ipX, "saddr", "@", set, "goto", epChain)
		if i > 0 {
			r.WriteString(" ,")
		}
		r.WriteByte(' ')
		r.WriteString(strconv.Itoa(i))
		r.WriteString(" : goto ")
		r.WriteString(epChain)
	}
	r.WriteString(" }")
	b.add(&knftables.Rule{Chain: chain, Rule: r.String()})
}

// ifLocalNFT and ifNotLocalNFT are the local-traffic detector's nftables
// matches (pkg/proxy/util/localdetector.go).
func ifLocalNFT(d compiler.LocalDetector) []string {
	switch d.Mode {
	case "ClusterCIDR", "NodeCIDR":
		return []string{cidrFamily(d.Value), "saddr", d.Value}
	case "BridgeInterface":
		return []string{"iifname", d.Value}
	case "InterfaceNamePrefix":
		return []string{"iifname", d.Value + "*"}
	}
	return nil
}

func ifNotLocalNFT(d compiler.LocalDetector) []string {
	switch d.Mode {
	case "ClusterCIDR", "NodeCIDR":
		return []string{cidrFamily(d.Value), "saddr", "!=", d.Value}
	case "BridgeInterface":
		return []string{"iifname", "!=", d.Value}
	case "InterfaceNamePrefix":
		return []string{"iifname", "!=", d.Value + "*"}
	}
	return nil
}

func cidrFamily(cidr string) string {
	if strings.Contains(cidr, ":") {
		return "ip6"
	}
	return "ip"
}
