// Package trace is an interpreter of the packet-filtering rules kube-proxy
// programs: it follows one packet (the first packet of a new connection)
// through a node's rules the way the kernel does and reports every chain and
// rule it matched, the verdict and whether the packet is masqueraded.
//
// It reads rule text, never a compiler.Plan, so it is an independent check
// of what the backends write:
//
//   - iptables: iptables-save and iptables-restore text (svc2rules' save and
//     restore views, and what a real node's iptables-save prints: "-p tcp -m
//     tcp", "/32" suffixes, "0x4000" marks, quoted comments, counters);
//   - nftables: nft -f scripts (add/flush/delete commands, as kube-proxy's
//     transaction and svc2rules' dump view) and "nft list table|ruleset"
//     listings (table blocks, elements = { ... }, priority names);
//   - IPVS: ipvsadm -S -n and ipvsadm -L -n output, ipset save/restore
//     text, the kube-ipvs0 address list, and svc2rules' ipvs sh script
//     (whose here-documents hold all four);
//   - userspace: the iptables rules plus svc2rules' userspace proxy table.
//
// The walk follows netfilter's hooks: a packet from a pod or from outside
// the node traverses PREROUTING (raw, mangle, nat), is routed (local or
// forwarded, after any DNAT), then INPUT or FORWARD and POSTROUTING; a packet
// the node sends traverses OUTPUT and POSTROUTING (and INPUT when it stays
// local). nftables base chains join the same hooks by priority; the IPVS
// scheduler sits at LOCAL_IN (priority 99) and LOCAL_OUT (-98). Random
// choices (statistic, numgen, the IPVS scheduler) fork the walk; each path
// carries its probability.
package trace
