// Package nft is svc2rules' nftables backend: it turns a compiler.Plan into
// the nftables state kube-proxy v1.37.2's nftables mode (pkg/proxy/nftables)
// programs in its "kube-proxy" table (ip for IPv4, ip6 for IPv6) after its
// first full sync on a fresh node.
//
// The rules are written with sigs.k8s.io/knftables v0.0.22, kube-proxy's own
// nftables library, so every line has kube-proxy's syntax by construction.
// Render follows setupNFTables and syncProxyRules step by step and records the
// transaction either as text (ViewTransaction: exactly what kube-proxy pipes
// to "nft -f -") or applied to a model of the table, printed the way
// knftables' Fake.Dump() prints it with set and map elements sorted by key
// (ViewDump, the default). See README.md for the theory of operation.
//
// Render is pure and deterministic: no I/O, no globals, and where kube-proxy
// iterates Go maps the plan's sorted orders are used.
package nft
